package lab.steering.jacobian;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.function.DoubleConsumer;
import java.util.stream.IntStream;
import lab.steering.model.ModelConfig;
import org.ejml.data.DMatrixRMaj;
import org.ejml.dense.row.factory.DecompositionFactory_DDRM;
import org.ejml.interfaces.decomposition.QRDecomposition;

/**
 * {@link LowRank}'s iteration for one group of tokens [g0, g0 + n): the shared output-space basis Q (d, m), the stored
 * {@code Z_i = J_i^T Q} (n, d, m), and each round's Rayleigh-Ritz step, residual forward products, convergence checks,
 * expansion, restart or completion (the algorithm: {@link LowRank}'s class comment). Between rounds only Q and Z live
 * on the engine, in double; each round's temporaries are freed with its scopes.
 */
final class SharedBasis {

    final FrozenNetwork f;
    final Target target;
    final NDManager m;
    final DataType dtype;
    final LowRank.Settings s;
    final int g0;
    final int n;               // tokens in the group
    final int d;
    final int t;
    final int k;
    final int kk;              // Ritz pairs expanded per token: k + extra
    final boolean perTokenWanted;
    final boolean combinedWanted;
    final int basisMax;
    final int chunk;           // cotangents per transposed pass, full-length inputs per forward pass
    final Work work;

    NDArray q;                 // (d, m) float64, orthonormal columns
    NDArray z;                 // (n, d, m) float64: z[i] = J_{g0+i}^T Q
    int size;                  // m
    double[] frobEstimate;     // from the random first block (null: none)
    boolean[] tokenDone;
    boolean combinedDone;
    // the latest Rayleigh-Ritz step
    double[][] sigma;          // (n, kk)
    double[][][] coef;         // (n, kk, m): u = Q a, v = Z_i a / sigma
    double[] lambdaC;          // (kk) eigenvalues of sum_i G_i (sigma^2 of M)
    double[][] coefC;          // (kk, m)
    double[] traces;           // ||Q^T J_i||_F^2 = trace(G_i)
    double[] lastResidual;     // per token: max over its top k of ||r|| / sigma_1, at the last check
    double lastResidualC;
    // results
    Spectrum[] perToken;
    Spectrum combined;
    int rounds;
    int basisMaxReached;
    int restarts;
    double residual;
    boolean converged;

    /**
     * @param perTokenWanted the top-k of each J_i of the group
     * @param combinedWanted the top-k of the concatenated matrix (then the group is every token)
     */
    SharedBasis(FrozenNetwork f, Target target, NDManager m, DataType dtype, LowRank.Settings s, int g0, int g1, int k,
                boolean perTokenWanted, boolean combinedWanted, Work work) {
        this.f = f;
        this.target = target;
        this.m = m;
        this.dtype = dtype;
        this.s = s;
        this.g0 = g0;
        this.n = g1 - g0;
        this.d = f.c.hiddenSize();
        this.t = f.tokens;
        this.k = k;
        this.kk = Math.min(d, k + s.extra());
        this.perTokenWanted = perTokenWanted;
        this.combinedWanted = combinedWanted;
        this.basisMax = perTokenWanted ? LowRank.basisMax(d, n, s.basisBytes()) : LowRank.basisMax(d, t, s.basisBytes());
        this.chunk = chunkSize(f.c, t, dtype, s.chunkBytes());
        this.work = work;
        tokenDone = new boolean[n];
        lastResidual = new double[n];
        Arrays.fill(lastResidual, Double.POSITIVE_INFINITY);
        lastResidualC = Double.POSITIVE_INFINITY;
        if (!perTokenWanted) {
            Arrays.fill(tokenDone, true);
        }
        combinedDone = !combinedWanted;
    }

    /** Triplets expanded per round while nothing has converged. */
    int perRound() {
        return (perTokenWanted ? n * kk : 0) + (combinedWanted ? kk : 0);
    }

    void run() {
        int m0 = s.firstBlock(d);
        if (s.completes(d, basisMax, 0, perRound())) {
            append(identity(), true); // the complete basis at once: exact, and cheaper than any iteration
        } else {
            append(randomBlock(m0, new Random(s.seed() + g0)), true);
        }
        while (true) {
            rounds++;
            long r0 = System.nanoTime();
            ritz();
            work.ritzNanos += System.nanoTime() - r0;
            if (size == d) { // complete: exact triplets
                Arrays.fill(lastResidual, 0);
                lastResidualC = 0;
                break;
            }
            int active = activeTriplets();
            if (s.completes(d, basisMax, size, active)) { // cheaper than going on
                append(complement(), false);
                continue;
            }
            List<Dir> dirs = residuals(); // forward products; null when all converged
            if (dirs == null || rounds >= s.maxRounds()) {
                break;
            }
            work.expect(2.0 * dirs.size()); // this block's transposed passes and the next round's forward ones
            int room = basisMax - size;
            if (dirs.size() > room) { // restart: keep the Ritz vectors, and room for this round
                int kept = (perTokenWanted ? n * Math.min(kk, size) : 0) + (combinedWanted ? Math.min(kk, size) : 0);
                restart(Math.max(basisMax - dirs.size(), Math.min(kept, basisMax / 2)));
                room = basisMax - size;
                // the largest residuals first, should the room not take them all
                dirs.sort((a, b) -> Double.compare(b.rel(), a.rel()));
            }
            NDArray block;
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                block = newBlock(dirs.size() > room ? dirs.subList(0, room) : dirs);
                if (block != null) {
                    NDScope.unregister(block);
                }
            }
            if (block == null) { // the residuals lie in Q to rounding: nothing left to gain
                break;
            }
            append(block, false);
        }
        finish();
    }

    /** Every wanted token and the combined matrix passed their last check (or the basis is complete). */
    boolean allConverged() {
        if (size == d) {
            return true;
        }
        boolean all = combinedDone;
        for (boolean done : tokenDone) {
            all &= done;
        }
        return all;
    }

    /** Unconverged Ritz pairs (the next round's forward products). */
    int activeTriplets() {
        int a = combinedDone ? 0 : kk;
        for (int i = 0; i < n; i++) {
            a += tokenDone[i] ? 0 : kk;
        }
        return a;
    }

    // ------------------------------------------------------------ basis

    NDArray identity() {
        return m.eye(d, d, 0, DataType.FLOAT64);
    }

    /** A Haar-random orthonormal (d, m0) block: QR of a Gaussian matrix. */
    NDArray randomBlock(int m0, Random rng) {
        DMatrixRMaj a = new DMatrixRMaj(d, m0);
        for (int i = 0; i < a.data.length; i++) {
            a.data[i] = rng.nextGaussian();
        }
        QRDecomposition<DMatrixRMaj> qr = DecompositionFactory_DDRM.qr(d, m0);
        qr.decompose(a);
        DMatrixRMaj qq = qr.getQ(null, true);
        return m.create(qq.data, new Shape(d, m0));
    }

    /** An orthonormal basis of Q's orthogonal complement (d, d - m), from a full QR of Q. */
    NDArray complement() {
        DMatrixRMaj qq = new DMatrixRMaj(d, size, true, q.toDoubleArray());
        QRDecomposition<DMatrixRMaj> qr = DecompositionFactory_DDRM.qr(d, size);
        qr.decompose(qq);
        DMatrixRMaj full = qr.getQ(null, false); // d x d
        double[] out = new double[d * (d - size)];
        for (int r = 0; r < d; r++) {
            System.arraycopy(full.data, r * d + size, out, r * (d - size), d - size);
        }
        return m.create(out, new Shape(d, d - size));
    }

    /**
     * Pushes the new orthonormal columns (d, b) through the transposed network (in chunks) and appends them to
     * Q and their J_i^T block to Z. With {@code first}, the random block also gives the Frobenius estimates.
     */
    void append(NDArray block, boolean first) {
        int b = (int) block.getShape().get(1);
        if (2 * b >= d && FrozenNetwork.mlpMatricesFit(f.c, t, dtype, s.chunkBytes())) {
            f.precomputeMlp(); // about d cotangents go through: the per-token MLP matrices save work
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray seeds = block.transpose().toType(dtype, false); // (b, d)
            List<NDArray> parts = new ArrayList<>();
            for (int c0 = 0; c0 < b; c0 += chunk) {
                int c1 = Math.min(b, c0 + chunk);
                long p0 = System.nanoTime();
                NDArray cols = f.transposeColumns(target, seeds.get(new NDIndex("{}:{}", c0, c1))); // (d, T, c)
                NDArray mine = n == t ? cols : cols.get(new NDIndex(":, {}:{}, :", g0, g0 + n));
                NDArray part = mine.transpose(1, 0, 2).toType(DataType.FLOAT64, false); // (n, d, c)
                part.getDouble(0, 0, 0); // wait for the engine
                work.backwardNanos += System.nanoTime() - p0;
                parts.add(part);
                work.done(0, c1 - c0);
            }
            NDArray zNew = parts.size() == 1 ? parts.get(0) : NDArrays.concat(new NDList(parts), 2);
            if (first && b < d) {
                double[] sq = zNew.square().sum(new int[] {1, 2}).toDoubleArray();
                frobEstimate = new double[n];
                for (int i = 0; i < n; i++) {
                    frobEstimate[i] = sq[i] * d / b;
                }
            }
            NDArray q2 = q == null ? block.duplicate() : q.concat(block, 1);
            NDArray z2 = z == null ? zNew.duplicate() : z.concat(zNew, 2);
            NDScope.unregister(q2, z2);
            if (q != null) {
                q.close();
                z.close();
            }
            q = q2;
            z = z2;
        }
        block.close();
        size = (int) q.getShape().get(1);
        basisMaxReached = Math.max(basisMaxReached, size);
    }

    /**
     * Keeps the span of every token's (and the combined matrix's) current top-kk Ritz vectors, at most
     * {@code room} of them: Q <- Q C, Z <- Z C with C orthonormal in the basis' coordinates.
     */
    void restart(int room) {
        List<double[]> keep = new ArrayList<>();
        if (combinedWanted) {
            keep.addAll(Arrays.asList(coefC));
        }
        // the least converged tokens' vectors first, should the room not hold them all
        Integer[] order = IntStream.range(0, n).boxed().toArray(Integer[]::new);
        Arrays.sort(order, (a, b) -> Double.compare(lastResidual[b], lastResidual[a]));
        if (perTokenWanted) {
            for (int i : order) {
                keep.addAll(Arrays.asList(coef[i]));
            }
        }
        double[][] c = gramSchmidt(keep.toArray(new double[0][]), size, Math.min(room, size), 1e-10);
        int mm = c.length;
        double[] flat = new double[size * mm];
        for (int j = 0; j < mm; j++) {
            for (int r = 0; r < size; r++) {
                flat[r * mm + j] = c[j][r];
            }
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray cm = m.create(flat, new Shape(size, mm));
            NDArray q2 = q.matMul(cm);
            NDArray z2 = z.matMul(cm);
            NDScope.unregister(q2, z2);
            q.close();
            z.close();
            q = q2;
            z = z2;
        }
        size = mm;
        restarts++;
    }

    // ------------------------------------------------------------ Rayleigh-Ritz

    /** The Ritz pairs of every token (and of the combined matrix) in the current basis. */
    void ritz() {
        int mm = size;
        double[] g;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            g = z.transpose(0, 2, 1).matMul(z).toDoubleArray(); // (n, m, m)
        }
        traces = new double[n];
        double[] sum = combinedWanted ? new double[mm * mm] : null;
        for (int i = 0; i < n; i++) {
            for (int r = 0; r < mm; r++) {
                traces[i] += g[i * mm * mm + r * mm + r];
            }
            if (sum != null) {
                for (int e = 0; e < mm * mm; e++) {
                    sum[e] += g[i * mm * mm + e];
                }
            }
        }
        int want = Math.min(kk, mm);
        sigma = new double[n][];
        coef = new double[n][][];
        if (perTokenWanted) {
            IntStream.range(0, n).parallel().forEach(i -> {
                double[] gi = Arrays.copyOfRange(g, i * mm * mm, (i + 1) * mm * mm);
                SymmetricTopK.Pairs p = SymmetricTopK.top(gi, mm, want);
                double[] sv = new double[want];
                for (int j = 0; j < want; j++) {
                    sv[j] = Math.sqrt(Math.max(0, p.values()[j]));
                }
                sigma[i] = sv;
                coef[i] = p.vectors();
            });
        }
        if (combinedWanted) {
            SymmetricTopK.Pairs p = SymmetricTopK.top(sum, mm, want);
            lambdaC = p.values();
            coefC = p.vectors();
        }
    }

    // ------------------------------------------------------------ residuals (forward products)

    /**
     * The residuals {@code J_i v - sigma u} of every unconverged token's Ritz pairs (and {@code M M^T u -
     * lambda u} of the combined matrix's), their convergence recorded; the unconverged ones, normalised, are the
     * directions to add (null when every wanted triplet has converged).
     */
    List<Dir> residuals() {
        List<Dir> dirs = new ArrayList<>();
        int want = Math.min(kk, size);
        int[] list = IntStream.range(0, n).filter(i -> !tokenDone[i]).toArray();
        if (list.length > 0) {
            double[][] uv = ritzVectors(want); // u then v, each (n, d, want)
            // bands of consecutive tokens: a band's inputs leave out the positions before its first token (up to
            // half the work), but each band is a pass of its own over the weights: at least 128 input positions
            // per band, at most 8 bands
            int bands = (int) Math.max(1, Math.min(Math.min(8, list.length), (long) list.length * want * t / 128));
            for (int b = 0; b < bands; b++) {
                int[] band = Arrays.copyOfRange(list, b * list.length / bands, (b + 1) * list.length / bands);
                if (band.length == 0) {
                    continue;
                }
                int from = g0 + band[0];
                int tp = t - from;
                // inputs per pass so that inputs x positions stays within a chunk of full-length inputs
                int per = (int) Math.max(1, Math.min(band.length, (long) chunk * t / ((long) tp * want)));
                for (int b0 = 0; b0 < band.length; b0 += per) {
                    int[] part = Arrays.copyOfRange(band, b0, Math.min(band.length, b0 + per));
                    tokenResiduals(part, from, want, uv[0], uv[1], dirs);
                }
            }
        }
        if (combinedWanted && !combinedDone) {
            combinedResiduals(want, dirs);
        }
        return dirs.isEmpty() ? null : dirs;
    }

    /** u = Q a and v = Z_i a / sigma of every token's Ritz pairs, as (n, d, want) row-major doubles. */
    double[][] ritzVectors(int want) {
        double[] flat = new double[n * size * want];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < want; j++) {
                double[] a = coef[i][j];
                for (int r = 0; r < size; r++) {
                    flat[(i * size + r) * want + j] = a[r];
                }
            }
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray c = m.create(flat, new Shape(n, size, want));
            double[] u = q.matMul(c).toDoubleArray();
            double[] v = z.matMul(c).toDoubleArray();
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < want; j++) {
                    double inv = sigma[i][j] > 0 ? 1 / sigma[i][j] : 0;
                    for (int r = 0; r < d; r++) {
                        v[(i * d + r) * want + j] *= inv;
                    }
                }
            }
            return new double[][] {u, v};
        }
    }

    /**
     * One forward pass of the right Ritz vectors of the tokens {@code part} (group indices, at positions >= from),
     * each at its own position: records their convergence and adds their unconverged residuals to {@code dirs}.
     */
    void tokenResiduals(int[] part, int from, int want, double[] u, double[] v, List<Dir> dirs) {
        int tp = t - from;
        int cols = part.length * want;
        double[] x = new double[d * tp * cols]; // (d, tp, cols)
        for (int e = 0; e < part.length; e++) {
            int i = part[e];
            int pos = g0 + i - from;
            for (int j = 0; j < want; j++) {
                int col = e * want + j;
                for (int r = 0; r < d; r++) {
                    x[(r * tp + pos) * cols + col] = v[(i * d + r) * want + j];
                }
            }
        }
        double[] w = forward(x, tp, cols, from);
        double positions = 0;
        for (int i : part) {
            positions += (double) (t - (g0 + i)) / t;
        }
        work.done(positions * want, 0);
        for (int e = 0; e < part.length; e++) {
            int i = part[e];
            double top = sigma[i][0];
            double worst = 0;
            boolean done = true;
            List<Dir> mine = new ArrayList<>();
            for (int j = 0; j < want; j++) {
                int col = e * want + j;
                double[] r = new double[d];
                double norm = 0;
                for (int c = 0; c < d; c++) {
                    r[c] = w[c * cols + col] - sigma[i][j] * u[(i * d + c) * want + j];
                    norm += r[c] * r[c];
                }
                norm = Math.sqrt(norm);
                double rho = top > 0 ? norm / top : 0;
                // J J^T has the Ritz pair (sigma^2, u) with residual sigma r: Kato-Temple bounds its eigenvalue
                // error by sigma^2 ||r||^2 / delta, delta the distance to the other eigenvalues (Ritz values
                // stand in for them), so sigma's relative error is at most ||r||^2 / (2 delta)
                double bound = norm == 0 ? 0 : norm * norm / (2 * gap(sigma[i], j, true));
                boolean ok = s.converged(bound, rho);
                if (j < k) {
                    worst = Math.max(worst, rho);
                    done &= ok;
                }
                if (!ok) {
                    for (int c = 0; c < d; c++) {
                        r[c] /= norm;
                    }
                    mine.add(new Dir(r, rho));
                }
            }
            lastResidual[i] = worst;
            if (done) {
                tokenDone[i] = true;
            } else {
                dirs.addAll(mine);
            }
        }
    }

    /**
     * The distance of value j's square to the nearest other one's among {@code values} (singular values, or with
     * {@code squares} false eigenvalues already); a lone value counts its own size.
     */
    static double gap(double[] values, int j, boolean squares) {
        double own = squares ? values[j] * values[j] : values[j];
        double gap = Math.abs(own);
        for (int o = 0; o < values.length; o++) {
            if (o != j) {
                double other = squares ? values[o] * values[o] : values[o];
                gap = Math.min(gap, Math.abs(own - other));
            }
        }
        return gap;
    }

    /**
     * The combined matrix's residuals {@code M M^T u - lambda u}: its input is {@code M^T u = (Z_i a)_i} at every
     * position, one full-length forward product per Ritz vector.
     */
    void combinedResiduals(int want, List<Dir> dirs) {
        double[] flat = new double[size * want];
        for (int j = 0; j < want; j++) {
            for (int r = 0; r < size; r++) {
                flat[r * want + j] = coefC[j][r];
            }
        }
        double[] xs;
        double[] u;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray c = m.create(flat, new Shape(size, want));
            xs = z.matMul(c).toDoubleArray(); // (n = T, d, want)
            u = q.matMul(c).toDoubleArray();  // (d, want)
        }
        double[] x = new double[d * t * want]; // (d, T, want)
        for (int i = 0; i < t; i++) {
            for (int r = 0; r < d; r++) {
                System.arraycopy(xs, (i * d + r) * want, x, (r * t + i) * want, want);
            }
        }
        double[] w = forward(x, t, want, 0);
        work.done(want, 0);
        double top = lambdaC[0];
        double worst = 0;
        boolean done = true;
        List<Dir> mine = new ArrayList<>();
        for (int j = 0; j < want; j++) {
            double[] r = new double[d];
            double norm = 0;
            for (int c = 0; c < d; c++) {
                r[c] = w[c * want + j] - lambdaC[j] * u[c * want + j];
                norm += r[c] * r[c];
            }
            norm = Math.sqrt(norm);
            double rho = top > 0 ? norm / top : 0;
            // Kato-Temple on M M^T: |lambda - lambda~| <= ||r||^2 / delta; sigma's relative error is half lambda's
            double bound = norm == 0 ? 0 : norm * norm / (2 * Math.max(lambdaC[j], Double.MIN_NORMAL)
                    * gap(lambdaC, j, false));
            boolean ok = s.converged(bound, rho);
            if (j < k) {
                worst = Math.max(worst, rho);
                done &= ok;
            }
            if (!ok) {
                for (int c = 0; c < d; c++) {
                    r[c] /= norm;
                }
                mine.add(new Dir(r, rho));
            }
        }
        lastResidualC = worst;
        if (done) {
            combinedDone = true;
        } else {
            dirs.addAll(mine);
        }
    }

    /** The linear frozen map on columns: x (d, tp, cols) at positions from..T-1 -> (d, cols). */
    double[] forward(double[] x, int tp, int cols, int from) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            long p0 = System.nanoTime();
            NDArray in = m.create(x, new Shape(d, tp, cols)).toType(dtype, false);
            double[] out = f.applyColumns(target, in, from).toType(DataType.FLOAT64, false).toDoubleArray();
            work.forwardNanos += System.nanoTime() - p0;
            return out;
        }
    }

    /**
     * The new block: the directions with Q's span taken out twice (on the engine), then orthonormalised among
     * themselves (those left with under 1e-6 of their length dropped); null when none is left.
     */
    NDArray newBlock(List<Dir> dirs) {
        int r = dirs.size();
        double[] flat = new double[d * r];
        for (int j = 0; j < r; j++) {
            double[] v = dirs.get(j).v();
            for (int c = 0; c < d; c++) {
                flat[c * r + j] = v[c];
            }
        }
        double[] projected;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray a = m.create(flat, new Shape(d, r));
            NDArray qt = q.transpose();
            for (int pass = 0; pass < 2; pass++) {
                a = a.sub(q.matMul(qt.matMul(a)));
            }
            projected = a.toDoubleArray();
        }
        double[][] vs = new double[r][d];
        for (int j = 0; j < r; j++) {
            for (int c = 0; c < d; c++) {
                vs[j][c] = projected[c * r + j];
            }
        }
        double[][] o = gramSchmidt(vs, d, d - size, 1e-6);
        if (o.length == 0) {
            return null;
        }
        double[] out = new double[d * o.length];
        for (int j = 0; j < o.length; j++) {
            for (int c = 0; c < d; c++) {
                out[c * o.length + j] = o[j][c];
            }
        }
        return m.create(out, new Shape(d, o.length));
    }

    // ------------------------------------------------------------ results

    void finish() {
        int want = Math.min(kk, size);
        boolean complete = size == d;
        perToken = new Spectrum[n];
        if (perTokenWanted) {
            double[][] uv = ritzVectors(want);
            for (int i = 0; i < n; i++) {
                int kt = Math.min(k, want);
                double[] sv = Arrays.copyOf(sigma[i], kt);
                double[][] uu = new double[kt][d];
                double[][] vv = new double[kt][d];
                for (int j = 0; j < kt; j++) {
                    for (int r = 0; r < d; r++) {
                        uu[j][r] = uv[0][(i * d + r) * want + j];
                        vv[j][r] = uv[1][(i * d + r) * want + j];
                    }
                }
                completeZeros(sv, vv);
                double frob = complete || frobEstimate == null ? traces[i] : Math.max(frobEstimate[i], traces[i]);
                perToken[i] = new Spectrum(sv, uu, vv, Math.max(frob, sv[0] * sv[0]), complete);
            }
        }
        if (combinedWanted) {
            int kt = Math.min(k, want);
            double[] sv = new double[kt];
            double[][] uu = new double[kt][];
            double[] flat = new double[size * kt];
            for (int j = 0; j < kt; j++) {
                sv[j] = Math.sqrt(Math.max(0, lambdaC[j]));
                for (int r = 0; r < size; r++) {
                    flat[r * kt + j] = coefC[j][r];
                }
            }
            double[] u;
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                u = q.matMul(m.create(flat, new Shape(size, kt))).toDoubleArray();
            }
            for (int j = 0; j < kt; j++) {
                uu[j] = new double[d];
                for (int r = 0; r < d; r++) {
                    uu[j][r] = u[r * kt + j];
                }
            }
            double frob = 0;
            for (int i = 0; i < n; i++) {
                frob += complete || frobEstimate == null ? traces[i] : Math.max(frobEstimate[i], traces[i]);
            }
            combined = new Spectrum(sv, uu, null, Math.max(frob, sv[0] * sv[0]), complete);
        }
        residual = 0;
        for (int i = 0; i < n && perTokenWanted; i++) {
            residual = Math.max(residual, lastResidual[i]);
        }
        if (combinedWanted) {
            residual = Math.max(residual, lastResidualC);
        }
        converged = allConverged();
        q.close();
        z.close();
    }

    /**
     * Right vectors of zero singular values (J_i = 0, e.g. a token beyond a sliding window's reach): any
     * orthonormal completion of the others is a valid choice.
     */
    void completeZeros(double[] sv, double[][] vv) {
        List<double[]> kept = new ArrayList<>();
        int unit = 0;
        for (int j = 0; j < sv.length; j++) {
            if (sv[j] > 0) {
                kept.add(vv[j]);
                continue;
            }
            sv[j] = 0;
            while (true) {
                double[] e = new double[d];
                e[unit++ % d] = 1;
                double[][] o = gramSchmidt(concat(kept, e), d, kept.size() + 1, 1e-6);
                if (o.length == kept.size() + 1) {
                    vv[j] = o[o.length - 1];
                    kept.add(vv[j]);
                    break;
                }
            }
        }
    }

    private static double[][] concat(List<double[]> a, double[] b) {
        double[][] out = a.toArray(new double[a.size() + 1][]);
        out[a.size()] = b;
        return out;
    }

    /** Counts the passes, their times, and reports progress. */
    static final class Work {
        double planned;
        final DoubleConsumer progress;
        double forward;
        double backward;
        long forwardNanos;
        long backwardNanos;
        long ritzNanos;

        Work(double planned, DoubleConsumer progress) {
            this.planned = Math.max(1, planned);
            this.progress = progress;
        }

        /** At least {@code more} passes are still to come (the plan is an expectation: a slow case extends it). */
        void expect(double more) {
            planned = Math.max(planned, forward + backward + more);
        }

        void done(double forwardPasses, double backwardPasses) {
            forward += forwardPasses;
            backward += backwardPasses;
            progress.accept(Math.min(0.99, (forward + backward) / planned));
        }
    }

    /** A residual direction (unit length) and its relative residual. */
    private record Dir(double[] v, double rel) {
    }

    /** Orthonormal vectors spanning the given ones (modified Gram-Schmidt twice; those below {@code drop} skipped). */
    static double[][] gramSchmidt(double[][] vectors, int dim, int max, double drop) {
        List<double[]> out = new ArrayList<>();
        for (double[] v0 : vectors) {
            if (out.size() >= max) {
                break;
            }
            double[] v = v0.clone();
            double before = Math.sqrt(SymmetricTopK.dot(v, v));
            if (before == 0) {
                continue;
            }
            for (int pass = 0; pass < 2; pass++) {
                for (double[] o : out) {
                    double dot = SymmetricTopK.dot(o, v);
                    for (int r = 0; r < dim; r++) {
                        v[r] -= dot * o[r];
                    }
                }
            }
            double after = Math.sqrt(SymmetricTopK.dot(v, v));
            if (after <= drop * before) {
                continue;
            }
            for (int r = 0; r < dim; r++) {
                v[r] /= after;
            }
            out.add(v);
        }
        return out.toArray(new double[0][]);
    }

    /** Full-length vectors per pass so that the largest intermediate stays under {@code bytes}. */
    static int chunkSize(ModelConfig c, int tokens, DataType dtype, long bytes) {
        long widest = Math.max(Math.max(c.intermediateSize(), c.hiddenSize()), (long) c.numHeads() * c.headDim());
        long perRow = (long) tokens * widest * dtype.getNumOfBytes() * 6;
        return (int) Math.max(1, Math.min(c.hiddenSize(), bytes / Math.max(1, perRow)));
    }
}
