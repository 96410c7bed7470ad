"""The generate stage's job: its batch plan, sampling one planned batch into records, and its resumable output file.

Records go to `<out>.partial` as they are made; `<out>.partial.job` holds the job's
fingerprint, so a re-run of the same job resumes and a changed job starts over.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_path, write_text

if TYPE_CHECKING:
    from pipeline.generate.prompts import Prompt
    from pipeline.generate.sampling import SamplingLoop


@dataclass(frozen=True)
class Batch:
    """Samples drawn together: their indices, the prompt of each, and the batch's seed."""

    indices: tuple[int, ...]
    prompt_ids: tuple[int, ...]
    seed: int
    guided: bool | None = None  # None: the job has no keyword guidance


def plan_batches(prompts: list[Prompt], prompt_lens: list[int], batch_size: int, seed: int) -> list[Batch]:
    """Every sample of the job in batches of at most `batch_size`, the same for the same inputs.

    Sample indices run through the prompts in order (`count` each). Only prompts with the same
    token length share a batch, so a batch needs no padding; batches are ordered by their
    first index and batch b gets seed `seed + b`.
    """
    by_len: dict[int, list[tuple[int, int]]] = defaultdict(list)
    index = 0
    for pid, prompt in enumerate(prompts):
        for _ in range(prompt.count):
            by_len[prompt_lens[pid]].append((index, pid))
            index += 1
    chunks = [group[i:i + batch_size] for group in by_len.values() for i in range(0, len(group), batch_size)]
    chunks.sort(key=lambda chunk: chunk[0][0])
    return [Batch(indices=tuple(i for i, _ in chunk), prompt_ids=tuple(p for _, p in chunk), seed=seed + b)
            for b, chunk in enumerate(chunks)]


def guidance_passes(batches: list[Batch], total: int, compare: bool) -> list[Batch]:
    """`batches` guided and, when `compare`, again unguided with the same prompts and seeds.

    The unguided copy of a batch takes the indices `total` higher and runs right after it.
    """
    out = []
    for b in batches:
        out.append(dataclasses.replace(b, guided=True))
        if compare:
            out.append(dataclasses.replace(b, indices=tuple(i + total for i in b.indices), guided=False))
    return out


def batch_records(loop: SamplingLoop, batch: Batch, prompts: list[Prompt]) -> tuple[list[dict], int]:
    """Sample one planned batch; returns its records (the generated file's schema) and the loop's steps.

    An unguided batch of a guided job (`batch.guided` False) runs through the hook with strength 0,
    which leaves the logits untouched.
    """
    rows = [prompts[p] for p in batch.prompt_ids]
    if getattr(loop, "candidates", 1) > 1:  # best-of-n: k rows per sample, the rest under "rejected"
        from pipeline.generate.best_of import candidate_records

        return candidate_records(loop, batch, rows, loop.candidates, loop.title_lengths)
    draws, steps = loop.draw(rows, batch.seed, guided=batch.guided is not False)
    records = []
    for index, prompt, draw in zip(batch.indices, rows, draws):
        record = {"index": index, "category": prompt.category, "keywords": list(prompt.keywords),
                  "seed": batch.seed, "text": draw.text, "finished": draw.finished, "logprob": draw.logprob}
        if batch.guided is not None:
            record["guided"] = batch.guided
        records.append(record)
    return records, steps


class BatchOutcome(NamedTuple):
    """One sampled batch: its records, loop steps run, steps allowed (no early stop) and sampling seconds."""

    records: list[dict]
    steps: int
    steps_max: int
    seconds: float


def sample_batch(loop: SamplingLoop, batch: Batch, prompts: list[Prompt]) -> BatchOutcome:
    """Sample one planned batch with `loop` (in this process or on an actor), timed."""
    start = time.perf_counter()
    records, steps = batch_records(loop, batch, prompts)
    steps_max = loop.max_new_tokens(loop.prompt_tokens(prompts[batch.prompt_ids[0]]))
    return BatchOutcome(records, steps, steps_max, time.perf_counter() - start)


def job_fingerprint(settings: dict, prompts: list[Prompt], checkpoint: Path) -> str:
    """A digest of everything that decides the job's samples: `settings` (seed and sections), prompts and weights."""
    marker = checkpoint / "checkpoint"
    counter = checkpoint / "counter"
    identity = {
        **settings,
        "prompts": [[p.category, list(p.keywords), p.count] for p in prompts],
        "checkpoint": str(checkpoint.resolve()),
        "weights": [marker.read_text() if marker.is_file() else None, counter.read_text() if counter.is_file() else None],
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


class JobFile:
    """The resumable JSON Lines output of one generation job."""

    def __init__(self, out_path: Path, fingerprint: str):
        self.out_path = out_path
        self.partial = out_path.with_name(out_path.name + ".partial")
        self.job = out_path.with_name(out_path.name + ".partial.job")
        self.fingerprint = fingerprint

    def open(self) -> set[int]:
        """Indices already written by an earlier run of this same job (an empty set for a new job).

        A last line cut short by a kill is removed; a partial file of another job is discarded.
        """
        if not (self.partial.is_file() and self.job.is_file()
                and self.job.read_text(encoding="utf-8").strip() == self.fingerprint):
            self.partial.parent.mkdir(parents=True, exist_ok=True)
            self.partial.write_text("", encoding="utf-8")
            write_text(self.job, self.fingerprint + "\n")
            return set()
        done: set[int] = set()
        good_bytes = 0
        with self.partial.open("rb") as fh:
            for raw in fh:
                try:
                    record = json.loads(raw)
                    index = record["index"]
                except (ValueError, KeyError, TypeError):
                    break
                if not raw.endswith(b"\n"):
                    break
                done.add(index)
                good_bytes += len(raw)
        with self.partial.open("r+b") as fh:
            fh.truncate(good_bytes)
        return done

    def append(self, records: list[dict]) -> None:
        """Append `records` and push them to disk, so a kill after this loses none of them."""
        with self.partial.open("a", encoding="utf-8") as fh:
            for record in records:
                fh.write(json.dumps(record, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def finish(self, total: int) -> None:
        """Check that indices 0..total-1 are all there, sort by index and rename onto the output."""
        records: dict[int, str] = {}
        with self.partial.open(encoding="utf-8") as fh:
            for line in fh:
                records.setdefault(json.loads(line)["index"], line)
        missing = set(range(total)) - set(records)
        if missing:
            raise InputError(f"{self.partial}: {len(missing)} samples missing (first: {min(missing)})")
        with atomic_path(self.out_path) as tmp, tmp.open("w", encoding="utf-8") as fh:
            for index in sorted(records):
                fh.write(records[index])
        self.partial.unlink()
        self.job.unlink()
