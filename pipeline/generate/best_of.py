"""Best-of-n: `generate.candidates` = k samples per requested title, drawn in the same batched pass,
the best one kept by a documented score, the others written to a side file.

The k candidates of a prompt are k rows of one batch (the batch holds batch_size x k rows), so
they come from the same graph and the same batch seed; each row draws its own random numbers,
so the candidates differ. The score of a candidate (higher is better):

    score = logprob + LENGTH_WEIGHT * log P(length)  - MISSING_PENALTY * (a keyword is missing)
                                                      - UNFINISHED_PENALTY * (no finished title)

* every keyword present first: a keyword counts when its words are in the title as written
  (pipeline.core.measures.coverage without lemmas; decode's measure also accepts lemmas), and the
  penalty outweighs any log-prob difference, so a candidate with every keyword always wins;
* then the model's own mean log-probability per generated token (fluency);
* then length plausibility: the smoothed share of the category's training titles with this
  many words (pipeline.generate.title_lengths), weighted so that an implausible length costs about as
  much as a few tenths of a nat per token.
A sample that never ended, or has an empty title, ranks last. Ties keep sampling order.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from pipeline.core.format import parse
from pipeline.core.io import atomic_path
from pipeline.core.measures import coverage, words
from pipeline.generate.title_lengths import ALL

if TYPE_CHECKING:
    from pipeline.generate.prompts import Prompt
    from pipeline.generate.sampling import Draw, SamplingLoop

LENGTH_WEIGHT = 0.1
MISSING_PENALTY = 100.0
UNFINISHED_PENALTY = 1000.0


def length_loglik(n_words: int, pool: np.ndarray | None) -> float:
    """log P(a title has `n_words` words) under the training lengths `pool`, add-one smoothed over
    0..max+1 words; 0 when there are no lengths."""
    if pool is None or not len(pool):
        return 0.0
    support = int(pool.max()) + 2
    return math.log((int(np.sum(pool == n_words)) + 1) / (len(pool) + support))


def score(draw: Draw, keywords: Sequence[str], pool: np.ndarray | None) -> float:
    """The candidate's score (module doc): higher is better."""
    title = (parse(draw.text).document.title or "").strip()
    value = draw.logprob + LENGTH_WEIGHT * length_loglik(len(title.split()), pool)
    if coverage(keywords, words(title)).missing:
        value -= MISSING_PENALTY
    if not (draw.finished and title):
        value -= UNFINISHED_PENALTY
    return round(value, 4)


def candidate_records(loop: SamplingLoop, batch: Any, rows: list[Prompt], k: int,
                      lengths: dict[str, np.ndarray]) -> tuple[list[dict], int]:
    """Sample `batch` (a pipeline.generate.jobfile.Batch: indices, seed, guided) for its prompts `rows` with k
    candidates each in one pass; returns one record per
    requested sample (the generated file's schema plus `score`, `rank` 1 and `candidates` k, and
    under `rejected` the other candidates' records, ranks 2..k) and the loop's steps."""
    draws, steps = loop.draw([p for p in rows for _ in range(k)], batch.seed, guided=batch.guided is not False)
    records = []
    for i, (index, prompt) in enumerate(zip(batch.indices, rows)):
        pool = lengths.get(prompt.category or "", lengths.get(ALL))
        mine = draws[i * k:(i + 1) * k]
        scores = [score(d, prompt.keywords, pool) for d in mine]
        order = sorted(range(k), key=lambda j: -scores[j])  # stable: ties keep sampling order
        ranked = []
        for rank, j in enumerate(order, start=1):
            record = {"index": index, "category": prompt.category, "keywords": list(prompt.keywords),
                      "seed": batch.seed, "text": mine[j].text, "finished": mine[j].finished,
                      "logprob": mine[j].logprob, "score": scores[j], "rank": rank, "candidates": k, "row": j}
            if batch.guided is not None:
                record["guided"] = batch.guided
            ranked.append(record)
        ranked[0]["rejected"] = ranked[1:]
        records.append(ranked[0])
    return records, steps


def append_candidates(partial: Path, records: list[dict]) -> None:
    """Append rejected candidates to the side file's `.partial` (created when missing)."""
    partial.parent.mkdir(parents=True, exist_ok=True)
    with partial.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records)


def finish_candidates(partial: Path, out: Path) -> int:
    """Sort the side file by (index, rank), one line per (index, rank) (a batch sampled again after a
    kill wrote its candidates twice; the same seed gives the same ones), and rename it onto `out`.
    Returns the candidates written."""
    rows: dict[tuple[int, int], str] = {}
    if partial.is_file():
        for line in partial.read_text(encoding="utf-8").splitlines():
            try:
                r = json.loads(line)
                rows[(r["index"], r["rank"])] = line
            except (ValueError, KeyError, TypeError):
                continue  # a line cut short by a kill
    with atomic_path(out) as tmp:
        tmp.write_text("".join(rows[key] + "\n" for key in sorted(rows)), encoding="utf-8")
    partial.unlink(missing_ok=True)
    return len(rows)
