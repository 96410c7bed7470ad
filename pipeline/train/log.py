"""Helpers of the train stage: the tokenised dataset, the step counter and the loss log (`LossLog`:
every step's loss in loss.csv, one line in `print_every` shown as finetune showed it).
"""
from __future__ import annotations

import csv
import json
import sys
import time
from pathlib import Path
from typing import Callable, TextIO

from pipeline.core.errors import InputError
from pipeline.core.format import parse
from pipeline.core.gpt2 import TRAINED_CATEGORIES
from pipeline.core.io import atomic_path, write_json, write_text

# How many documents are checked against gpt-2-simple's own encoder before trusting the fast one.
_CHECK_LINES = 300
_LOG_HEADER = "step,seconds,loss,avg\n"


def read_counter(ckpt_path: Path) -> int:
    """Steps saved in a gpt-2-simple checkpoint folder `ckpt_path`; 0 when it holds no checkpoint.

    gpt-2-simple writes `counter` in place after each save, so a kill can leave it empty,
    cut short or missing beside a saved model. Then the step is recovered from the newest
    complete checkpoint (`model-N.index` plus its data) and `counter` and the `checkpoint`
    state file are rewritten to it, so gpt-2-simple restores model-N and counts on from N.
    Raises InputError when the counter is unreadable and no complete checkpoint is left.
    """
    counter = ckpt_path / "counter"
    text = counter.read_text(errors="replace").strip() if counter.is_file() else ""
    if text.isdigit():
        return int(text)
    step = newest_checkpoint(ckpt_path)
    if step is None:
        if counter.is_file():
            raise InputError(f"{counter}: not a step number ({text[:20]!r}) and no complete checkpoint "
                             f"(model-N.index) to recover from; delete {ckpt_path} to train afresh")
        return 0
    print(f"train: {counter} is {'unreadable' if counter.is_file() else 'missing'}; "
          f"resuming from the newest complete checkpoint, model-{step}", file=sys.stderr)
    write_text(ckpt_path / "checkpoint", f'model_checkpoint_path: "model-{step}"\n'
                                         f'all_model_checkpoint_paths: "model-{step}"\n')
    write_text(counter, f"{step}\n")
    return step


def newest_checkpoint(ckpt_path: Path) -> int | None:
    """The highest N with a complete `model-N` (index and every data shard) in `ckpt_path`, or None.

    TensorFlow writes the data shards before the index, so an index names a finished save.
    """
    steps = []
    for index in ckpt_path.glob("model-*.index"):
        n = index.name[len("model-"):-len(".index")]
        shards = list(ckpt_path.glob(f"model-{n}.data-*-of-*"))
        total = shards[0].name.rsplit("-of-", 1)[1] if shards else ""
        if n.isdigit() and total.isdigit() and len(shards) == int(total):
            steps.append(int(n))
    return max(steps, default=None)


def _cut_log(log_path: Path, start: int, header: str = _LOG_HEADER) -> int:
    """Keep the rows of steps up to `start` in the loss log, under `header`; rewritten atomically.

    Returns the last step the log held before the cut (0 when none).
    """
    with log_path.open(encoding="utf-8") as fh:
        lines = fh.read().splitlines(keepends=True)
    rows = [line for line in lines[1:] if line.endswith("\n") and line.split(",", 1)[0].isdigit()]
    kept = [line for line in rows if int(line.split(",", 1)[0]) <= start]
    if len(kept) != len(lines) - 1 or lines[:1] != [header]:
        write_text(log_path, header + "".join(kept))
    return max((int(line.split(",", 1)[0]) for line in rows), default=0)


def dataset_tokens(model_path: Path, encoded: Path, out_npz: Path) -> int:
    """Tokenise `encoded` with the vocabulary in `model_path` into `out_npz`; returns the token count.

    gpt-2-simple's pure-Python encoder is slow on large files; the Rust `tokenizers` BPE reads
    the same encoder.json / vocab.bpe and gives the same ids, which is checked on the first
    documents (falling back to gpt-2-simple's encoder if they ever differ). gpt-2-simple's
    the training loop reads the `.npz`. The training text's categories
    go to `TRAINED_CATEGORIES` (a sorted JSON list) beside `out_npz`.
    """
    import numpy as np
    from gpt_2_simple.src import encoder
    from tokenizers import ByteLevelBPETokenizer

    text = encoded.read_text(encoding="utf-8")
    categories = {parse(line).document.category for line in text.splitlines()}
    write_json(out_npz.parent / TRAINED_CATEGORIES, sorted(categories - {None}))
    reference = encoder.get_encoder(str(model_path))
    fast = ByteLevelBPETokenizer(str(model_path / "encoder.json"), str(model_path / "vocab.bpe"),
                                 add_prefix_space=False)
    head = "".join(text.splitlines(keepends=True)[:_CHECK_LINES])
    if fast.encode(head).ids == reference.encode(head):
        ids = fast.encode(text).ids
    else:
        print("train: fast tokenizer disagrees with gpt-2-simple's encoder; using the slow one", file=sys.stderr)
        ids = reference.encode(text)
    with atomic_path(out_npz) as tmp, tmp.open("wb") as fh:
        np.savez(fh, np.asarray(ids, dtype=np.int32))
    return len(ids)


class LossLog:
    """Every training step's loss in `log_path` (CSV), one line shown in `print_every` on `out`.

    start: steps already done before this session (the restored checkpoint's step); 0 starts a
    new log. On a resume the log is cut back to `start`: steps a killed session ran after its
    last checkpoint are trained again, and would otherwise be listed twice.
    sessions_path: a JSON list with one entry per training session ({steps, loop_seconds,
    wall_seconds, start_step}); this session's entry is rewritten after every step, so a killed
    session still counts. `keep_sessions` False starts the list afresh.
    validate: called with (step, training avg) after each step; returns the validation loss or None
    (pipeline.train.validation.Validator); with it the log has a `val_loss` column.
    """

    def __init__(self, out: TextIO, print_every: int, log_path: Path, start: int = 0,
                 sessions_path: Path | None = None, keep_sessions: bool = True,
                 validate: Callable[[int, float], float | None] | None = None):
        self.out = out
        self.validate = validate
        header = _LOG_HEADER.replace("\n", ",val_loss\n") if validate is not None else _LOG_HEADER
        self.print_every = print_every
        self.log_path = log_path
        self.steps = 0  # steps recorded in this session
        self._started = time.time()
        self.sessions_path = sessions_path
        self.sessions: list[dict] = []
        if sessions_path is not None and keep_sessions and sessions_path.is_file():
            self.sessions = json.loads(sessions_path.read_text(encoding="utf-8"))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        if start == 0 or not log_path.is_file():
            write_text(log_path, header)
        else:
            logged = _cut_log(log_path, start, header)
            # A kill between a step's log row and the sessions write leaves the killed session one
            # step short in the sessions file; the log is the record of what it trained.
            if self.sessions:
                last = self.sessions[-1]
                last["steps"] = max(last["steps"], logged - last.get("start_step", 0))

    def end_session(self) -> list[dict]:
        """Close this session's entry (its wall time now includes the final save); returns every session."""
        if self.steps and self.sessions_path is not None:
            self.sessions[-1]["wall_seconds"] = round(time.time() - self._started, 3)
            write_json(self.sessions_path, self.sessions)
        return self.sessions

    def record(self, step: int, seconds: float, loss: float, avg: float) -> float | None:
        """Log step `step` (`seconds` since this session's loop started; its loss and the running
        average); returns the validation loss measured at it, or None."""
        self.steps += 1
        val = self.validate(step, avg) if self.validate is not None else None
        with self.log_path.open("a", encoding="utf-8") as fh:
            extra = "" if self.validate is None else f",{'' if val is None else val}"
            fh.write(f"{step},{seconds},{loss},{avg}{extra}\n")
        if self.sessions_path is not None:
            if self.steps == 1:
                self.sessions.append({"steps": 0, "loop_seconds": 0.0, "wall_seconds": 0.0, "start_step": step - 1})
            self.sessions[-1].update(steps=self.steps, loop_seconds=round(seconds, 3),
                                     wall_seconds=round(time.time() - self._started, 3))
            write_json(self.sessions_path, self.sessions)
        if step % self.print_every == 0 or val is not None:
            self.out.write(f"[{step} | {seconds:.2f}] loss={loss:.2f} avg={avg:.2f}"
                           + ("" if val is None else f" val_loss={val}") + "\n")
            self.out.flush()
        return val

    def last_row(self) -> dict | None:
        """The newest logged step as {'step', 'seconds', 'loss', 'avg'}, from this or an earlier session."""
        if not self.log_path.is_file():
            return None
        rows = list(csv.DictReader(self.log_path.open(encoding="utf-8")))
        if not rows:
            return None
        row = rows[-1]
        return {"step": int(row["step"]), "seconds": float(row["seconds"]),
                "loss": float(row["loss"]), "avg": float(row["avg"])}
