"""Encoder throughput: our Ray encoder vs a single-process nlp.pipe loop vs one remote call per row.

    make bench-encode        (python -m bench.encode [--rows 48000] [--workers 2])

All three encode the same rows (the committed sample replicated; each copy gets its own
category so no row is a duplicate) with the same keyword rules, in one run:
  (a) pipeline.encode.encode: Ray actors fed batches of rows, nlp.pipe inside;
  (b) one process: read, spaCy nlp.pipe, augment, shuffle, write;
  (c) the naive design: one remote call per row, each running nlp(text) on a Ray actor.
Every job includes loading spaCy and writing its output; Ray itself is started first.
Prints rows/s of each and the ratios a/b and a/c.
"""
from __future__ import annotations

import argparse
import csv
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

from pipeline.encode import EncodeConfig, EncodeWorker, encode, encode_rows, start_ray  # noqa: E402
from pipeline.keywords import extract_keywords, keyword_subsets, straighten_quotes  # noqa: E402
from pipeline.nlp import load_spacy  # noqa: E402
from pipeline.rows import iter_rows  # noqa: E402

SAMPLE = Path("data/sample_titles.csv")
SEED = 42  # the default config's


def replicate(sample: Path, rows: int, out: Path) -> int:
    """Write `rows` rows made of copies of `sample`; returns the row count."""
    with open(sample, newline="", encoding="utf-8") as fh:
        base = list(csv.DictReader(fh))
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subreddit", "title"])
        for i in range(rows):
            row = base[i % len(base)]
            writer.writerow([f"{row['subreddit']}{i // len(base)}", row["title"]])
    return rows


def single_process(ecfg: EncodeConfig, seed: int, out: Path) -> int:
    """(b): the same rules in one process with nlp.pipe; returns rows encoded."""
    nlp = load_spacy(ecfg.spacy_model)
    skipped: Counter = Counter()
    documents, rows = [], 0
    for chunk in iter_rows(ecfg.input, ecfg, skipped):
        documents += encode_rows(nlp, ecfg, seed, chunk).documents
        rows += len(chunk)
    random.Random(seed).shuffle(documents)
    out.write_text("".join(d + "\n" for d in documents), encoding="utf-8")
    return rows


class NaiveWorker(EncodeWorker):
    """(c): an actor called once per row, running nlp(text) on that row alone."""

    def one(self, row) -> list[str]:
        doc = self.nlp(straighten_quotes(row.title))
        keywords = extract_keywords(doc, self.ecfg.keyword_length_max)
        rng = random.Random(f"{self.seed}:{row.index}")
        return [" ".join(s) for s in keyword_subsets(keywords, self.ecfg.repeat, self.ecfg.min_keywords,
                                                      self.ecfg.max_keywords, rng)]


def one_call_per_row(ecfg: EncodeConfig, seed: int) -> int:
    """(c): every row its own remote call; returns rows encoded."""
    import ray

    actor_cls = ray.remote(num_cpus=1)(NaiveWorker)
    actors = [actor_cls.remote(ecfg, seed) for _ in range(ecfg.workers)]
    skipped: Counter = Counter()
    refs = [actors[i % len(actors)].one.remote(row)
            for i, row in enumerate(r for chunk in iter_rows(ecfg.input, ecfg, skipped) for r in chunk)]
    ray.get(refs)
    for actor in actors:
        ray.kill(actor)
    return len(refs)


def timed(fn, *args) -> tuple[int, float]:
    start = time.perf_counter()
    rows = fn(*args)
    return rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="encoder throughput benchmark")
    parser.add_argument("--rows", type=int, default=48_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv_path = tmp / "bench.csv"
        replicate(args.sample, args.rows, csv_path)
        ecfg, seed = EncodeConfig(input=str(csv_path), workers=args.workers), SEED
        start_ray(ecfg)
        print(f"{args.rows} rows, {args.workers} workers, {os.cpu_count()} CPUs")
        a_rows, a_s = timed(lambda: encode(ecfg, seed, tmp / "a.txt", tmp / "a.json")["rows_encoded"])
        print(f"(a) ray encoder      {a_rows / a_s:9.1f} rows/s  ({a_s:.1f} s)")
        b_rows, b_s = timed(single_process, ecfg, seed, tmp / "b.txt")
        print(f"(b) single nlp.pipe  {b_rows / b_s:9.1f} rows/s  ({b_s:.1f} s)")
        same = (tmp / "a.txt").read_bytes() == (tmp / "b.txt").read_bytes()
        print(f"    (a) and (b) outputs byte-identical: {same}")
        c_rows, c_s = timed(one_call_per_row, ecfg, seed)
        print(f"(c) remote call/row  {c_rows / c_s:9.1f} rows/s  ({c_s:.1f} s)")
        a, b, c = a_rows / a_s, b_rows / b_s, c_rows / c_s
        print(f"a/b = {a / b:.2f}   (goal >= 1.7 with 2 workers on 2 cores)")
        print(f"a/c = {a / c:.2f}   (goal >= 3)")


if __name__ == "__main__":
    main()
