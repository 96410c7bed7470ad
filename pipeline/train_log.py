"""Helpers of the train stage: the tokenised dataset, the step counter and the loss log.

gpt-2-simple reports progress only by printing; `LossCapture` reads those lines as they
are printed, records every step's loss and shows one line in `print_every`.
"""
from __future__ import annotations

import csv
import io
import re
import sys
from pathlib import Path
from typing import TextIO

from pipeline.io import atomic_path

# finetune prints "[<step> | <seconds since the loop started>] loss=<x> avg=<y>".
_LOSS_LINE = re.compile(r"^\[(\d+) \| ([\d.]+)\] loss=([\d.naif]+) avg=([\d.naif]+)\s*$")
# finetune prints this advice (and tab-indented options) for any model but 124M; on TensorFlow 2
# it recommends memory-saving gradients that gpt-2-simple itself refuses, so it is not shown.
_ADVICE = "For larger models, the recommended finetune() parameters are:"
# How many documents are checked against gpt-2-simple's own encoder before trusting the fast one.
_CHECK_LINES = 300


def read_counter(ckpt_path: Path) -> int:
    """Steps saved in a gpt-2-simple checkpoint folder (its `counter` file); 0 when there is none."""
    counter = ckpt_path / "counter"
    if not counter.is_file():
        return 0
    text = counter.read_text().strip()
    return int(text) if text.isdigit() else 0


def dataset_tokens(model_path: Path, encoded: Path, out_npz: Path) -> int:
    """Tokenise `encoded` with the vocabulary in `model_path` into `out_npz`; returns the token count.

    gpt-2-simple's pure-Python encoder is slow on large files; the Rust `tokenizers` BPE reads
    the same encoder.json / vocab.bpe and gives the same ids, which is checked on the first
    documents (falling back to gpt-2-simple's encoder if they ever differ). gpt-2-simple's
    finetune loads `.npz` files as already-encoded token chunks.
    """
    import numpy as np
    from gpt_2_simple.src import encoder
    from tokenizers import ByteLevelBPETokenizer

    text = encoded.read_text(encoding="utf-8")
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


class LossCapture(io.TextIOBase):
    """A stdout stand-in that records finetune's loss lines in `log_path` (CSV) and thins them out.

    start: steps already done before this session; 0 starts a new log.
    """

    def __init__(self, out: TextIO, print_every: int, log_path: Path, start: int = 0):
        self.out = out
        self.print_every = print_every
        self.log_path = log_path
        self.steps = 0  # steps seen in this session
        self.seconds = 0.0  # loop seconds of this session, as finetune measures them
        self._buffer = ""
        self._in_advice = False
        if start == 0 or not log_path.is_file():
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log_path.write_text("step,seconds,loss,avg\n", encoding="utf-8")

    def write(self, text: str) -> int:
        self._buffer += text
        while "\n" in self._buffer:
            line, self._buffer = self._buffer.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self.out.flush()

    def _line(self, line: str) -> None:
        if line == _ADVICE or (self._in_advice and (line.startswith("\t") or not line)):
            self._in_advice = True
            return
        self._in_advice = False
        m = _LOSS_LINE.match(line)
        if m is None:
            self.out.write(line + "\n")
            return
        step, seconds, loss, avg = int(m[1]), float(m[2]), float(m[3]), float(m[4])
        self.steps += 1
        self.seconds = seconds
        with self.log_path.open("a", encoding="utf-8") as fh:
            fh.write(f"{step},{seconds},{loss},{avg}\n")
        if step % self.print_every == 0:
            self.out.write(line + "\n")
            self.out.flush()

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
