package lab.steering.service.evaluation;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import lab.steering.service.jobs.JobKind;
import lab.steering.store.JobStore;

/** Steering-benchmark runs as jobs (kind {@value EvaluationService#KIND}): the work is {@link EvaluationService}'s. */
@ApplicationScoped
public class EvaluationJobs implements JobKind {

    @Inject
    EvaluationService evaluations;

    @Override
    public String name() {
        return EvaluationService.KIND;
    }

    @Override
    public Outcome run(JobStore.Job job, Progress progress) {
        return evaluations.runJob(job, progress);
    }
}
