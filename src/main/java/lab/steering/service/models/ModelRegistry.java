package lab.steering.service.models;

import ai.djl.Device;
import ai.djl.ndarray.types.DataType;
import io.quarkus.arc.Arc;
import io.quarkus.runtime.Startup;
import jakarta.annotation.PreDestroy;
import jakarta.enterprise.context.ApplicationScoped;
import jakarta.enterprise.event.Event;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.stream.Stream;
import lab.steering.config.LabConfig;
import lab.steering.model.LanguageModel;
import lab.steering.model.ModelConfig;
import lab.steering.model.ModelFolder;
import lab.steering.model.WeightStorage;
import lab.steering.service.Busy;
import lab.steering.service.Refusal;
import lab.steering.service.device.DevicePolicy;
import lab.steering.service.device.DeviceProbe;
import lab.steering.service.device.DeviceSelector;
import lab.steering.service.jobs.WorkLimiter;
import org.jboss.logging.Logger;

/**
 * The models: every sub-folder of the project's models/ and of LAB_MODELS_DIR is one, its id the folder name.
 * <p>
 * At start each folder is only scanned ({@link ModelFolder}: config.json and file sizes); a model loads on its first
 * use ({@link #find}), once however many requests ask for it together. Its state: {@code available} (scanned, not
 * in memory), {@code loading}, {@code loaded}, {@code failed} (with the reason: a folder that did not scan, a load
 * that failed, or a model that needs more than the whole budget). A failed folder stops nothing else.
 * <p>
 * The loaded models share a memory budget ({@link ModelMemory}, LAB_MODEL_MEMORY). A load that does not fit
 * unloads the least recently used loaded models that nothing uses; a model is in use while a request, a job or a
 * heavy task holds it ({@link #find} pins the model to the current HTTP request or {@link Scope}; the
 * {@link WorkLimiter} carries a request's models into its tasks) or while its batched decoder has rows. An unloaded
 * model's per-model state goes with it: its decoder thread ({@link Decoders}) and caches (observers of
 * {@link Unloaded}); a later use loads it again. Refusals: 413 {@code model_too_large} (need and budget) for a model
 * that can never fit, 429 {@code busy} when the memory stays held by models in use, 500 {@code model_failed} (503
 * after running out of memory) for a folder that failed to load.
 */
@Startup
@ApplicationScoped
public class ModelRegistry {

    private static final Logger LOG = Logger.getLogger(ModelRegistry.class);

    /** A model's state, as /api/models and /models show it. */
    public enum State {
        AVAILABLE, LOADING, LOADED, FAILED;

        public String apiName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** A folder that could not be scanned or loaded (or needs more than the budget), with the reason. */
    public record Failure(String id, String folder, String error) {
    }

    /**
     * One model as the registry knows it now (nothing is loaded to tell it).
     *
     * @param config        null when config.json could not be read (then the state is failed)
     * @param memoryBytes   what it holds when loaded, else the estimate of what it will need
     * @param dtype         generation's dtype (as loaded, or as it will be)
     * @param analysisDtype the dtype of the weights Jacobians start from
     * @param inUse         requests, jobs and tasks holding it now (a model in use is not unloaded)
     */
    public record Status(String id, String folder, State state, String error, ModelConfig config, long memoryBytes,
                         String dtype, String analysisDtype, String device, boolean isDefault, int inUse) {
    }

    /** Fired (synchronously) when a model is unloaded, before its tensors are freed: drop what is kept for it. */
    public record Unloaded(String id, LanguageModel model) {
    }

    /** One folder. Guarded by {@link #lock}. */
    private static final class Entry {
        final String id;
        final Path folder;
        final boolean own; // in the project's models/ (the default's first choice)
        ModelFolder scanned; // null when the scan failed
        WeightStorage storage; // how its weights are held once loaded (chosen at the scan)
        long needBytes;
        State state;
        String error;
        int failedStatus;      // the HTTP status of a failure: 500, 503 after running out of memory, 413 too large
        String failedSignature; // the folder's files when it failed: a change makes it worth another try
        long failedAt;          // System.nanoTime() of the failure
        LanguageModel model;
        CompletableFuture<LanguageModel> loading;
        int users;
        long lastUsed;

        Entry(String id, Path folder, boolean own) {
            this.id = id;
            this.folder = folder;
            this.own = own;
        }
    }

    /** A model held by a request, a scope or a task: it is not unloaded while pinned. */
    record Pin(Entry entry, LanguageModel model) {
    }

    /** Pins of the calling thread; models {@link #find} returns stay loaded until it is closed. */
    public final class Scope implements AutoCloseable {
        private final Scope outer;
        private final List<Pin> pins = new ArrayList<>();
        private boolean closed;

        private Scope(Scope outer) {
            this.outer = outer;
        }

        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            if (SCOPE.get() == this) {
                SCOPE.set(outer);
            }
            release(pins);
        }
    }

    private static final ThreadLocal<Scope> SCOPE = new ThreadLocal<>();
    private static final long OOM_RETRY_NANOS = 30_000_000_000L;

    private final Object lock = new Object();
    private final Map<String, Entry> entries = new TreeMap<>();
    private final List<String> order = new CopyOnWriteArrayList<>(); // the default's preference
    private final List<Path> dirs; // the models folders, the project's own first
    private final Map<Path, FileTime> listed = new HashMap<>(); // at the last listing
    private final Set<Path> ignored = new HashSet<>(); // folders whose id another folder has (warned once)
    private final Device device;
    private final DataType generationDtype;
    private final WeightStorage storage; // null: auto, chosen per model (Entry.storage)
    private final ModelMemory.Budget budget;
    private final long waitMillis;
    private final Decoders decoders;
    private final Event<Unloaded> unloaded;
    private final RequestModels requestModels;
    private long releasing; // bytes of unloaded models whose tensors are being freed
    private long clock;
    private volatile String defaultId;

    ModelRegistry(LabConfig config, Decoders decoders, Event<Unloaded> unloaded, RequestModels requestModels) {
        System.setProperty("ai.djl.offline", "true");
        // read by DJL's PyTorch engine when it starts, which is below (DeviceSelector)
        config.threads().ifPresent(n -> System.setProperty("ai.djl.pytorch.num_threads", String.valueOf(n)));
        this.decoders = decoders;
        this.unloaded = unloaded;
        this.requestModels = requestModels;
        this.device = DeviceSelector.select(config.device());
        this.generationDtype = DevicePolicy.generationDtype(config.gpu().dtype(), device);
        String weights = config.models().weights().trim();
        this.storage = weights.equalsIgnoreCase("auto") ? null : WeightStorage.parse(weights).on(device);
        this.budget = config.models().memory().filter(m -> m.asLongValue() > 0)
                .map(m -> new ModelMemory.Budget(m.asLongValue(), "LAB_MODEL_MEMORY"))
                .orElseGet(() -> {
                    DevicePolicy.Memory gpu = DeviceProbe.CUDA.memory(device);
                    return ModelMemory.defaultBudget(ModelMemory.physicalBytes(), ModelMemory.maxDirectBytes(),
                            gpu == null ? null : gpu.totalBytes());
                });
        this.waitMillis = (long) (config.models().waitSeconds() * 1000);
        this.dirs = folders(config);
        for (int i = 0; i < dirs.size(); i++) {
            scanAll(dirs.get(i), i == 0);
        }
        String wanted = config.defaultModel().filter(s -> !s.isBlank()).orElse(null);
        if (wanted != null && !usable(wanted)) {
            LOG.warnf("LAB_DEFAULT_MODEL=%s is not among the usable models %s", wanted, ids());
            wanted = null;
        }
        if (wanted != null) {
            order.add(wanted);
        }
        // then the project's own models, then the others by name
        entries.values().stream().filter(e -> e.own).forEach(e -> order.add(e.id));
        entries.values().stream().filter(e -> !e.own).forEach(e -> order.add(e.id));
        this.defaultId = order.stream().filter(this::usable).findFirst().orElse(null);
        LOG.infof("models on %s (generation in %s), memory budget %.0f MB (%s): %s (default %s); failed: %s",
                device, DevicePolicy.name(generationDtype), budget.megabytes(), budget.source(), ids(), defaultId,
                failures().stream().map(Failure::id).toList());
        if (config.models().preload() && defaultId != null) {
            Thread t = new Thread(this::preloadDefault, "model-preload");
            t.setDaemon(true);
            t.start();
        }
    }

    static List<Path> folders(LabConfig config) {
        List<Path> dirs = new ArrayList<>();
        dirs.add(Path.of(config.projectModelsDir()));
        config.modelsDir().ifPresent(s -> {
            for (String part : s.split("[:,]")) {
                if (!part.isBlank()) {
                    dirs.add(Path.of(part.trim()));
                }
            }
        });
        return dirs;
    }

    /** Scans the model folders of {@code dir} not seen yet; their ids, in order. Called with the lock held. */
    private List<String> scanAll(Path dir, boolean own) {
        List<String> added = new ArrayList<>();
        listed.put(dir, modified(dir));
        if (!Files.isDirectory(dir)) {
            LOG.warnf("models folder %s does not exist", dir.toAbsolutePath());
            return added;
        }
        List<Path> candidates;
        try (Stream<Path> s = Files.list(dir)) {
            candidates = s.filter(Files::isDirectory).filter(p -> !p.getFileName().toString().startsWith("."))
                    .sorted().toList();
        } catch (IOException e) {
            LOG.errorf("cannot list models folder %s: %s", dir, e.getMessage());
            return added;
        }
        for (Path folder : candidates) {
            String id = folder.getFileName().toString();
            Entry known = entries.get(id);
            if (known != null) {
                if (!known.folder.equals(folder.toAbsolutePath()) && ignored.add(folder.toAbsolutePath())) {
                    LOG.warnf("model %s in %s ignored: a model with that id was found before", id, folder);
                }
                continue;
            }
            Entry e = new Entry(id, folder.toAbsolutePath(), own);
            entries.put(id, e);
            scan(e);
            added.add(id);
        }
        return added;
    }

    private static FileTime modified(Path dir) {
        try {
            return Files.getLastModifiedTime(dir);
        } catch (IOException e) {
            return null; // not there (yet)
        }
    }

    /**
     * Looks at the models folders again where one changed since it was last listed (its modification time moves
     * when a folder is added, removed or renamed in it): new model folders are scanned and can be used at once, and
     * a model whose folder is gone is forgotten unless it is loaded or in use. One stat per models folder when
     * nothing changed; the model lists and a request for an unknown id call it.
     */
    public void refresh() {
        synchronized (lock) {
            for (int i = 0; i < dirs.size(); i++) {
                Path dir = dirs.get(i);
                if (Objects.equals(modified(dir), listed.get(dir))) {
                    continue;
                }
                Path absolute = dir.toAbsolutePath();
                List<String> gone = entries.values().stream()
                        .filter(e -> e.folder.getParent().equals(absolute) && !Files.isDirectory(e.folder)
                                && e.model == null && e.loading == null && e.users == 0)
                        .map(e -> e.id).toList();
                for (String id : gone) {
                    entries.remove(id);
                    order.remove(id);
                    LOG.infof("model %s forgotten: its folder is gone", id);
                }
                List<String> added = scanAll(dir, i == 0);
                order.addAll(added);
                if (!added.isEmpty()) {
                    LOG.infof("new models in %s: %s", dir, added);
                }
            }
            if (defaultId == null || !entries.containsKey(defaultId)) {
                defaultId = order.stream().filter(this::usable).findFirst().orElse(null);
            }
        }
    }

    /** Reads the folder's config and file sizes; the entry becomes available or failed. Called with the lock held. */
    private void scan(Entry e) {
        try {
            e.scanned = ModelFolder.scan(e.folder);
            e.storage = storage(e.scanned);
            e.needBytes = ModelMemory.need(ModelMemory.weightBytes(e.scanned, e.storage, generationDtype));
            e.state = State.AVAILABLE;
            e.error = null;
            if (e.needBytes > budget.bytes()) {
                fail(e, 413, tooLarge(e).getMessage());
            }
        } catch (RuntimeException ex) {
            e.scanned = null;
            fail(e, 500, message(ex));
        }
        if (e.state == State.FAILED) {
            LOG.errorf("model %s not usable: %s", e.id, e.error);
        }
    }

    private void fail(Entry e, int status, String error) {
        e.state = State.FAILED;
        e.error = error;
        e.failedStatus = status;
        e.failedSignature = ModelFolder.signature(e.folder);
        e.failedAt = System.nanoTime();
    }

    private boolean usable(String id) {
        synchronized (lock) {
            Entry e = entries.get(id);
            return e != null && (e.state != State.FAILED || worthRetrying(e));
        }
    }

    // ---------------------------------------------------------------- use

    /**
     * Model {@code id}, loaded if it was not (waiting for a load in progress), and pinned: to the calling thread's
     * {@link Scope} when one is open, else to the current HTTP request, else (a test, a tool) not at all. Empty
     * when there is no such model.
     *
     * @throws Refusal          413 {@code model_too_large} when it cannot fit the budget (alone, or beside the models
     *                          this request already holds); 500/503 {@code model_failed} when its folder failed
     * @throws Busy when the budget stays held by models in use for lab.models.wait-seconds
     */
    public Optional<LanguageModel> find(String id) {
        Entry e;
        synchronized (lock) {
            e = id == null ? null : entries.get(id);
        }
        if (e == null && id != null) {
            refresh(); // a folder added since
            synchronized (lock) {
                e = entries.get(id);
            }
        }
        if (e == null) {
            return Optional.empty();
        }
        Pin pin = pin(e);
        attach(pin);
        return Optional.of(pin.model());
    }

    /** The model a request asked for, or the default when it named none (see {@link #find}). */
    public Optional<LanguageModel> resolve(String idOrNull) {
        return find(idOrNull == null || idOrNull.isBlank() ? defaultId : idOrNull);
    }

    /** The model {@code idOrNull} names (the default one when null or blank), or the 404 that names the models. */
    public LanguageModel require(String idOrNull) {
        boolean none = idOrNull == null || idOrNull.isBlank();
        return resolve(idOrNull).orElseThrow(() -> none
                ? new Refusal(Refusal.Kind.NOT_FOUND, "no_model", "no model is available")
                : unknownModel(idOrNull, "", ""));
    }

    /**
     * The refusal for a model that is not here (the one place it is worded): 404 unknown_model naming the models
     * there are; {@code where} and {@code more} add where it was looked for and why it was wanted (empty: nothing).
     */
    public Refusal unknownModel(String id, String where, String more) {
        return new Refusal(Refusal.Kind.NOT_FOUND, "unknown_model", "model '" + id + "' is not available" + where
                + " (models: " + ids() + ")" + more);
    }

    /**
     * Opens a scope on the calling thread: models found until it is closed stay pinned (nested scopes release
     * their own). {@code carried}: models another thread holds for this work, pinned here too.
     *
     * @throws CancellationException when a carried model was unloaded meanwhile
     */
    public Scope openScope(Collection<LanguageModel> carried) {
        Scope s = new Scope(SCOPE.get());
        SCOPE.set(s);
        try {
            for (LanguageModel m : carried) {
                s.pins.add(pinLoaded(m));
            }
        } catch (RuntimeException ex) {
            s.close();
            throw ex;
        }
        return s;
    }

    /** The models the calling thread holds now (its scopes' and its HTTP request's), to carry into a task. */
    public List<LanguageModel> heldHere() {
        Set<LanguageModel> out = new LinkedHashSet<>();
        for (Scope s = SCOPE.get(); s != null; s = s.outer) {
            s.pins.forEach(p -> out.add(p.model()));
        }
        if (requestActive()) {
            requestModels.pins().forEach(p -> out.add(p.model()));
        }
        return List.copyOf(out);
    }

    private void attach(Pin pin) {
        Scope s = SCOPE.get();
        while (s != null && s.closed) { // closed out of order: its outer scope holds the pin
            s = s.outer;
        }
        if (s != null) {
            s.pins.add(pin);
        } else if (requestActive()) {
            requestModels.add(pin);
        } else {
            release(List.of(pin));
        }
    }

    private static boolean requestActive() {
        return Arc.container() != null && Arc.container().requestContext().isActive();
    }

    /** An extra pin on a model already pinned elsewhere (carried into a task). */
    private Pin pinLoaded(LanguageModel m) {
        synchronized (lock) {
            Entry e = entries.get(m.id());
            if (e == null || e.model != m || e.state != State.LOADED) {
                throw new CancellationException("model '" + m.id() + "' was unloaded before the work started");
            }
            e.users++;
            e.lastUsed = ++clock;
            return new Pin(e, m);
        }
    }

    void release(List<Pin> pins) {
        if (pins.isEmpty()) {
            return;
        }
        synchronized (lock) {
            for (Pin p : pins) {
                if (p.entry().model == p.model() && p.entry().users > 0) {
                    p.entry().users--;
                    p.entry().lastUsed = ++clock;
                }
            }
            lock.notifyAll();
        }
    }

    /** Loads the entry if needed (or waits for its load) and pins it. */
    private Pin pin(Entry e) {
        long deadline = System.nanoTime() + waitMillis * 1_000_000;
        while (true) {
            List<Entry> victims = List.of();
            List<LanguageModel> victimModels = new ArrayList<>();
            CompletableFuture<LanguageModel> other = null;
            CompletableFuture<LanguageModel> mine = null;
            synchronized (lock) {
                if (e.state == State.FAILED) {
                    if (!worthRetrying(e)) {
                        throw failed(e);
                    }
                    LOG.infof("model %s: trying again (%s)", e.id, e.failedStatus == 503
                            ? "it ran out of memory over 30 s ago" : "its folder changed");
                    scan(e);
                    if (e.state == State.FAILED) {
                        throw failed(e);
                    }
                }
                switch (e.state) {
                    case LOADED -> {
                        e.users++;
                        e.lastUsed = ++clock;
                        return new Pin(e, e.model);
                    }
                    case LOADING -> other = e.loading;
                    default -> {
                        if (e.needBytes > budget.bytes()) {
                            throw tooLarge(e);
                        }
                        victims = victims(e.needBytes);
                        if (victims == null) { // the memory is held by models in use
                            List<LanguageModel> mine0 = heldHere();
                            long own = heldBytes(mine0);
                            if (own + e.needBytes > budget.bytes()) { // waiting would not help: refused at once
                                throw tooLargeBeside(e, mine0, own);
                            }
                            long left = deadline - System.nanoTime();
                            if (left <= 0) {
                                throw busy(e);
                            }
                            try {
                                lock.wait(Math.max(1, Math.min(1000, left / 1_000_000)));
                            } catch (InterruptedException ex) {
                                Thread.currentThread().interrupt();
                                throw new CancellationException("interrupted while waiting for model memory");
                            }
                            continue;
                        }
                        for (Entry v : victims) {
                            long bytes = ModelMemory.need(v.model.weightBytes());
                            releasing += bytes;
                            victimModels.add(v.model);
                            v.model = null;
                            v.state = State.AVAILABLE;
                        }
                        e.state = State.LOADING;
                        e.loading = mine = new CompletableFuture<>();
                    }
                }
            }
            unload(victimModels, e.id);
            if (mine != null) {
                load(e, mine);
            } else {
                try {
                    other.get();
                } catch (ExecutionException ex) {
                    // the loading thread marked the entry failed: the loop answers with its reason
                } catch (InterruptedException ex) {
                    Thread.currentThread().interrupt();
                    throw new CancellationException("interrupted while waiting for model '" + e.id + "' to load");
                }
            }
        }
    }

    /**
     * A failed model is tried again when its folder changed since, or when it ran out of memory at least
     * {@link #OOM_RETRY_NANOS} ago (the memory may have been freed since).
     */
    private boolean worthRetrying(Entry e) {
        return e.state == State.FAILED && (e.failedStatus == 503 && System.nanoTime() - e.failedAt > OOM_RETRY_NANOS
                || !ModelFolder.signature(e.folder).equals(e.failedSignature));
    }

    /**
     * The loaded models to unload, least recently used first, so that {@code need} fits; none when it fits as it
     * is; null when even unloading every model nothing uses would not make room. Called with the lock held.
     */
    private List<Entry> victims(long need) {
        long used = releasing;
        List<Entry> idle = new ArrayList<>();
        for (Entry x : entries.values()) {
            if (x.state == State.LOADING) {
                used += x.needBytes;
            } else if (x.state == State.LOADED) {
                used += ModelMemory.need(x.model.weightBytes());
                if (x.users == 0 && !decoders.busy(x.model)) {
                    idle.add(x);
                }
            }
        }
        idle.sort(Comparator.comparingLong(x -> x.lastUsed));
        List<Entry> out = new ArrayList<>();
        for (Entry x : idle) {
            if (used + need <= budget.bytes()) {
                break;
            }
            out.add(x);
            used -= ModelMemory.need(x.model.weightBytes());
        }
        return used + need <= budget.bytes() ? out : null;
    }

    private long heldBytes(List<LanguageModel> models) {
        long sum = 0;
        for (LanguageModel m : models) {
            sum += ModelMemory.need(m.weightBytes());
        }
        return sum;
    }

    /** Frees the models' per-model state and tensors (outside the lock), then gives their bytes back. */
    private void unload(List<LanguageModel> models, String forId) {
        for (LanguageModel m : models) {
            long bytes = ModelMemory.need(m.weightBytes());
            try {
                unloaded.fire(new Unloaded(m.id(), m));
            } catch (RuntimeException ex) {
                LOG.errorf(ex, "while unloading model %s", m.id());
            }
            m.close();
            synchronized (lock) {
                releasing -= bytes;
                lock.notifyAll();
            }
            LOG.infof("unloaded model %s (%.0f MB) to make room for %s", m.id(), ModelMemory.mb(bytes), forId);
        }
    }

    private void load(Entry e, CompletableFuture<LanguageModel> done) {
        long t0 = System.nanoTime();
        try {
            LanguageModel m = LanguageModel.load(e.folder, device, DataType.FLOAT32, generationDtype, e.storage);
            synchronized (lock) {
                e.model = m;
                e.state = State.LOADED;
                e.lastUsed = ++clock;
                lock.notifyAll();
            }
            done.complete(m);
            LOG.infof("loaded model %s from %s in %.0f ms (%.0f MB of %.0f MB budget in use)", e.id, e.folder,
                    (System.nanoTime() - t0) / 1e6, ModelMemory.mb(usedBytes()), budget.megabytes());
        } catch (RuntimeException | OutOfMemoryError ex) {
            boolean oom = ex instanceof OutOfMemoryError || String.valueOf(ex.getMessage()).contains("out of memory");
            String msg = oom ? "ran out of memory while loading (" + message(ex) + "); the model memory budget"
                    + " (LAB_MODEL_MEMORY, " + Math.round(budget.megabytes()) + " MB) may be more than the JVM or"
                    + " the device can hold (-XX:MaxDirectMemorySize, -Xmx)" : message(ex);
            synchronized (lock) {
                fail(e, oom ? 503 : 500, msg);
                e.loading = null;
                lock.notifyAll();
            }
            done.completeExceptionally(ex);
            LOG.errorf("model %s not loaded: %s", e.id, msg);
            throw failed(e);
        }
    }

    private void preloadDefault() {
        Set<String> tried = new LinkedHashSet<>();
        while (true) {
            String id = defaultId;
            if (id == null || !tried.add(id)) {
                return;
            }
            try {
                find(id);
                return;
            } catch (RuntimeException ex) {
                String next = order.stream().filter(x -> !tried.contains(x) && usable(x)).findFirst().orElse(null);
                LOG.warnf("the default model %s did not load (%s); the default is now %s", id, ex.getMessage(), next);
                defaultId = next;
            }
        }
    }

    // ---------------------------------------------------------------- refusals

    private Refusal tooLarge(Entry e) {
        return new Refusal(Refusal.Kind.TOO_LARGE, "model_too_large",
                String.format(Locale.ROOT, "model '%s' needs about %.0f MB"
                        + " (%s parameters held as %s, plus %.0f%% and %.0f MB), more than the model memory budget"
                        + " of %.0f MB (%s)", e.id, ModelMemory.mb(e.needBytes),
                e.scanned.config().parameterCount(), heldAs(e.storage), ModelMemory.MARGIN * 100,
                ModelMemory.mb(ModelMemory.FIXED_BYTES), budget.megabytes(), budget.source()))
                .detail("model", e.id)
                .detail("needMb", Math.round(ModelMemory.mb(e.needBytes)))
                .detail("budgetMb", Math.round(budget.megabytes()));
    }

    private Refusal tooLargeBeside(Entry e, List<LanguageModel> held, long heldBytes) {
        return new Refusal(Refusal.Kind.TOO_LARGE, "model_too_large",
                String.format(Locale.ROOT, "model '%s' needs about %.0f MB;"
                        + " with the models this request already holds (%s, %.0f MB) that is more than the model"
                        + " memory budget of %.0f MB (%s)", e.id, ModelMemory.mb(e.needBytes),
                held.stream().map(LanguageModel::id).toList(), ModelMemory.mb(heldBytes), budget.megabytes(),
                budget.source()))
                .detail("model", e.id)
                .detail("needMb", Math.round(ModelMemory.mb(e.needBytes)))
                .detail("budgetMb", Math.round(budget.megabytes()))
                .detail("heldByRequestMb", Math.round(ModelMemory.mb(heldBytes)));
    }

    /**
     * How a scanned model's weights are held: as configured, or with {@code auto} widened to float32 (the fastest
     * per token) when that fits the memory budget, else compact (a bfloat16 or float16 checkpoint's matrices kept in
     * their two bytes, widened layer by layer as they run). Called with the lock held.
     */
    private WeightStorage storage(ModelFolder scanned) {
        if (storage != null) {
            return storage;
        }
        long wide = ModelMemory.need(ModelMemory.weightBytes(scanned, WeightStorage.FLOAT32, generationDtype));
        return wide <= budget.bytes() ? WeightStorage.FLOAT32 : WeightStorage.COMPACT.on(device);
    }

    private String heldAs(WeightStorage held) {
        String analysis = held == WeightStorage.COMPACT ? "float32 (bfloat16 and float16 matrices kept so)"
                : "float32";
        return generationDtype == DataType.FLOAT32 ? analysis : analysis + " and " + DevicePolicy.name(generationDtype);
    }

    private Refusal failed(Entry e) {
        if (e.failedStatus == 413 && e.scanned != null) {
            return tooLarge(e);
        }
        return new Refusal(e.failedStatus == 503 ? Refusal.Kind.UNAVAILABLE : Refusal.Kind.FAILED, "model_failed",
                "model '" + e.id + "' failed to load: " + e.error).detail("model", e.id);
    }

    private Busy busy(Entry e) {
        int retry = (int) Math.max(1, Math.min(3600, waitMillis / 1000));
        List<String> inUse;
        synchronized (lock) {
            inUse = entries.values().stream().filter(x -> x.state == State.LOADED && x.users > 0)
                    .map(x -> x.id).toList();
        }
        return new Busy(String.format(Locale.ROOT, "model '%s' needs about %.0f MB and the model"
                        + " memory budget (%.0f MB) is held by models in use %s; retry in about %d s", e.id,
                ModelMemory.mb(e.needBytes), budget.megabytes(), inUse, retry), retry);
    }

    private static String message(Throwable ex) {
        return ex.getMessage() == null ? ex.toString() : ex.getMessage();
    }

    // ---------------------------------------------------------------- what is there

    /** Every model with its state, by id (nothing is loaded). */
    public List<Status> statuses() {
        refresh();
        synchronized (lock) {
            List<Status> out = new ArrayList<>();
            for (Entry e : entries.values()) {
                LanguageModel m = e.model;
                out.add(new Status(e.id, e.folder.toString(), e.state, e.error,
                        e.scanned == null ? null : e.scanned.config(),
                        m != null ? ModelMemory.need(m.weightBytes()) : e.needBytes,
                        DevicePolicy.name(m != null ? m.generationDataType() : generationDtype),
                        DevicePolicy.name(m != null ? m.dataType() : DataType.FLOAT32),
                        m != null ? m.device().toString() : device.toString(), e.id.equals(defaultId),
                        m != null ? e.users : 0));
            }
            return out;
        }
    }

    /** The ids of the models a request may name (all but the failed ones), by id. */
    public List<String> ids() {
        refresh();
        synchronized (lock) {
            return entries.values().stream().filter(e -> e.state != State.FAILED).map(e -> e.id).toList();
        }
    }

    /** The models loaded now (for reports; a model here may be unloaded at any time unless pinned). */
    public List<String> loadedIds() {
        synchronized (lock) {
            return entries.values().stream().filter(e -> e.state == State.LOADED).map(e -> e.id).toList();
        }
    }

    /** The folders that failed (to scan, to load, or to fit the budget), with the reasons. */
    public Collection<Failure> failures() {
        refresh();
        synchronized (lock) {
            return entries.values().stream().filter(e -> e.state == State.FAILED)
                    .map(e -> new Failure(e.id, e.folder.toString(), e.error)).toList();
        }
    }

    /** Bytes held by loaded and loading models now. */
    public long usedBytes() {
        synchronized (lock) {
            long used = releasing;
            for (Entry x : entries.values()) {
                if (x.state == State.LOADING) {
                    used += x.needBytes;
                } else if (x.state == State.LOADED) {
                    used += ModelMemory.need(x.model.weightBytes());
                }
            }
            return used;
        }
    }

    public ModelMemory.Budget budget() {
        return budget;
    }

    public String defaultId() {
        return defaultId;
    }

    public Device device() {
        return device;
    }

    /** dtype of generation: float32 on the CPU, LAB_GPU_DTYPE on a GPU. */
    public DataType generationDtype() {
        return generationDtype;
    }

    @PreDestroy
    void close() {
        List<LanguageModel> loaded = new ArrayList<>();
        synchronized (lock) {
            for (Entry e : entries.values()) {
                if (e.model != null) {
                    loaded.add(e.model);
                    e.model = null;
                    e.state = State.AVAILABLE;
                }
            }
        }
        loaded.forEach(LanguageModel::close);
    }
}
