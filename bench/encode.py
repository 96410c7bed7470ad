"""Encoder throughput: our Ray encoder vs a single-process nlp.pipe loop vs one remote call per row.

    make bench-encode        (python -m bench.encode [--rows 64000] [--workers 2] [--rounds 2] [--no-naive])

All three encode the same rows, every one a different title (see `unique_titles`: the first
half of one sample title joined to the second half of another, so lengths and vocabulary stay
those of real titles), with the same keyword rules, in one run:
  (a) pipeline.encode.stage.encode: Ray actors fed batches of rows, nlp.pipe inside;
  (b) one process: read, spaCy nlp.pipe, augment, shuffle, write, with no Ray on the machine (the
      fastest plain loop: Ray's own daemons, left running beside it, slowed it by a third);
  (c) the naive design: one remote call per row, each running nlp(text) on a Ray actor;
  (d) the ceiling for two workers on this machine: two plain processes (no Ray), each loading
      spaCy and encoding half the rows, nothing shuffled or written.
Every job includes loading spaCy and writing its output. Ray is shut down before every run: (a)
starts it inside its time, as `make encode` does, and (b) and (d) run without it. (a) and (b)
run `--rounds` times each, in the order a b, b a, ..., and their rates are over all their rounds,
so a drift in the machine's speed during the run weighs on both alike.
Prints rows/s of each, the ratios a/b, d/b and a/c, where (a)'s time goes (start-up,
encoding, the serial shuffle and write, CPU used by Ray's own processes) and the load average.
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

from pipeline.encode.stage import EncodeConfig, EncodeWorker, encode, encode_rows, start_ray  # noqa: E402
from pipeline.encode import extract_keywords, keyword_subsets, straighten_quotes  # noqa: E402
from pipeline.core.nlp import load_spacy  # noqa: E402
from pipeline.encode.rows import iter_rows  # noqa: E402

SAMPLE = Path("data/sample_titles.csv")
SEED = 42  # the default config's


def unique_titles(sample: Path, rows: int, out: Path, seed: int = 0) -> int:
    """Write `rows` rows with pairwise different titles made from `sample`'s titles; returns the row count.

    Row i takes its category and the first half of the words of one sample title and the second half
    of another's, the pairs drawn with `seed`, so no two rows are equal and none is a plain copy.
    """
    with open(sample, newline="", encoding="utf-8") as fh:
        base = [(r["subreddit"], r["title"].split()) for r in csv.DictReader(fh) if r["title"].split()]
    rng, seen = random.Random(seed), set()
    with open(out, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["subreddit", "title"])
        while len(seen) < rows:
            (category, head), (_, tail) = rng.choice(base), rng.choice(base)
            title = " ".join(head[: (len(head) + 1) // 2] + tail[len(tail) // 2:])
            if (category, title) not in seen:
                seen.add((category, title))
                writer.writerow([category, title])
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


def _half(ecfg: EncodeConfig, seed: int, part: int) -> int:
    """One of (d)'s two processes: load spaCy, read the CSV, encode every other row (from `part`)."""
    nlp = load_spacy(ecfg.spacy_model)
    rows = [r for chunk in iter_rows(ecfg.input, ecfg, Counter()) for r in chunk][part::2]
    return len(encode_rows(nlp, ecfg, seed, rows).documents) and len(rows)


def two_plain_processes(ecfg: EncodeConfig, seed: int) -> int:
    """(d): the machine's ceiling for two workers, without Ray: two fresh processes, each encoding half
    the rows (each reads the whole CSV; nothing is shuffled or written); returns rows encoded."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        return sum(pool.map(_half, [ecfg] * 2, [seed] * 2, [0, 1]))


def ray_daemons_cpu() -> float:
    """CPU seconds used so far by Ray's own processes on this machine (raylet, GCS, dashboard and agents,
    log monitor), not by the actors or the driver."""
    import psutil

    total = 0.0
    for proc in psutil.process_iter(["cmdline"]):
        line = " ".join(proc.info["cmdline"] or [])
        if any(k in line for k in ("raylet", "gcs_server", "dashboard", "log_monitor", "monitor.py", "Agent")):
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.Error:
                pass
    return total


class NaiveWorker(EncodeWorker):
    """(c): an actor called once per row, running nlp(text) on that row alone."""

    def one(self, row) -> list[str]:
        doc = self.nlp(straighten_quotes(row.title))
        keywords = extract_keywords(doc, self.ecfg.keyword_length_max)
        rng = random.Random(f"{self.seed}:{row.index}")
        return [" ".join(s) for s in keyword_subsets(keywords, self.ecfg.repeat, self.ecfg.min_keywords,
                                                      self.ecfg.max_keywords, rng)]


def no_ray() -> None:
    """Stop this process's Ray (and its daemons), so the next run starts from a machine without it."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


def one_call_per_row(ecfg: EncodeConfig, seed: int) -> int:
    """(c): every row its own remote call, Ray started inside; returns rows encoded."""
    import ray

    start_ray(ecfg)
    actor_cls = ray.remote(num_cpus=1)(NaiveWorker)
    actors = [actor_cls.remote(ecfg, seed) for _ in range(ecfg.workers)]
    skipped: Counter = Counter()
    refs = [actors[i % len(actors)].one.remote(row)
            for i, row in enumerate(r for chunk in iter_rows(ecfg.input, ecfg, skipped) for r in chunk)]
    ray.get(refs)
    for actor in actors:
        ray.kill(actor)
    return len(refs)


class Phases:
    """Where (a)'s time goes: wraps pipeline.encode.stage.run_batches to note when the first batch came back
    and when the last did; `report(total)` splits the run into start-up, encoding and the serial tail."""

    def __init__(self):
        import pipeline.encode.stage as stage

        self.marks: list[float] = []
        real = stage.run_batches

        def run_batches(ecfg, seed, batches, on_done):
            def noted(no, result):
                self.marks.append(time.perf_counter())
                on_done(no, result)

            self.marks, self.start = [], time.perf_counter()  # each run of (a) is noted afresh
            real(ecfg, seed, batches, noted)
            self.end = time.perf_counter()

        stage.run_batches = run_batches

    def report(self, total: float) -> str:
        first, last = self.marks[0] - self.start, self.marks[-1] - self.start
        return (f"start-up to the first batch back {first:.1f} s, encoding {last - first:.1f} s, "
                f"actors stopped {self.end - self.marks[-1]:.1f} s, shuffle + write {total - (self.end - self.start):.1f} s")


def timed(fn, *args) -> tuple[int, float]:
    start = time.perf_counter()
    rows = fn(*args)
    return rows, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description="encoder throughput benchmark")
    parser.add_argument("--rows", type=int, default=64_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--no-naive", action="store_true", help="skip (c), the slowest")
    parser.add_argument("--rounds", type=int, default=2, help="(a) and (b) alternate a, b / b, a this many times")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv_path = tmp / "bench.csv"
        unique_titles(args.sample, args.rows, csv_path)
        ecfg, seed = EncodeConfig(input=str(csv_path), workers=args.workers), SEED
        print(f"{args.rows} unique rows, {args.workers} workers, {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.1f} at the start")
        r_rows, r_s = timed(lambda: sum(len(c) for c in iter_rows(ecfg.input, ecfg, Counter())))
        print(f"    reading and checking the CSV alone (the driver's share): {r_s:.1f} s")
        # The host's speed drifts over minutes (one quiet run gave (b) 333 rows/s, the next 421), so (a)
        # and (b) alternate a, b, b, a, ...: each gets the same share of early and late minutes.
        a_rows = a_s = b_rows = b_s = 0
        legs = [x for r in range(args.rounds) for x in (("a", "b") if r % 2 == 0 else ("b", "a"))]
        phases = Phases()  # wraps the stage's run_batches once for every run of (a)
        for leg in legs:
            no_ray()
            if leg == "a":
                daemons = ray_daemons_cpu()
                rows, secs = timed(lambda: encode(ecfg, seed, tmp / "a.txt", tmp / "a.json")["rows_encoded"])
                a_rows, a_s = a_rows + rows, a_s + secs
                print(f"(a) ray encoder      {rows / secs:9.1f} rows/s  ({secs:.1f} s)")
                print(f"    {phases.report(secs)}; Ray's own processes used {ray_daemons_cpu() - daemons:.1f} CPU s meanwhile")
            else:
                rows, secs = timed(single_process, ecfg, seed, tmp / "b.txt")
                b_rows, b_s = b_rows + rows, b_s + secs
                print(f"(b) single nlp.pipe  {rows / secs:9.1f} rows/s  ({secs:.1f} s)")
        same = (tmp / "a.txt").read_bytes() == (tmp / "b.txt").read_bytes()
        print(f"    (a) and (b) outputs byte-identical: {same}")
        print(f"over {args.rounds} round(s): (a) {a_rows / a_s:.1f} rows/s, (b) {b_rows / b_s:.1f} rows/s")
        no_ray()
        d_rows, d_s = timed(two_plain_processes, ecfg, seed)
        print(f"(d) 2 plain procs    {d_rows / d_s:9.1f} rows/s  ({d_s:.1f} s; no Ray, no shuffle or write: the "
              f"ceiling for two workers here)")
        a, b = a_rows / a_s, b_rows / b_s
        print(f"a/b = {a / b:.2f}   (goal >= 1.85 with 2 workers on 2 cores); d/b = {d_rows / d_s / b:.2f}")
        if not args.no_naive:
            c_rows, c_s = timed(one_call_per_row, ecfg, seed)
            print(f"(c) remote call/row  {c_rows / c_s:9.1f} rows/s  ({c_s:.1f} s)")
            print(f"a/c = {a / (c_rows / c_s):.2f}   (goal >= 3)")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
