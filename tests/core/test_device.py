"""pipeline.core.device: TensorFlow loaded without its no-GPU chatter, one line naming the devices, and a
config that asks for a GPU on a machine without one stopped with one line naming the fix."""
import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import ConfigError
from pipeline.stages import BY_NAME, run_stage

ROOT = Path(__file__).resolve().parents[2]


def test_loading_prints_one_device_line_and_drops_the_cuda_notices():
    code = "from pipeline.core.device import load_tensorflow; load_tensorflow('train'); load_tensorflow('train')"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert done.returncode == 0, done.stderr[-2000:]
    import tensorflow as tf

    expected = "on CPU (no GPU visible)" if not tf.config.list_physical_devices("GPU") else "on GPU:0"
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"train: TensorFlow {tf.__version__} ") and expected in lines[0]


def test_only_the_known_notices_are_dropped():
    from pipeline.core.device import without_notices

    log = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
           "I0000 00:00:1796581360.287443    9542 cudart_stub.cc:31] Could not find cuda drivers on your machine\n"
           "E0000 00:00:1796581363.780047    9542 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
           "I0000 00:00:1796581387.385721    9797 port.cc:153] oneDNN custom operations are on. You may see ...\n"
           "E0000 00:00:1796581400.000000    9797 op_kernel.cc:1] OOM when allocating tensor\n")
    assert without_notices(log) == "E0000 00:00:1796581400.000000    9797 op_kernel.cc:1] OOM when allocating tensor\n"


@pytest.mark.skipif(__import__("tensorflow").config.list_physical_devices("GPU") != [], reason="a GPU is visible")
def test_a_config_asking_for_a_gpu_without_one_is_one_clear_error(trained):
    cfg, _ = trained
    gpu = dataclasses.replace(cfg, generate=dataclasses.replace(cfg.generate, gpus=1.0))
    with pytest.raises(ConfigError, match=r"generate.gpus: asks for a GPU, but TensorFlow sees none here; .*"
                                          r"`make setup GPU=1`.* or run on the CPU with generate.gpus=0"):
        run_stage(BY_NAME["generate"], gpu)
    multi = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, multi_gpu=True))
    with pytest.raises(ConfigError, match="train.multi_gpu: asks for a GPU.*train.multi_gpu=false"):
        run_stage(BY_NAME["train"], multi)


def test_precision_auto_takes_bf16_only_where_the_cpu_multiplies_it(tmp_path):
    import tensorflow as tf

    from pipeline.core.device import cpu_flags, native_bf16
    from pipeline.train.loop import resolve_precision
    from pipeline.train.stage import TrainConfig

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the CPU rule is for machines without a GPU")
    zen = tmp_path / "zen"
    zen.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    sapphire = tmp_path / "sapphire"
    sapphire.write_text("processor\t: 0\nflags\t\t: avx2 avx512f avx512_bf16 amx_bf16 amx_tile\n")
    assert cpu_flags(str(zen)) == {"fpu", "sse2", "avx", "avx2", "fma"}
    assert cpu_flags(str(tmp_path / "absent")) == set()
    native, why = native_bf16(tf, str(zen))
    assert not native and "slower" in why
    native, why = native_bf16(tf, str(sapphire))
    assert native and "amx_bf16, avx512_bf16" in why
    # This machine: auto follows its /proc/cpuinfo; fp32 and bf16 are kept as asked.
    here = "bf16" if cpu_flags() & {"avx512_bf16", "amx_bf16"} else "fp32"
    assert resolve_precision(tf, TrainConfig(precision="auto")).precision == here
    for asked in ("fp32", "bf16"):
        assert resolve_precision(tf, TrainConfig(precision=asked)).precision == asked
