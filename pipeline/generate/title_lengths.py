"""How long the training titles of each category are, in words: the length a guided title aims for.

Read from the tokenised training text train leaves beside the checkpoint (`dataset.npz`,
pipeline.train.log.dataset_tokens), so a model folder carries what its guidance needs and
no older run has to be trained again.
"""
from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from pipeline.core.format import parse

DATASET = "dataset.npz"
# The key of every title, whatever its category.
ALL = "*"
_DOCS = re.compile(r"[^\n]+")


def lengths_from_text(text: str) -> dict[str, np.ndarray]:
    """{category: word counts of its distinct titles} plus ALL, from encoded training text (one
    document per line; the augmented copies of a title count once)."""
    seen: set[tuple[str, str]] = set()
    out: dict[str, list[int]] = defaultdict(list)
    for line in _DOCS.findall(text):
        doc = parse(line).document
        if not doc.title or not doc.title.strip():
            continue
        key = ((doc.category or "").strip(), doc.title.strip())
        if key in seen:
            continue
        seen.add(key)
        n = len(key[1].split())
        out[key[0]].append(n)
        out[ALL].append(n)
    return {k: np.asarray(v, dtype=np.int32) for k, v in out.items()}


def training_lengths(model_path: Path, enc) -> dict[str, np.ndarray]:
    """The title lengths of the text the model in `model_path` was trained on, decoded from its
    `dataset.npz` with the model's encoder `enc`; {} when there is none (a base model folder)."""
    dataset = Path(model_path) / DATASET
    if not dataset.is_file():
        return {}
    with np.load(dataset) as data:
        ids = np.concatenate([data[name] for name in data.files])
    return lengths_from_text(enc.decode(ids.tolist()))


def draw_targets(lengths: dict[str, np.ndarray], categories: list[str | None], seed: int) -> np.ndarray:
    """One target length in words per row: drawn from its category's training titles (every title
    when the category is unknown), with a generator seeded by (`seed`, row); 0 (no target) when
    there are no lengths at all."""
    out = np.zeros(len(categories), dtype=np.int32)
    for row, category in enumerate(categories):
        pool = lengths.get(category or "")
        pool = pool if pool is not None and len(pool) else lengths.get(ALL)
        if pool is not None and len(pool):
            out[row] = pool[np.random.default_rng([seed & 0xFFFFFFFF, row]).integers(len(pool))]
    return out
