package lab.steering.generate;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicInteger;
import lab.steering.hook.Hook;
import lab.steering.hook.HookContext;
import lab.steering.hook.Hooks;
import lab.steering.hook.RowBatchHook;
import lab.steering.hook.Site;
import lab.steering.model.KvCache;
import lab.steering.model.LanguageModel;
import lab.steering.model.RowCache;
import lab.steering.model.Threads;
import lab.steering.model.Transformer;

/**
 * Continuous batching for one model: the rows of every running {@link Decode} go through one forward pass per
 * step ({@link Transformer#forwardRows}), each row at its own position, with its own KV cache slot, sampler and
 * steering. A decoding joins at the next step after it is submitted (its prompt's forward runs by itself, exactly as
 * unbatched, and its keys and values are copied into free slots) and leaves when it ends or is cancelled, freeing
 * its slots at once.
 *
 * <p>Steering is applied per row: at each hook site any row has hooks for, the batch (rows, 1, d) is split into
 * rows, each steered row's hooks see its own (1, 1, d) slice with its own position (as its unbatched forward would),
 * and the rows are stacked again. A row's tokens are therefore those of the same decoding run alone
 * ({@link DecodeDriver#alone}), up to the order of float sums in batched matrix products.
 *
 * <p>One thread per model runs the steps; submitting threads wait on the returned future. At most {@code maxRows}
 * rows decode at once and at most {@code maxWaiting} rows wait for a place; {@link #submit} refuses beyond that
 * with {@link Full} (the API's 429). {@link #submitQueued} (jobs, which have their own admission) waits for none.
 */
public final class BatchDecoder implements AutoCloseable {

    /** Refused: the rows waiting for a place would exceed the bound. */
    public static final class Full extends RuntimeException {
        private final int retryAfterSeconds;

        Full(String message, int retryAfterSeconds) {
            super(message);
            this.retryAfterSeconds = retryAfterSeconds;
        }

        public int retryAfterSeconds() {
            return retryAfterSeconds;
        }
    }

    /**
     * What the decoder did so far, for benchmarks and tests: batched steps, rows summed over steps, the most rows in
     * one step, and where the time went (seconds): prompts' forwards, batched forwards (with the logits' copy to the
     * host), and the decodings' own work between forwards (sampling, diagnostics, listeners).
     */
    public record Stats(long steps, long rowSteps, int maxRowsSeen, double promptS, double forwardS, double hostS) {
    }

    private static final AtomicInteger THREADS = new AtomicInteger();
    /** From this many decodings in a step, their sampling runs on the common fork-join pool as well. */
    private static final int PARALLEL_HOST_ROWS = 4;

    private final LanguageModel model;
    private final Transformer tf;
    private final int maxRows;
    private final int maxWaiting;
    private final Object lock = new Object();
    private final Deque<Entry> waiting = new ArrayDeque<>();
    private final List<Entry> active = new ArrayList<>();
    private final Thread thread;
    private int waitingRows;
    private volatile boolean closed;
    private volatile double msPerStep = 50;
    private long steps;
    private long rowSteps;
    private int maxRowsSeen;
    private long promptNs;
    private long forwardNs;
    private long hostNs;
    private NDManager manager;
    private RowCache cache;

    /** One submitted decoding: its rows occupy slots {@code slot .. slot + rows - 1} while active. */
    private static final class Entry {
        final Decode d;
        final Group group;
        NDManager m;
        Hooks[] hooks;
        float[][] logits; // while joining: each row's prompt logits
        int slot;
        long token;
        int rows;

        Entry(Decode d, Group group) {
            this.d = d;
            this.group = group;
            this.rows = d.rows();
        }
    }

    /** The decodings submitted together: the future completes when all of them have ended. */
    private static final class Group {
        final CompletableFuture<Void> done = new CompletableFuture<>();
        int left;
    }

    public BatchDecoder(LanguageModel model, int maxRows, int maxWaiting) {
        if (maxRows < 2) {
            throw new IllegalArgumentException("maxRows must be at least 2 (a steered run has two rows)");
        }
        this.model = model;
        this.tf = model.decoder();
        this.maxRows = maxRows;
        this.maxWaiting = Math.max(0, maxWaiting);
        this.thread = new Thread(this::loop, "decoder-" + THREADS.incrementAndGet() + "-" + model.id());
        this.thread.setDaemon(true);
        this.thread.start();
    }

    public int maxRows() {
        return maxRows;
    }

    /** False once closed, or if its thread ended on an unexpected error (its decodings then failed). */
    public boolean running() {
        return !closed && thread.isAlive();
    }

    /** Rows decoding now and rows waiting for a place (a snapshot). */
    public int[] load() {
        synchronized (lock) {
            int rows = 0;
            for (Entry e : active) {
                rows += e.rows;
            }
            return new int[] {rows, waitingRows};
        }
    }

    public Stats stats() {
        synchronized (lock) {
            return new Stats(steps, rowSteps, maxRowsSeen, promptNs / 1e9, forwardNs / 1e9, hostNs / 1e9);
        }
    }

    /**
     * Queues decodings that run as rows of the batched steps (in order, as places free up).
     *
     * @return completes when every one has ended (exceptionally when one failed; a cancelled one ends it with a
     *         {@link CancellationException})
     * @throws Full when the waiting rows would exceed {@code maxWaiting}
     */
    public CompletableFuture<Void> submit(Decode... ds) {
        return enqueue(true, ds);
    }

    /** As {@link #submit}, without the bound on waiting rows (work that was admitted elsewhere: jobs). */
    public CompletableFuture<Void> submitQueued(Decode... ds) {
        return enqueue(false, ds);
    }

    /**
     * Runs the decodings (as {@link #submitQueued}) and waits for them all: for command-line tools and benchmarks,
     * which own their decoder. A decoding's failure is thrown (unchecked); an interrupt cancels them.
     */
    public void runAll(Decode... ds) {
        CompletableFuture<Void> f = submitQueued(ds);
        try {
            f.get();
        } catch (InterruptedException e) {
            for (Decode d : ds) {
                d.cancel();
            }
            Thread.currentThread().interrupt();
            throw new CancellationException("interrupted while decoding");
        } catch (java.util.concurrent.ExecutionException e) {
            throw e.getCause() instanceof RuntimeException re ? re : new IllegalStateException(e.getCause());
        }
    }

    private CompletableFuture<Void> enqueue(boolean bounded, Decode... ds) {
        Group g = new Group();
        int rows = 0;
        for (Decode d : ds) {
            if (d.rows() > maxRows) {
                throw new IllegalArgumentException("a decoding of " + d.rows() + " rows does not fit " + maxRows);
            }
            rows += d.rows();
        }
        synchronized (lock) {
            if (closed) {
                throw new IllegalStateException("the decoder of model '" + model.id() + "' has stopped");
            }
            if (bounded && waitingRows + rows > maxWaiting && !(waitingRows == 0 && rows <= maxRows)) {
                int retry = (int) Math.max(1, Math.min(3600,
                        Math.ceil(msPerStep * 64 * (1 + (double) waitingRows / maxRows) / 1000)));
                throw new Full("model '" + model.id() + "' is decoding " + maxRows + " rows with " + waitingRows
                        + " waiting (limits: LAB_BATCH_MAX_ROWS " + maxRows + ", LAB_BATCH_MAX_WAITING " + maxWaiting
                        + "); retry in about " + retry + " s", retry);
            }
            g.left = ds.length;
            for (Decode d : ds) {
                waiting.add(new Entry(d, g));
            }
            waitingRows += rows;
            lock.notifyAll();
        }
        if (ds.length == 0) {
            g.done.complete(null);
        }
        return g.done;
    }

    // ---------------------------------------------------------------- the decoding thread

    private void loop() {
        manager = model.manager().newSubManager();
        cache = new RowCache(manager, tf.config(), maxRows, 64, tf.dataType());
        try {
            while (!closed) {
                List<Entry> joining = takeJoining();
                if (joining == null) {
                    break;
                }
                join(joining);
                dropCancelled();
                if (!active.isEmpty()) {
                    step();
                }
            }
        } finally {
            synchronized (lock) {
                closed = true;
                for (Entry e : waiting) {
                    finish(e, new CancellationException("the decoder stopped"));
                }
                waiting.clear();
                waitingRows = 0;
            }
            for (Entry e : List.copyOf(active)) {
                leave(e, new CancellationException("the decoder stopped"));
            }
            cache.close();
            manager.close();
        }
    }

    /** The entries that fit now (blocking while there is nothing to do); null when closed. */
    private List<Entry> takeJoining() {
        synchronized (lock) {
            while (active.isEmpty() && waiting.isEmpty() && !closed) {
                try {
                    lock.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return null;
                }
            }
            if (closed) {
                return null;
            }
            int used = 0;
            for (Entry e : active) {
                used += e.rows;
            }
            List<Entry> out = new ArrayList<>();
            while (!waiting.isEmpty() && used + waiting.peek().rows <= maxRows) {
                Entry e = waiting.poll();
                waitingRows -= e.rows;
                used += e.rows;
                out.add(e);
            }
            return out;
        }
    }

    /**
     * The prompts' forwards of the joining decodings, then their first tokens; their rows take the next free slots.
     * Rows without hooks (plain generations, the unsteered twins of steered runs) go through one forward together,
     * padded on the right to the longest prompt: the causal mask keeps every real position from seeing the padding,
     * so each row's keys, values and last logits are those of its own prompt. Rows with hooks (steering, which keeps
     * state across its positions) run alone, exactly as unbatched.
     */
    private void join(List<Entry> joining) {
        long t0 = System.nanoTime();
        List<Entry> started = new ArrayList<>();
        for (Entry e : joining) {
            if (e.d.cancelled()) {
                finish(e, new CancellationException("cancelled before it started"));
                continue;
            }
            try {
                e.m = model.manager().newSubManager();
                e.hooks = e.d.start(e.m);
                e.logits = new float[e.rows][];
                started.add(e);
            } catch (RuntimeException | Error err) {
                closeQuietly(e);
                finish(e, err);
            }
        }
        List<Entry> plainOwner = new ArrayList<>();
        List<Integer> plainRow = new ArrayList<>();
        for (Entry e : started) {
            for (int r = 0; r < e.rows; r++) {
                if (e.hooks[r].isEmpty()) {
                    plainOwner.add(e);
                    plainRow.add(r);
                }
            }
        }
        KvCache padded = null;
        try (NDManager m = model.manager().newSubManager()) {
            if (plainOwner.size() > 1) {
                try {
                    padded = prefillTogether(m, plainOwner, plainRow);
                } catch (RuntimeException | Error err) {
                    for (Entry e : new java.util.LinkedHashSet<>(plainOwner)) {
                        started.remove(e);
                        closeQuietly(e);
                        finish(e, err);
                    }
                }
            }
            for (Entry e : started) {
                admit(e, padded, plainOwner, plainRow);
            }
        }
        promptNs += System.nanoTime() - t0;
    }

    /** One right-padded forward of the hookless rows' prompts; each row's last logits go to its entry. */
    private KvCache prefillTogether(NDManager m, List<Entry> owner, List<Integer> row) {
        int n = owner.size();
        int longest = 0;
        for (Entry e : owner) {
            longest = Math.max(longest, e.d.prompt().length);
        }
        long[] ids = new long[n * longest]; // padding: token 0, after each prompt, never seen by its real positions
        long[] last = new long[n];
        for (int i = 0; i < n; i++) {
            long[] p = owner.get(i).d.prompt();
            System.arraycopy(p, 0, ids, i * longest, p.length);
            last[i] = (long) i * longest + p.length - 1;
        }
        KvCache padded = new KvCache(m, tf.config(), n, longest, tf.dataType());
        float[] flat;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Threads.forStep(m.getDevice(), (long) n * longest);
            NDArray hidden = tf.forward(m.create(ids, new Shape(n, longest)), padded, Hooks.NONE);
            NDArray lastHidden = hidden.reshape(n * longest, -1).get(new ai.djl.ndarray.index.NDIndex("{}",
                    m.create(last)));
            flat = tf.logits(lastHidden).toType(DataType.FLOAT32, false).toFloatArray();
        }
        int v = flat.length / n;
        for (int i = 0; i < n; i++) {
            owner.get(i).logits[row.get(i)] = java.util.Arrays.copyOfRange(flat, i * v, (i + 1) * v);
        }
        return padded;
    }

    /** The remaining rows' prompts alone, every row into its slot, then the decoding's first token. */
    private void admit(Entry e, KvCache padded, List<Entry> plainOwner, List<Integer> plainRow) {
        int slot = usedRows();
        try {
            long[] prompt = e.d.prompt();
            for (int r = 0; r < e.rows; r++) {
                int at = padded == null ? -1 : indexOf(plainOwner, plainRow, e, r);
                if (at >= 0) {
                    cache.load(slot + r, padded, at, prompt.length);
                } else {
                    try (KvCache one = new KvCache(e.m, tf.config(), 1, prompt.length, tf.dataType())) {
                        e.logits[r] = Generator.lastLogits(tf, e.m, prompt, one, e.hooks[r]);
                        cache.load(slot + r, one);
                    }
                }
            }
            e.d.prompted(e.logits);
            e.logits = null;
            e.token = e.d.next();
        } catch (RuntimeException | Error err) {
            for (int r = 0; r < e.rows; r++) {
                cache.clear(slot + r);
            }
            closeQuietly(e);
            finish(e, err);
            return;
        }
        if (e.token < 0) {
            for (int r = 0; r < e.rows; r++) {
                cache.clear(slot + r);
            }
            closeQuietly(e);
            finish(e, null);
            return;
        }
        e.slot = slot;
        synchronized (lock) {
            active.add(e);
        }
    }

    private static int indexOf(List<Entry> owner, List<Integer> row, Entry e, int r) {
        for (int i = 0; i < owner.size(); i++) {
            if (owner.get(i) == e && row.get(i) == r) {
                return i;
            }
        }
        return -1;
    }

    private int usedRows() {
        int used = 0;
        for (Entry e : active) {
            used += e.rows;
        }
        return used;
    }

    private void dropCancelled() {
        for (Entry e : List.copyOf(active)) {
            if (e.d.cancelled()) {
                leave(e, new CancellationException("cancelled"));
            }
        }
    }

    /** One batched forward of every active row, then each decoding's next token. */
    private void step() {
        int n = usedRows();
        long[] ids = new long[n];
        int[] position = new int[n];
        Entry[] owner = new Entry[n];
        for (Entry e : active) {
            for (int r = 0; r < e.rows; r++) {
                ids[e.slot + r] = e.token;
                position[e.slot + r] = cache.length(e.slot + r);
                owner[e.slot + r] = e;
            }
        }
        long[] hookNs = new long[n];
        float[] flat;
        long t0 = System.nanoTime();
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Threads.forStep(m.getDevice(), 1); // a decoding step whatever its rows (LAB_DECODE_THREADS; measured)
            NDArray input = m.create(ids, new Shape(n, 1));
            NDArray hidden = tf.forwardRows(input, cache, rowHooks(owner, position, hookNs));
            flat = tf.logits(hidden.reshape(n, -1)).toType(DataType.FLOAT32, false).toFloatArray();
        } catch (RuntimeException | Error err) {
            // the cache may hold half a step: every active decoding fails, and the slots start over
            for (Entry e : List.copyOf(active)) {
                leave(e, err);
            }
            return;
        }
        long wall = System.nanoTime() - t0;
        msPerStep = 0.9 * msPerStep + 0.1 * wall / 1e6;
        long allHooks = java.util.Arrays.stream(hookNs).sum();
        float[] out = flat;
        int v = flat.length / n;
        long t1 = System.nanoTime();
        // each decoding samples its next token (sampling, diagnostics, listeners): independent of the others, so
        // spread over the cores, which the one-thread forward leaves idle meanwhile; slots stay put until all are done
        Entry[] all = active.toArray(Entry[]::new);
        Throwable[] failed = new Throwable[all.length];
        java.util.stream.IntStream range = java.util.stream.IntStream.range(0, all.length);
        (all.length >= PARALLEL_HOST_ROWS ? range.parallel() : range).forEach(i -> {
            Entry e = all[i];
            float[][] logits = new float[e.rows][];
            long[] ns = new long[e.rows];
            for (int r = 0; r < e.rows; r++) {
                int row = e.slot + r;
                logits[r] = java.util.Arrays.copyOfRange(out, row * v, (row + 1) * v);
                ns[r] = wall - allHooks + hookNs[row];
            }
            try {
                e.d.stepped(logits, ns);
                e.token = e.d.next();
            } catch (RuntimeException | Error err) {
                failed[i] = err;
            }
        });
        List<Entry> ended = new ArrayList<>();
        List<Throwable> why = new ArrayList<>();
        for (int i = 0; i < all.length; i++) {
            if (failed[i] != null || all[i].token < 0) {
                ended.add(all[i]);
                why.add(failed[i]);
            }
        }
        for (int i = 0; i < ended.size(); i++) {
            leave(ended.get(i), why.get(i));
        }
        synchronized (lock) {
            steps++;
            rowSteps += n;
            maxRowsSeen = Math.max(maxRowsSeen, n);
            forwardNs += wall;
            hostNs += System.nanoTime() - t1;
        }
    }

    /**
     * Hooks that run each row's own hooks at every site some row has hooks for. Rows whose one hook there is a
     * {@link RowBatchHook} are grouped by its key and each group is applied in one call (the steering operators of
     * all steered rows in one batched product); any other row's hooks see its own (1, 1, d) slice with the context
     * (position, 1), as its unbatched forward would, and the slice is written back. The time each row's hooks take
     * goes to {@code hookNs} (a group's time shared equally).
     */
    private static Hooks rowHooks(Entry[] owner, int[] position, long[] hookNs) {
        Set<Site> sites = new HashSet<>();
        for (int row = 0; row < owner.length; row++) {
            sites.addAll(owner[row].hooks[row - owner[row].slot].sites());
        }
        if (sites.isEmpty()) {
            return Hooks.NONE;
        }
        Hooks.Builder b = Hooks.builder();
        for (Site site : sites) {
            b.add(site, (s, x, ctx) -> {
                java.util.Map<Object, List<Integer>> groups = new java.util.LinkedHashMap<>();
                List<Integer> single = new ArrayList<>();
                for (int row = 0; row < owner.length; row++) {
                    List<Hook> hs = owner[row].hooks[row - owner[row].slot].at(s);
                    if (hs.size() == 1 && hs.get(0) instanceof RowBatchHook rb) {
                        groups.computeIfAbsent(rb.batchKey(), k -> new ArrayList<>()).add(row);
                    } else if (!hs.isEmpty()) {
                        single.add(row);
                    }
                }
                NDArray y = x;
                for (List<Integer> rows : groups.values()) {
                    List<RowBatchHook> hooks = new ArrayList<>();
                    int[] at = new int[rows.size()];
                    int[] pos = new int[rows.size()];
                    for (int i = 0; i < at.length; i++) {
                        int row = rows.get(i);
                        hooks.add((RowBatchHook) owner[row].hooks[row - owner[row].slot].at(s).get(0));
                        at[i] = row;
                        pos[i] = position[row];
                    }
                    long t0 = System.nanoTime();
                    y = hooks.get(0).applyRows(hooks, y, at, pos);
                    long each = (System.nanoTime() - t0) / at.length;
                    for (int row : at) {
                        hookNs[row] += each;
                    }
                }
                if (!single.isEmpty()) {
                    y = y == x ? x.duplicate() : y;
                    for (int row : single) {
                        long t0 = System.nanoTime();
                        NDArray one = y.get(row).expandDims(0);
                        NDArray out = owner[row].hooks[row - owner[row].slot].run(s, one,
                                new HookContext(position[row], 1));
                        if (out != one) {
                            y.set(new ai.djl.ndarray.index.NDIndex("{}", row), out.reshape(one.getShape().slice(1)));
                        }
                        hookNs[row] += System.nanoTime() - t0;
                    }
                }
                return y;
            });
        }
        return b.build();
    }

    /** Removes an active entry, closes it and moves the rows after it down so that slots stay contiguous. */
    private void leave(Entry e, Throwable err) {
        synchronized (lock) {
            active.remove(e);
        }
        int slot = 0;
        for (Entry a : active) {
            if (a.slot != slot) {
                for (int r = 0; r < a.rows; r++) {
                    cache.move(a.slot + r, slot + r);
                }
                a.slot = slot;
            }
            slot += a.rows;
        }
        for (int s = slot; s < maxRows; s++) {
            cache.clear(s);
        }
        closeQuietly(e);
        finish(e, err);
    }

    private static void closeQuietly(Entry e) {
        try {
            e.d.close();
        } catch (RuntimeException ignored) {
            // the decoding's own resources; its outcome is reported through its future
        }
        if (e.m != null) {
            e.m.close();
        }
    }

    /** Counts an entry as ended; the group's future completes with the first failure, or when all have ended. */
    private static void finish(Entry e, Throwable err) {
        Group g = e.group;
        if (err != null) {
            g.done.completeExceptionally(err);
        }
        synchronized (g) {
            if (--g.left == 0) {
                g.done.complete(null);
            }
        }
    }

    /** Stops the decoding thread; decodings still running or waiting end with a {@link CancellationException}. */
    @Override
    public void close() {
        synchronized (lock) {
            closed = true;
            lock.notifyAll();
        }
        try {
            thread.join(10_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
