"""Validation in training: held-out documents, a validation loss every `val_every` steps, the best
checkpoint kept and early stopping (the `train:` keys val_fraction, val_every, keep_best, patience).

The train stage holds documents out of the training text itself; after every step the loop's
`LossLog` (pipeline.train.log) calls a `Validator`, which runs the model's loss on the held-out
tokens in the training session (a second, weight-sharing copy of the model graph, built once, in
the run's precision), and the loop stops when the validator says so.

Documents are held out by a salted hash of their title, so the augmented copies of one title
(same title, other keyword subsets) never straddle training and validation, and the choice is
independent of `make eval`'s split (another salt).
"""
from __future__ import annotations

import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np

from pipeline.core.format import parse
from pipeline.core.gpt2 import WINDOW

MAX_WINDOWS = 16  # validation windows of WINDOW tokens measured each time (the first ones)


def held_out(title: str, fraction: float) -> bool:
    """Whether documents with this title are validation documents (a salted SHA-256 of the title)."""
    h = int.from_bytes(hashlib.sha256(("validation:" + title.strip()).encode("utf-8", "surrogateescape"))
                       .digest()[:8], "big")
    return h / 2**64 < fraction


def split_documents(text: str, fraction: float) -> tuple[str, str]:
    """(training text, validation text) of encoded `text` (one document per line) by `held_out` of
    each document's title; a line without a title stays in training."""
    train, val = [], []
    for line in text.splitlines(keepends=True):
        title = parse(line).document.title
        (val if title is not None and held_out(title, fraction) else train).append(line)
    return "".join(train), "".join(val)


class Validator:
    """Measures the model's mean loss on `val_tokens` (the first MAX_WINDOWS windows) every `every`
    steps, in the training session `sess` / graph, scored by the `objective` that function builds
    (pipeline.train.loop.Objective: the run's precision, and its copy head); keeps the best weights in `best_dir` when
    `keep_best`; `stop_reason` says when `patience` measures went without improvement (0: never);
    warns when validation loss rises while training loss falls."""

    def __init__(self, sess, val_tokens: np.ndarray, every: int, keep_best: bool, patience: int,
                 best_dir: Path, objective=None):
        self.sess, self.every, self.objective = sess, every, objective
        self.keep_best, self.patience, self.best_dir = keep_best, patience, best_dir
        n = max(1, min(MAX_WINDOWS, (len(val_tokens) - 1) // WINDOW))
        width = min(WINDOW, len(val_tokens))
        self.windows = [val_tokens[i * width:(i + 1) * width] for i in range(n)]
        self.best: tuple[float, int] | None = None  # (loss, step)
        self.since_best = 0
        self.last: tuple[float, float] | None = None  # (validation loss, training avg) at the last measure
        self.warnings = 0
        self._graph = None

    def _build(self) -> None:
        import tensorflow as tf

        from pipeline.core.copy_head import head_variables

        with self.sess.graph.as_default():
            objective = self.objective()
            saver = tf.compat.v1.train.Saver(var_list=head_variables(tf), max_to_keep=1)
        self._graph = (objective, saver)

    def loss(self) -> float:
        """Mean loss over the validation windows."""
        if self._graph is None:
            self._build()
        objective, _ = self._graph
        return float(np.mean([self.sess.run(objective.loss, objective.feed(w[np.newaxis, :])) for w in self.windows]))

    def __call__(self, step: int, train_avg: float) -> float | None:
        """The validation loss at `step` (None when this is not a validation step)."""
        if step % self.every:
            return None
        value = round(self.loss(), 4)
        if self.last is not None and value > self.last[0] and train_avg < self.last[1]:
            self.warnings += 1
            print(f"train: warning: step {step}: validation loss rose to {value} while training loss fell "
                  f"({self.last[1]:.2f} -> {train_avg:.2f}): the model may be overfitting", file=sys.stderr)
        self.last = (value, train_avg)
        if self.best is None or value < self.best[0]:
            self.best, self.since_best = (value, step), 0
            if self.keep_best:
                shutil.rmtree(self.best_dir, ignore_errors=True)
                self.best_dir.mkdir(parents=True)
                self._graph[1].save(self.sess, str(self.best_dir / "model"), global_step=step, write_meta_graph=False)
        else:
            self.since_best += 1
        return value

    def stop_reason(self) -> str | None:
        """Why training should stop now (`patience` measures without improvement), or None."""
        if self.patience and self.since_best >= self.patience:
            return (f"validation loss has not improved for {self.patience} measures "
                    f"(best {self.best[0]} at step {self.best[1]})")
        return None

    def record(self) -> dict:
        """What train.done records of validation."""
        return {"windows": len(self.windows), "best_loss": self.best[0] if self.best else None,
                "best_step": self.best[1] if self.best else None, "last_loss": self.last[0] if self.last else None,
                "overfitting_warnings": self.warnings}


def install_best(ckpt_path: Path, best_dir: Path) -> int | None:
    """Make the best weights in `best_dir` the checkpoint samplers load (TensorFlow's `checkpoint` state
    file names them; `counter` keeps the steps trained). Returns the best step, or None."""
    files = list(best_dir.glob("model-*.index"))
    if not files:
        return None
    step = int(files[0].name[len("model-"):-len(".index")])
    for f in best_dir.glob(f"model-{step}.*"):
        shutil.copy2(f, ckpt_path / f"best-{f.name}")
    (ckpt_path / "checkpoint").write_text(f'model_checkpoint_path: "best-model-{step}"\n'
                                          f'all_model_checkpoint_paths: "best-model-{step}"\n', encoding="utf-8")
    return step
