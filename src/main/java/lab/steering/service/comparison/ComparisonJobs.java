package lab.steering.service.comparison;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import lab.steering.service.jobs.JobKind;
import lab.steering.store.JobStore;

/** Comparison batches as jobs (kind {@value ComparisonService#KIND}): the work is {@link ComparisonService}'s. */
@ApplicationScoped
public class ComparisonJobs implements JobKind {

    public static final String KIND = ComparisonService.KIND;

    @Inject
    ComparisonService comparisons;

    @Override
    public String name() {
        return KIND;
    }

    @Override
    public Outcome run(JobStore.Job job, Progress progress) {
        return comparisons.runJob(job, progress);
    }
}
