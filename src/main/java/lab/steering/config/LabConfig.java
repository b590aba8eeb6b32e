package lab.steering.config;

import io.quarkus.runtime.configuration.MemorySize;
import io.smallrye.config.ConfigMapping;
import io.smallrye.config.WithDefault;
import java.util.Optional;

/** Typed settings under {@code lab.*}; application.properties maps the LAB_* environment variables onto them. */
@ConfigMapping(prefix = "lab")
public interface LabConfig {

    /** The project's own models folder, always scanned. */
    @WithDefault("models")
    String projectModelsDir();

    /** Extra folders of models (LAB_MODELS_DIR), separated by ':' or ','. */
    Optional<String> modelsDir();

    /** Model used when a request names none (LAB_DEFAULT_MODEL); else the first loaded one in name order. */
    Optional<String> defaultModel();

    /** auto | cpu | cuda | cuda:N (LAB_DEVICE). */
    @WithDefault("auto")
    String device();

    /** PyTorch intra-op threads (LAB_THREADS); default: PyTorch's own choice (the number of cores). */
    Optional<Integer> threads();

    /** Upper bound of maxNewTokens in one request. */
    @WithDefault("1024")
    int maxNewTokens();

    /** Loading models on demand within a memory budget (lab.models.*). */
    Models models();

    interface Models {

        /**
         * Memory all loaded models share (LAB_MODEL_MEMORY, a size such as 6g); default from the machine
         * (ModelMemory): the least recently used idle model is unloaded to make room, a model that needs more is
         * refused (413).
         */
        Optional<MemorySize> memory();

        /**
         * How long a request waits for models in use to free the memory it needs, in seconds
         * (LAB_MODEL_WAIT_SECONDS); past it 429.
         */
        @WithDefault("10")
        double waitSeconds();

        /** Load the default model in the background at start (LAB_MODEL_PRELOAD); else on its first use. */
        @WithDefault("true")
        boolean preload();

        /**
         * How bfloat16 and float16 weights are held on the CPU (LAB_MODEL_WEIGHTS): auto (float32 when that fits the
         * model memory budget, else compact), compact (as stored, widened layer by layer) or float32 (widened once at
         * load); see WeightStorage.
         */
        @WithDefault("auto")
        String weights();
    }

    /** Batched decoding (lab.batch.*): every generation of a model shares one decoding step. */
    Batch batch();

    interface Batch {

        /** Rows decoded together per model (LAB_BATCH_MAX_ROWS); a steered run takes two. */
        @WithDefault("32")
        int maxRows();

        /** Rows of requests waiting for a place (LAB_BATCH_MAX_WAITING); beyond it a request gets 429. */
        @WithDefault("64")
        int maxWaiting();
    }

    /** GPU settings (lab.gpu.*), used only when the models run on a GPU. */
    Gpu gpu();

    interface Gpu {

        /** dtype of generation on a GPU (LAB_GPU_DTYPE): bf16, f16 or f32; the weights are converted once at load. */
        @WithDefault("bf16")
        String dtype();

        /** GPU memory kept free of heavy requests (LAB_GPU_MEMORY_RESERVE): their budget is free memory less this. */
        @WithDefault("1G")
        MemorySize memoryReserve();
    }

    /** Detached-Jacobian requests (lab.jacobian.*). */
    Jacobian jacobian();

    /** The job queue in the database and this instance's worker pool (lab.jobs.*). */
    Jobs jobs();

    interface Jobs {

        /** This instance's id in the job table (LAB_INSTANCE_ID); default: host name and a random suffix. */
        Optional<String> instanceId();

        /** Worker threads claiming jobs (LAB_JOB_WORKERS); default: lab.jacobian.max-running; 0: run no jobs here. */
        Optional<Integer> workers();

        /** A running job's lease (LAB_JOB_LEASE_SECONDS): renewed every third of it; past it the job is reaped. */
        @WithDefault("30")
        double leaseSeconds();

        /** Claims of one job before a lost worker makes it fail (LAB_JOB_MAX_ATTEMPTS). */
        @WithDefault("3")
        int maxAttempts();

        /** How often an idle worker looks for queued jobs, in milliseconds (LAB_JOB_POLL_MS). */
        @WithDefault("1000")
        long pollMs();

        /** At most one progress write per running job in this time, in milliseconds. */
        @WithDefault("250")
        long progressWriteMs();

        /** Queued jobs (all replicas) beyond which a submission is refused (429); default lab.jacobian.max-queued. */
        Optional<Integer> maxQueued();

        /** Finished jobs kept in the table, newest first (LAB_JOBS_KEPT); older ones are deleted. */
        @WithDefault("100")
        int kept();

        /**
         * How long a request that waits for its job (an operator build, a sweep) waits, in seconds
         * (LAB_JOB_WAIT_SECONDS); past it the job is cancelled and the request answers 504.
         */
        @WithDefault("600")
        double waitSeconds();
    }

    interface Jacobian {

        /** Longest prompt (tokens, BOS included) the full-matrix method accepts. */
        @WithDefault("64")
        int maxTokens();

        /** Longest prompt the matrix-free low-rank method ("lanczos") accepts. */
        @WithDefault("512")
        int maxTokensLowRank();

        /** Refuse a request whose estimated peak memory (Jacobian stacks plus working memory) is above this. */
        @WithDefault("512M")
        MemorySize maxBytes();

        /** Bound on the transpose pass's largest intermediate (the batch of cotangents is chunked to fit). */
        @WithDefault("64M")
        MemorySize chunkBytes();

        /** Heavy requests (analyses, exports, jobs) running at once. */
        @WithDefault("1")
        int maxRunning();

        /** Heavy requests waiting for a worker; beyond running + queued the API answers 429. */
        @WithDefault("4")
        int maxQueued();

        /** Assumed throughput for the rough time estimate of a refused request (GFLOP/s). */
        @WithDefault("10")
        double gflops();
    }
}
