package lab.steering.service.device;

import ai.djl.Device;
import ai.djl.engine.Engine;

/** Turns LAB_DEVICE into a DJL device: auto picks CUDA when DJL sees a GPU, else CPU. */
public final class DeviceSelector {
    private DeviceSelector() {
    }

    public static Device select(String setting) {
        return select(setting, Engine.getInstance().getGpuCount());
    }

    /** The choice itself, for a given number of visible GPUs (unit-tested without one). */
    public static Device select(String setting, int gpus) {
        String s = setting == null || setting.isBlank() ? "auto" : setting.trim().toLowerCase();
        if (s.equals("auto")) {
            return gpus > 0 ? Device.gpu(0) : Device.cpu();
        }
        if (s.equals("cpu")) {
            return Device.cpu();
        }
        if (s.equals("cuda") || s.equals("gpu") || s.startsWith("cuda:")) {
            int index = s.startsWith("cuda:") ? parseIndex(s.substring(5)) : 0;
            if (index >= gpus) {
                throw new IllegalStateException("LAB_DEVICE=" + setting + " but DJL sees " + gpus
                        + " GPU(s) (is the app built with -Pgpu, and is the CUDA driver visible?)");
            }
            return Device.gpu(index);
        }
        throw new IllegalStateException("LAB_DEVICE='" + setting + "' is not one of auto, cpu, cuda, cuda:N");
    }

    private static int parseIndex(String s) {
        try {
            int i = Integer.parseInt(s);
            if (i < 0) {
                throw new NumberFormatException();
            }
            return i;
        } catch (NumberFormatException e) {
            throw new IllegalStateException("LAB_DEVICE=cuda:" + s + ": the GPU index must be a number >= 0");
        }
    }
}
