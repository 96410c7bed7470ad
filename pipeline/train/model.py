"""Base models: a released GPT-2 size, or a small GPT-2 made from scratch.

Both end up in the layout gpt-2-simple reads from `<model_dir>/<model_name>/`
(`hparams.json`, `encoder.json`, `vocab.bpe`, `checkpoint`, `model.ckpt.*`), so the
train and generate stages treat them alike. Released weights are downloaded into
`model.models_dir` on first use; the from-scratch model (vocabulary trained on the
run's encoded text, weights initialised by gpt-2-simple's own model code) is written
into the run folder, because it belongs to that run's training text.
"""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import END_TOKEN
from pipeline.core.gpt2 import MODEL_FILES, SOURCE_FILE, WINDOW, write_checkpoint

DOWNLOAD_HOST = "openaipublic.blob.core.windows.net"


@dataclass(frozen=True)
class ModelConfig:
    """The `model:` section: which base model training starts from.

    kind: "released" (one of the OpenAI sizes, downloaded into models_dir) or "scratch"
    (a new GPT-2 with the hyper-parameters below and a byte-level BPE vocabulary of
    vocab_size entries trained on the run's encoded text) or "hf" (the transformers GPT-2 folder
    hf_dir, converted once into models_dir by pipeline.hf). copy_head: the run trains, with the
    model, a pointer from each title position to its keyword section's tokens; the sampler and the
    scorers then use the mixed distribution (docs/quality.md, "The copy head"). copy_ending: the
    head also learns to hold a title open while a keyword word is still to be written (more
    unguided titles hold every keyword, guided ones end sooner: docs/quality.md).
    """

    kind: Literal["scratch", "released", "hf"] = "scratch"
    released: Literal["124M", "355M", "774M", "1558M"] = "124M"
    models_dir: str = "data/models"
    allow_download: bool = True
    download_timeout: float = 10.0
    n_ctx: int = 1024
    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 4
    vocab_size: int = 4000
    bpe_min_frequency: int = 2
    hf_dir: str | None = None
    copy_head: bool = False  # train a copy head from titles to their keyword section (pipeline.core.copy_head)
    copy_ending: bool = False  # with copy_head: its ending signal (pipeline.core.copy_head.HeadSpec)

    def __post_init__(self) -> None:
        if self.copy_ending and not self.copy_head:
            raise ConfigError("copy_ending: needs the copy head (model.copy_head: true)")
        if self.kind == "hf" and not self.hf_dir:
            raise ConfigError("hf_dir: model.kind hf needs the transformers model folder (model.hf_dir: PATH)")
        if self.n_ctx < WINDOW:
            raise ConfigError(f"n_ctx: must be at least {WINDOW} (training draws {WINDOW}-token windows, as gpt-2-simple "
                              f"did), got {self.n_ctx}")
        for key in ("n_embd", "n_layer", "n_head", "bpe_min_frequency"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1")
        if self.n_embd % self.n_head:
            raise ConfigError(f"n_embd: {self.n_embd} is not a multiple of n_head {self.n_head}")
        # 256 byte symbols are the alphabet; a vocabulary must leave room for merges.
        if self.vocab_size < 300:
            raise ConfigError(f"vocab_size: must be at least 300, got {self.vocab_size}")
        if self.download_timeout <= 0:
            raise ConfigError("download_timeout: must be positive")


@dataclass(frozen=True)
class BaseModel:
    """Where gpt-2-simple finds a base model: `model_dir/model_name/`."""

    model_dir: Path
    model_name: str

    @property
    def path(self) -> Path:
        return self.model_dir / self.model_name


def prepare_base_model(mcfg: ModelConfig, seed: int, encoded: Path, scratch_dir: Path,
                       vocab_text: str | None = None) -> BaseModel:
    """The base model for `mcfg`, fetched or built if it is not there yet.

    encoded: the run's training text (the from-scratch vocabulary is trained on it, or on
    `vocab_text` when given: the training part, when train holds validation documents out);
    scratch_dir: where a from-scratch model lives. Raises InputError when a released model is
    missing and cannot be downloaded.
    """
    if mcfg.kind == "released":
        return ensure_released(mcfg)
    if mcfg.kind == "hf":
        from pipeline.hf import import_hf

        path = import_hf(Path(mcfg.hf_dir), Path(mcfg.models_dir))
        return BaseModel(path.parent, path.name)
    return ensure_scratch(mcfg, seed, encoded, scratch_dir, vocab_text)


def _missing(path: Path) -> list[str]:
    return [f for f in MODEL_FILES if not (path / f).is_file()]


def _reachable(host: str, timeout: float) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _offline_error(path: Path, missing: list[str], why: str) -> InputError:
    return InputError(
        f"GPT-2 model files are missing from {path}/ and {why}. Place these files there "
        f"(from https://{DOWNLOAD_HOST}/gpt-2/models/{path.name}/ or another copy of the released model): "
        + ", ".join(missing)
    )


def ensure_released(mcfg: ModelConfig) -> BaseModel:
    """The released size `mcfg.released` in `mcfg.models_dir`, downloaded with gpt-2-simple if missing.

    The download goes to a temporary folder that is renamed into place only when every
    file arrived, so an interrupted download never looks like a model.
    """
    base = BaseModel(Path(mcfg.models_dir), mcfg.released)
    missing = _missing(base.path)
    if not missing:
        return base
    if not mcfg.allow_download:
        raise _offline_error(base.path, missing, "downloading is off (model.allow_download: false)")
    # gpt-2-simple's download has no timeout; probe first so offline fails fast and clearly.
    if not _reachable(DOWNLOAD_HOST, mcfg.download_timeout):
        raise _offline_error(base.path, missing, f"{DOWNLOAD_HOST} cannot be reached (offline?)")
    import gpt_2_simple as gpt2

    tmp_dir = base.model_dir / f".download-{base.model_name}"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        gpt2.download_gpt2(model_dir=str(tmp_dir), model_name=base.model_name)
    except Exception as exc:  # requests, HTTP and disk errors alike mean "not downloaded"
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise _offline_error(base.path, missing, f"the download failed ({exc})") from exc
    shutil.rmtree(base.path, ignore_errors=True)
    (tmp_dir / base.model_name).rename(base.path)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    return base


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def scratch_source(m: ModelConfig, seed: int, encoded: Path, vocab_text: str | None = None) -> dict:
    """What a from-scratch model is made from: hyper-parameters, seed and the training text's digest
    (and that of the text its vocabulary is trained on, when that is not all of it)."""
    source = {"n_ctx": m.n_ctx, "n_embd": m.n_embd, "n_layer": m.n_layer, "n_head": m.n_head,
              "vocab_size": m.vocab_size, "bpe_min_frequency": m.bpe_min_frequency, "seed": seed,
              "encoded_sha256": _file_digest(encoded)}
    if vocab_text is not None:
        source["vocab_text_sha256"] = hashlib.sha256(vocab_text.encode("utf-8", "surrogateescape")).hexdigest()
    return source


def ensure_scratch(mcfg: ModelConfig, seed: int, encoded: Path, path: Path, vocab_text: str | None = None) -> BaseModel:
    """A from-scratch model in `path` made from `encoded` (its vocabulary from `vocab_text` when given),
    reused when its source record matches.

    Built in a temporary sibling folder and renamed into place, so a killed build leaves nothing
    that looks like a model.
    """
    if not encoded.is_file():
        raise InputError(f"training text {encoded} does not exist (run the encode stage first)")
    source = scratch_source(mcfg, seed, encoded, vocab_text)
    record = path / SOURCE_FILE
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")) == source and not _missing(path):
        return BaseModel(path.parent, path.name)
    tmp = path.with_name(f".{path.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if vocab_text is not None:
        encoded = tmp / "vocab_text.txt"
        encoded.write_text(vocab_text, encoding="utf-8", errors="surrogateescape")
    n_vocab = train_vocabulary(encoded, tmp, mcfg)
    if vocab_text is not None:
        encoded.unlink()
    hparams = {"n_vocab": n_vocab, "n_ctx": mcfg.n_ctx, "n_embd": mcfg.n_embd,
               "n_head": mcfg.n_head, "n_layer": mcfg.n_layer}
    (tmp / "hparams.json").write_text(json.dumps(hparams, indent=2) + "\n", encoding="utf-8")
    write_checkpoint(tmp, seed)
    (tmp / SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
    return BaseModel(path.parent, path.name)


def train_vocabulary(encoded: Path, out_dir: Path, mcfg: ModelConfig) -> int:
    """Train a byte-level BPE on `encoded`; write `encoder.json` and `vocab.bpe` into `out_dir`.

    Returns the number of entries in encoder.json (the model's n_vocab). The end token is
    appended as one extra entry, as in the released vocabularies; gpt-2-simple's encoder
    never produces it from text (it spells the marker with ordinary tokens), only its
    unconditional sampling uses it as a start symbol.
    """
    from tokenizers import ByteLevelBPETokenizer

    tok = ByteLevelBPETokenizer(add_prefix_space=False)
    tok.train([str(encoded)], vocab_size=mcfg.vocab_size, min_frequency=mcfg.bpe_min_frequency,
              show_progress=False)
    written = tok.model.save(str(out_dir))  # vocab.json, merges.txt
    files = {Path(p).name: Path(p) for p in written}
    vocab = json.loads(files["vocab.json"].read_text(encoding="utf-8"))
    vocab.setdefault(END_TOKEN, len(vocab))
    (out_dir / "encoder.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    merges = files["merges.txt"].read_text(encoding="utf-8").splitlines()
    if not merges or not merges[0].startswith("#version"):
        merges.insert(0, "#version: 0.2")  # gpt-2-simple skips the first line
    # gpt-2-simple also drops the last line, so the file must end with a newline.
    (out_dir / "vocab.bpe").write_text("\n".join(merges) + "\n", encoding="utf-8")
    files["vocab.json"].unlink()
    files["merges.txt"].unlink()
    return max(vocab.values()) + 1


def session_config(tf, threads: int = 0, bf16: bool = False, layout_optimizer: bool = True, xla: bool = False):
    """TensorFlow session options for this project's graphs: GPU memory taken as needed, `threads`
    intra/inter-op threads (0: TensorFlow's default), oneDNN bfloat16 mixed precision when `bf16`,
    XLA auto-clustering of the graph when `xla` (on a CPU it also needs TF_XLA_FLAGS, see
    xla_environment); `layout_optimizer` False as gpt-2-simple's own training session has it."""
    from tensorflow.core.protobuf import rewriter_config_pb2 as rewriter

    config = tf.compat.v1.ConfigProto()
    config.gpu_options.allow_growth = True
    if not layout_optimizer:
        config.graph_options.rewrite_options.layout_optimizer = rewriter.RewriterConfig.OFF
    if bf16:
        config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = rewriter.RewriterConfig.ON
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.compat.v1.OptimizerOptions.ON_1
    if threads > 0:
        config.intra_op_parallelism_threads = config.inter_op_parallelism_threads = threads
    return config


def xla_environment() -> None:
    """Let XLA cluster CPU graphs too (TensorFlow reads TF_XLA_FLAGS once, before its first XLA use;
    a GPU needs only the session option). Flags the user set already are kept."""
    import os

    flags = os.environ.get("TF_XLA_FLAGS", "")
    if "--tf_xla_cpu_global_jit" not in flags:
        os.environ["TF_XLA_FLAGS"] = (flags + " --tf_xla_cpu_global_jit").strip()
