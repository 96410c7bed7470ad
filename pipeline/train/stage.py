"""Stage 2, train: fine-tune a base GPT-2 (released or from scratch), checkpoints in gpt-2-simple's layout.

    python -m pipeline.train --config configs/default.yaml [train.steps=200 ...]

The checkpoint lives in `<run>/checkpoint/<run_name>/` (gpt-2-simple's layout). A run
resumes from its latest checkpoint and trains only the steps still missing, so a
killed run loses at most `save_every` steps. `<run>/train.done` is written last and
atomically; it records the resolved config, steps done, final loss and tokens/s.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pipeline.core.copy_head import HeadSpec
from pipeline.core.device import load_tensorflow, require_gpu
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.io import write_json
from pipeline.core.paths import UNTRAINED_MARKER, RunPaths
from pipeline.train.log import LossLog, dataset_tokens, read_counter
from pipeline.core.gpt2 import SOURCE_FILE, WINDOW
from pipeline.train.model import BaseModel, ModelConfig, prepare_base_model, xla_environment
from pipeline.train.validation import install_best

BASE_RECORD = "base.json"
SESSIONS_FILE = "sessions.json"
EARLY_STOP_FILE = "early_stop.json"


@dataclass(frozen=True)
class TrainConfig:
    """The `train:` section: gpt-2-simple's finetune options, run by our own step (pipeline.train.loop).

    steps: total optimiser steps for the run (a resumed run trains only the missing ones).
    save_every / sample_every: in steps; 0 means never (the final save always happens).
    print_every: how often a loss line is shown (every step is still recorded).
    precision: "fp32", or "bf16": matrix products in bfloat16, norms, softmax, residual stream and
    loss in float32, variables float32 (pipeline.core.transformer). bfloat16 has float32's range, so
    it needs no loss scaling, on a CPU with AVX-512 BF16 or a GPU from Ampere on; float16 is not
    offered (it would need loss scaling). "auto": bf16 where the devices multiply bfloat16
    natively, fp32 elsewhere (pipeline.core.device.native_bf16); the train line says which.
    use_memory_saving_gradients: kept for finetune's configs and changes nothing: the step always
    recomputes attention in its backward pass (pipeline.core.transformer), the saving that matters.
    xla: compile the training step with XLA (auto-clustering; on a CPU through TF_XLA_FLAGS).
    `make bench-train` measures both against fp32 (docs/stages.md, "On a GPU workstation").
    seed: None uses the top-level seed.
    """

    steps: int = 600
    batch_size: int = 1
    learning_rate: float = 1e-4
    accumulate_gradients: int = 1
    optimizer: Literal["adam", "sgd"] = "adam"
    save_every: int = 100
    sample_every: int = 0
    sample_length: int = 200
    print_every: int = 50
    max_checkpoints: int = 1
    run_name: str = "run1"
    restore_from: Literal["fresh", "latest"] = "latest"
    use_memory_saving_gradients: bool = False
    only_train_transformer_layers: bool = False
    multi_gpu: bool = False
    precision: Literal["fp32", "bf16", "auto"] = "fp32"
    xla: bool = False
    threads: int = 0
    seed: int | None = None
    val_fraction: float = 0.0  # documents held out by title for a validation loss (0: none)
    val_every: int = 100  # steps between validation measures
    keep_best: bool = False  # samplers load the weights of the best validation loss
    patience: int = 0  # stop after this many measures without improvement (0: never)
    lr_decay_steps: int = 0  # 0: a constant rate (finetune's); else cosine down to a tenth by this step

    def __post_init__(self) -> None:
        for key in ("steps", "batch_size", "accumulate_gradients", "print_every", "max_checkpoints", "sample_length"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1, got {getattr(self, key)}")
        for key in ("save_every", "sample_every", "threads", "lr_decay_steps"):
            if getattr(self, key) < 0:
                raise ConfigError(f"{key}: must be 0 or more, got {getattr(self, key)}")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate: must be positive, got {self.learning_rate}")
        if self.sample_length >= WINDOW:
            raise ConfigError(f"sample_length: must be below {WINDOW}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ConfigError(f"val_fraction: must be at least 0 and below 1, got {self.val_fraction}")
        if self.val_every < 1 or self.patience < 0:
            raise ConfigError("val_every: must be at least 1" if self.val_every < 1 else "patience: must be 0 or more")
        if (self.keep_best or self.patience) and not self.val_fraction:
            raise ConfigError(f"{'keep_best' if self.keep_best else 'patience'}: needs a validation set "
                              f"(set train.val_fraction, e.g. 0.05)")
        if self.patience and not self.keep_best:
            raise ConfigError("patience: early stopping keeps the best checkpoint; set train.keep_best: true")
        if not self.run_name or "/" in self.run_name:
            raise ConfigError(f"run_name: must be a plain folder name, got {self.run_name!r}")


def _base_identity(base: BaseModel, copy_head: HeadSpec | None = None) -> dict:
    """What a checkpoint was trained from; a different base makes an old checkpoint useless.

    The folder's location is left out on purpose, so a moved or copied run folder still resumes.
    """
    source = base.path / SOURCE_FILE
    identity = {"model": base.model_name, "source": json.loads(source.read_text()) if source.is_file() else None}
    if (base.path / UNTRAINED_MARKER).is_file():  # random weights: real ones put there later start afresh
        identity["untrained"] = True
    if copy_head:  # a head switched on or off trains afresh: the checkpoint's variables differ
        identity["copy_head"] = True
        if copy_head.ending:
            identity["copy_ending"] = True
    return identity


def _drop_stale_checkpoint(ckpt_path: Path, base: BaseModel, copy_head: HeadSpec | None = None) -> None:
    """Remove a checkpoint that was trained from another base model (vocabulary or size changed) or
    with the copy head switched the other way."""
    record = ckpt_path / BASE_RECORD
    identity = _base_identity(base, copy_head)
    if ckpt_path.exists() and (not record.is_file() or json.loads(record.read_text()) != identity):
        print(f"train: {ckpt_path} was trained from another base model; starting it afresh", file=sys.stderr)
        shutil.rmtree(ckpt_path)
    ckpt_path.mkdir(parents=True, exist_ok=True)
    write_json(record, identity)
    if identity.get("untrained"):  # the report and `make eval` read it beside the checkpoint
        print(f"train: WARNING: {base.path} holds UNTRAINED random weights ({UNTRAINED_MARKER}), not a released "
              f"GPT-2; what this run writes is noise", file=sys.stderr)
        shutil.copyfile(base.path / UNTRAINED_MARKER, ckpt_path / UNTRAINED_MARKER)


def _session(t: TrainConfig, seed: int, base: BaseModel, dataset: Path, checkpoint_dir: Path, steps: int,
             log: LossLog, val_tokens=None, copy_head: HeadSpec | None = None) -> str | None:
    """Train `steps` more steps (pipeline.train.loop) on the tokens in `dataset`; with `val_tokens`
    measure a validation loss (pipeline.train.validation). Returns why it stopped early, or None."""
    import numpy as np

    from pipeline.train.loop import Session, run_session

    factory = None
    if val_tokens is not None:
        from pipeline.train.validation import Validator

        def validator(sess, objective):
            return Validator(sess, val_tokens, t.val_every, t.keep_best, t.patience,
                             checkpoint_dir / t.run_name / "best", objective=objective)
        factory = validator
    with np.load(dataset) as data:
        tokens = data[data.files[0]]
    return run_session(t, Session(base.path, checkpoint_dir, tokens, steps, seed, copy_head), log, factory)


def _split(t: TrainConfig, encoded: Path) -> tuple[str, str]:
    """(training part, validation part) of `encoded`: `t.val_fraction` of the documents held out by title
    (pipeline.train.validation); InputError when either part is empty."""
    from pipeline.train.validation import split_documents

    train_text, val_text = split_documents(encoded.read_text(encoding="utf-8"), t.val_fraction)
    if not val_text or not train_text:
        raise InputError(f"train.val_fraction: {t.val_fraction} of {encoded}'s titles leaves "
                         f"{'no validation' if not val_text else 'no training'} document")
    return train_text, val_text


def _validation_split(base: BaseModel, train_text: str, val_text: str, ckpt_path: Path):
    """Write the two parts beside the checkpoint; returns the validation tokens and the training
    part's text file."""
    import numpy as np

    from pipeline.core.io import write_text

    source, val_path = ckpt_path / "train_part.txt", ckpt_path / "validation.txt"
    write_text(val_path, val_text)
    dataset_tokens(base.path, val_path, ckpt_path / "validation.npz")  # its categories.json is replaced below
    write_text(source, train_text)
    with np.load(ckpt_path / "validation.npz") as data:
        return data[data.files[0]], source


def train(m: ModelConfig, t: TrainConfig, seed: int, encoded: Path, checkpoint_dir: Path, done_path: Path,
          scratch_dir: Path) -> dict:
    """Fine-tune on `encoded` into `checkpoint_dir/<run_name>`; write `done_path` last. Returns its record.

    The base model is `m` (a from-scratch one is built in `scratch_dir`); seed: the run's
    (train.seed when set) for the scratch weights, the window sampling and TensorFlow.
    """
    encoded, checkpoint_dir, done_path = encoded.resolve(), checkpoint_dir.resolve(), done_path.resolve()
    done_path.unlink(missing_ok=True)
    if not encoded.is_file():
        raise InputError(f"training text {encoded} does not exist (run the encode stage first)")
    # The from-scratch vocabulary is trained on the training part only: no validation title leaks into it.
    parts = _split(t, encoded) if t.val_fraction else None
    base = prepare_base_model(m, seed, encoded, scratch_dir.resolve(), parts[0] if parts else None)
    ckpt_path = checkpoint_dir / t.run_name
    head = HeadSpec(ending=m.copy_ending) if m.copy_head else None
    _drop_stale_checkpoint(ckpt_path, base, head)
    dataset = ckpt_path / "dataset.npz"
    val_tokens, source = None, encoded
    if parts:
        val_tokens, source = _validation_split(base, *parts, ckpt_path)
    n_tokens = dataset_tokens(base.path, source, dataset)
    if n_tokens <= WINDOW + 1:
        raise InputError(f"{encoded}: only {n_tokens} tokens; training needs more than {WINDOW + 1}")

    done_before = read_counter(ckpt_path) if t.restore_from == "latest" else 0
    stop_file = ckpt_path / EARLY_STOP_FILE
    if t.restore_from == "fresh":
        stop_file.unlink(missing_ok=True)
    to_run = 0 if stop_file.is_file() else t.steps - done_before
    capture = LossLog(sys.stdout, t.print_every, ckpt_path / "loss.csv", start=done_before,
                      sessions_path=ckpt_path / SESSIONS_FILE, keep_sessions=t.restore_from == "latest",
                      validate=(lambda step, avg: None) if val_tokens is not None else None)
    if to_run > 0:
        print(f"train: {done_before} steps done, training {to_run} more on {n_tokens} tokens "
              f"from {base.path}", file=sys.stderr)
        stopped = _session(t, seed, base, dataset, checkpoint_dir, to_run, capture, val_tokens, head)
        if stopped:
            print(f"train: stopped early at step {capture.last_row()['step']}: {stopped}", file=sys.stderr)
            write_json(stop_file, {"step": capture.last_row()["step"], "reason": stopped})
    steps_done = read_counter(ckpt_path)
    if steps_done < t.steps and not stop_file.is_file():
        raise InputError(f"training stopped at step {steps_done} of {t.steps}; run it again to resume")
    best_step = install_best(ckpt_path, ckpt_path / "best") if t.keep_best else None

    # Every session, killed ones included (LossCapture records each step as it happens).
    sessions = capture.end_session()
    tokens_per_step = t.batch_size * t.accumulate_gradients * WINDOW
    loop_seconds = sum(s["loop_seconds"] for s in sessions)
    last = capture.last_row()
    record = {
        "config": json.loads(json.dumps({"seed": seed, "model": dataclasses.asdict(m),
                                         "train": dataclasses.asdict(t)}, default=str)),
        "base_model": str(base.path),
        "base_untrained": (ckpt_path / UNTRAINED_MARKER).is_file(),
        "checkpoint": str(ckpt_path),
        "steps": steps_done,
        "final_loss": last["loss"] if last else None,
        "final_avg_loss": last["avg"] if last else None,
        "dataset_tokens": n_tokens,
        "tokens_per_step": tokens_per_step,
        "train_loop_seconds": round(loop_seconds, 3),
        "tokens_per_s": round(sum(s["steps"] for s in sessions) * tokens_per_step / loop_seconds, 1)
        if loop_seconds else None,
        "sessions": sessions,
    }
    if val_tokens is not None:
        validator = capture.validate if hasattr(capture.validate, "record") else None
        record["validation"] = {"fraction": t.val_fraction, "tokens": int(len(val_tokens)),
                                **(validator.record() if validator else {}), "weights_from_step": best_step,
                                "stopped_early": json.loads(stop_file.read_text()) if stop_file.is_file() else None}
    write_json(done_path, record)
    return record


def run(m: ModelConfig, t: TrainConfig, seed: int, paths: RunPaths) -> str:
    """The stage: `paths.encoded` -> a model in `paths.checkpoint_dir`, then `paths.train_done`.

    Returns the line the command prints.
    """
    if t.xla:
        xla_environment()
    tf = load_tensorflow("train")
    if t.multi_gpu:
        require_gpu(tf, "train.multi_gpu", off="false")
    record = train(m, t, seed, paths.encoded, paths.checkpoint_dir, paths.train_done, paths.scratch_model)
    val = record.get("validation") or {}
    # `steps` counts saved steps; an early stop ends between saves, and keep_best loads other weights.
    stop = f"stopped early at step {val['stopped_early']['step']}, " if val.get("stopped_early") else ""
    weights = f"weights of step {val['weights_from_step']}, " if val.get("weights_from_step") is not None else ""
    return (f"train: {record['steps']} steps saved, {stop}{weights}final loss {record['final_loss']}, "
            f"{record['tokens_per_s']} tokens/s -> {paths.train_done}")

