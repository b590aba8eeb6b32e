package lab.steering;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.core.Linear;
import java.util.function.Supplier;

public class ScratchOps {
    static void time(String name, Supplier<Object> f) {
        for (int i = 0; i < 2000; i++) try (NDScope s = new NDScope()) { f.get(); }
        long t0 = System.nanoTime();
        int n = 5000;
        for (int i = 0; i < n; i++) try (NDScope s = new NDScope()) { f.get(); }
        System.out.printf("%-40s %7.2f us%n", name, (System.nanoTime() - t0) / 1e3 / n);
    }
    public static void main(String[] a) {
        NDManager m = NDManager.newBaseManager(Device.cpu());
        if (Integer.getInteger("rt", 0) > 0) ai.djl.pytorch.jni.JniUtils.setNumThreads(Integer.getInteger("rt", 0));
        NDArray x = m.randomNormal(new Shape(1, 1, 256));
        NDArray w = m.randomNormal(new Shape(256, 256));
        NDArray wup = m.randomNormal(new Shape(688, 256));
        NDArray wqkv = m.randomNormal(new Shape(512, 256));
        NDArray q = m.randomNormal(new Shape(1, 8, 1, 32));
        NDArray r = m.randomNormal(new Shape(32, 32));
        NDArray qg = m.randomNormal(new Shape(1, 4, 2, 32));
        NDArray kt = m.randomNormal(new Shape(1, 4, 32, 74));
        NDArray kk = m.randomNormal(new Shape(1, 4, 74, 32));
        NDArray sc = m.randomNormal(new Shape(1, 4, 2, 74));
        NDArray cache = m.zeros(new Shape(1, 4, 128, 32));
        NDArray knew = m.randomNormal(new Shape(1, 4, 1, 32));
        NDArray cos = m.randomNormal(new Shape(1, 32));
        time("linear 256x256", () -> Linear.linear(x, w));
        time("linear 688x256", () -> Linear.linear(x, wup));
        time("linear 512x256 (fused qkv)", () -> Linear.linear(x, wqkv));
        time("add (1,1,256)", () -> x.add(x));
        time("mul (1,8,1,32) x cos", () -> q.mul(cos));
        time("matmul q x R (rope)", () -> q.matMul(r));
        time("matmul qg x kT", () -> qg.matMul(kt));
        time("matmul probs x v", () -> sc.matMul(kk));
        time("softmax", () -> sc.softmax(-1));
        time("mean keepdim", () -> x.square().mean(new int[] {-1}, true));
        time("reshape", () -> q.reshape(1, 1, 8, 32));
        time("transpose", () -> q.transpose(0, 2, 1, 3));
        time("kv set NDIndex", () -> { cache.set(new NDIndex(":, :, {}:{}, :", 70, 71), knew); return null; });
        time("kv get NDIndex", () -> cache.get(new NDIndex(":, :, :{}, :", 71)));
        NDIndex pre = new NDIndex(":, :, :{}, :", 71);
        time("kv get prebuilt NDIndex", () -> cache.get(pre));
        time("create long[1]", () -> m.create(new long[] {5}, new Shape(1, 1)));
        time("toFloatArray 4096", () -> m.zeros(new Shape(4096)).toFloatArray());
        time("get(:, -1, :)", () -> x.get(new NDIndex(":, -1, :")));
        System.exit(0);
    }
}
