package lab.steering.service.steering;

import jakarta.enterprise.context.ApplicationScoped;
import jakarta.inject.Inject;
import lab.steering.service.jobs.JobKind;
import lab.steering.store.JobStore;

/** Sweeps as jobs (kind {@value SteeringService#SWEEP_KIND}): the work is {@link SteeringService}'s. */
@ApplicationScoped
public class SweepJobs implements JobKind {

    @Inject
    SteeringService steering;

    @Override
    public String name() {
        return SteeringService.SWEEP_KIND;
    }

    @Override
    public Outcome run(JobStore.Job job, Progress progress) {
        return steering.runSweep(job, progress);
    }
}
