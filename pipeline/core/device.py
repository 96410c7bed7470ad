"""TensorFlow loaded once per process, without its start-up chatter, and one line naming its devices.

    tf = load_tensorflow("train")     # prints e.g. "train: TensorFlow 2.21.0 on CPU (no GPU visible)"

On a machine without an NVIDIA driver, TensorFlow's CUDA plugin logs `failed call to cuInit` at
error level while it loads, whatever TF_CPP_MIN_LOG_LEVEL says, and a user cannot tell it from a
real failure. Loading goes through here: what TensorFlow writes to stderr meanwhile is captured,
the known start-up notices are dropped and anything else is written back, so real errors still
show. The line printed instead says which devices TensorFlow will use.
"""
from __future__ import annotations

import os
import re
import sys
import tempfile

from pipeline.core.errors import ConfigError

# Start-up notices that say only that no GPU is there, or how TensorFlow was built.
_NOISE = re.compile(r"cuInit|cudart_stub|Could not find cuda drivers|oneDNN custom operations|"
                    r"Unable to register cu(DNN|FFT|BLAS) factory|computation_placer|TF-TRT Warning|"
                    r"absl::InitializeLog|All log messages before absl|cpu_feature_guard|"
                    r"rebuild TensorFlow with the appropriate compiler flags|"
                    r"This TensorFlow binary is optimized to use available CPU instructions")

_loaded: dict[str, object] = {}


def without_notices(text: str) -> str:
    """`text` (what TensorFlow wrote while loading) less the known start-up notices."""
    return "".join(line for line in text.splitlines(keepends=True) if not _NOISE.search(line))


def describe(tf) -> str:
    """Which devices TensorFlow uses: 'GPU:0 (name), GPU:1 ...' or 'CPU (no GPU visible)'."""
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return "CPU (no GPU visible)"
    names = []
    for i, gpu in enumerate(gpus):
        detail = tf.config.experimental.get_device_details(gpu).get("device_name", "")
        names.append(f"GPU:{i}" + (f" ({detail})" if detail else ""))
    return ", ".join(names)


def load_tensorflow(who: str, announce: bool = True):
    """The tensorflow module, imported (and its devices found) with the start-up noise filtered out.

    who: the stage or command named in the one line printed to stderr (the first call only).
    """
    if "tf" in _loaded:
        return _loaded["tf"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            devices = describe(tf)
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            sys.stderr.write(without_notices(capture.read().decode("utf-8", "replace")))
    _loaded["tf"] = tf
    if announce:
        print(f"{who}: TensorFlow {tf.__version__} on {devices}", file=sys.stderr, flush=True)
    return tf


# CPU flags (Linux /proc/cpuinfo) of instructions that multiply bfloat16 natively; without them
# TensorFlow's oneDNN emulates bf16 and a bf16 step is slower than fp32 (AMD EPYC with AVX2 only:
# 0.86x; a CPU with AVX-512 BF16: 1.55x, docs/benchmarks.md).
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> set[str]:
    """The first CPU's feature flags, from a Linux `cpuinfo` file; empty where there is none."""
    try:
        with open(cpuinfo, encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(tf, cpuinfo: str = "/proc/cpuinfo") -> tuple[bool, str]:
    """Whether the devices TensorFlow trains on multiply bfloat16 natively, and why, in words:
    every visible GPU of compute capability 8.0 (Ampere) or newer, or, with no GPU, a CPU with
    one of BF16_CPU_FLAGS."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        caps = [tf.config.experimental.get_device_details(g).get("compute_capability") or (0, 0) for g in gpus]
        ok = all(tuple(c) >= (8, 0) for c in caps)
        return ok, f"GPU compute capability {', '.join('%d.%d' % tuple(c) for c in caps)}" + (
            "" if ok else " (bfloat16 needs 8.0 or newer)")
    flags = cpu_flags(cpuinfo) & set(BF16_CPU_FLAGS)
    if flags:
        return True, f"the CPU has {', '.join(sorted(flags))}"
    return False, "the CPU has no bfloat16 instructions (" + " or ".join(BF16_CPU_FLAGS) + "), where bf16 is slower"


def require_gpu(tf, key: str, off: str = "0") -> None:
    """ConfigError naming `key` and the fix when a config asks for a GPU and TensorFlow sees none:
    a run meant for a GPU must not go on silently on the CPU."""
    if not tf.config.list_physical_devices("GPU"):
        raise ConfigError(f"{key}: asks for a GPU, but TensorFlow sees none here; on a Linux machine with an NVIDIA "
                          f"GPU install TensorFlow's CUDA build (`make setup GPU=1`) and check `nvidia-smi`, "
                          f"or run on the CPU with {key}={off}")
