package lab.steering.service.steering;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import lab.steering.service.jobs.JobKind;
import lab.steering.store.JobStore;

/** Operator builds as jobs (kind {@value SteeringService#BUILD_KIND}): the work is {@link SteeringService}'s. */
@ApplicationScoped
public class OperatorBuildJobs implements JobKind {

    @Inject
    OperatorService operators;

    @Override
    public String name() {
        return OperatorService.BUILD_KIND;
    }

    @Override
    public Outcome run(JobStore.Job job, Progress progress) {
        return operators.runBuild(job, progress);
    }
}
