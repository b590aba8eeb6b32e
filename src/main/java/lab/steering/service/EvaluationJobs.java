package lab.steering.service;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;

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
