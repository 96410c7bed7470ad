"""Decoding a million generated samples in constant memory: peak memory and throughput.

    make bench-decode        (python -m bench.decode [--samples 1000000] [--baseline 100000])

Writes a synthetic generate-stage JSON Lines file (seeded; titles drawn from a fixed
vocabulary, about 10 % needing spaCy lemmas for keyword coverage, 5 % unfinished,
5 % repeats of an earlier sample) and, in one run, decodes its first `baseline`
samples and all `samples` samples with
  (a) pipeline.decode.stage.decode, the decode stage (streaming, on-disk de-duplication),
  (b) the naive design: read every record into a list, decode_texts on the whole list,
      de-duplicate with a Python set (regex decoding only: no coverage, no novelty).
Each job runs in a fresh process, whose peak resident memory (ru_maxrss) is read at
its end. Prints samples/s and peak memory, and the ratios large/baseline per design:
a peak-memory ratio near 1.0 is constant memory.
"""
from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.core.format import END_TOKEN, START_TOKEN

NOUNS = ("dog cat game movie book phone car house garden city coffee pizza guitar camera bike beach "
         "mountain river song teacher doctor friend neighbour computer keyboard window door kitchen "
         "sunset lake forest painting recipe cake bread shirt shoe wallet ticket train plane island").split()
VERBS = ("found made built painted fixed lost bought cooked watched played wrote saw sold broke "
         "cleaned drew opened shared tried finished").split()
ADJS = ("old new small huge weird funny quiet broken shiny cheap free tiny strange cosy lovely rusty "
        "green blue golden wooden").split()
CATEGORIES = [f"sub{i}" for i in range(50)]


def synthetic_record(rng: random.Random, index: int, earlier: list[str]) -> dict:
    """One generate-stage record; its title usually mentions its keywords."""
    category = rng.choice(CATEGORIES)
    keywords = rng.sample(NOUNS, rng.randint(1, 3))
    if earlier and rng.random() < 0.05:
        text = rng.choice(earlier)
    else:
        # A plural needs the lemma to match the keyword; otherwise every keyword is there as written.
        mentioned = [k + "s" if rng.random() < 0.1 else k for k in keywords]
        words = [rng.choice(ADJS), rng.choice(NOUNS), rng.choice(VERBS), "the", rng.choice(ADJS),
                 *mentioned, "with", "my", rng.choice(NOUNS)]
        end = "" if rng.random() < 0.05 else END_TOKEN
        text = f"{START_TOKEN}~`{category}~^{' '.join(keywords)}~@{' '.join(words).capitalize()}{end}"
        if len(earlier) < 1000:
            earlier.append(text)
    return {"index": index, "category": category, "keywords": keywords, "seed": index, "text": text,
            "finished": text.endswith(END_TOKEN)}


def write_inputs(folder: Path, samples: int, baseline: int, seed: int) -> tuple[Path, Path, Path]:
    """The baseline and full JSON Lines files (the baseline is the full file's start) and a training text."""
    rng = random.Random(seed)
    earlier: list[str] = []
    small, large = folder / "small.jsonl", folder / "large.jsonl"
    with small.open("w", encoding="utf-8") as fs, large.open("w", encoding="utf-8") as fl:
        for i in range(samples):
            line = json.dumps(synthetic_record(rng, i, earlier)) + "\n"
            fl.write(line)
            if i < baseline:
                fs.write(line)
    encoded = folder / "encoded.txt"
    # Some training titles equal early generated ones, so the novelty check finds copies.
    encoded.write_text("".join(t.replace("~`", "~`x", 1) + "\n" for t in earlier if t.endswith(END_TOKEN)),
                       encoding="utf-8")
    return small, large, encoded


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def child(design: str, generated: Path, encoded: Path) -> dict:
    """Run one design on `generated` in this process; returns samples, seconds and peak memory."""
    start = time.perf_counter()
    if design == "stream":
        from pipeline.decode import DecodeConfig, decode

        out = generated.with_suffix(".csv")
        stats = decode(DecodeConfig(), generated, encoded, out, generated.with_suffix(".rejected.csv"),
                       generated.with_suffix(".stats.json"))
        samples, rows = stats["samples"], stats["unique_rows"]
        extra = {"lemmatised": stats["titles_lemmatised"], "dropped": stats["dropped"]}
    else:
        from keyword_decode import decode_texts

        records = [json.loads(line) for line in generated.open(encoding="utf-8")]
        titles = decode_texts([r["text"] for r in records], sections=["category", "keywords", "title"])
        rows, samples, extra = len(set(titles)), len(records), {}
    return {"samples": samples, "rows": rows, "seconds": time.perf_counter() - start, "peak_mib": peak_mib(),
            **extra}


def run_child(design: str, generated: Path, encoded: Path) -> dict:
    proc = subprocess.run([sys.executable, "-m", "bench.decode", "--child", design, str(generated), str(encoded)],
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description="decode benchmark: throughput and peak memory")
    parser.add_argument("--samples", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--child", nargs=3, metavar=("DESIGN", "GENERATED", "ENCODED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child[0], Path(args.child[1]), Path(args.child[2]))))
        return
    with tempfile.TemporaryDirectory(prefix="bench-decode-") as tmp:
        start = time.perf_counter()
        small, large, encoded = write_inputs(Path(tmp), args.samples, args.baseline, args.seed)
        print(f"synthetic input: {args.baseline} and {args.samples} samples, "
              f"{large.stat().st_size / 2**20:.0f} MiB, written in {time.perf_counter() - start:.0f} s")
        results = {}
        for design, label in (("stream", "(a) decode stage"), ("naive", "(b) in-memory list")):
            for name, path in (("baseline", small), ("large", large)):
                r = results[design, name] = run_child(design, path, encoded)
                detail = (f", lemmatised {r['lemmatised']}, dropped {r['dropped']}" if "lemmatised" in r else "")
                print(f"{label:20s} {r['samples']:>9d} samples {r['samples'] / r['seconds']:9.0f} samples/s "
                      f"peak {r['peak_mib']:7.1f} MiB  ({r['rows']} rows{detail})")
        for design, label in (("stream", "(a) decode stage"), ("naive", "(b) in-memory list")):
            base, big = results[design, "baseline"], results[design, "large"]
            print(f"{label}: peak memory {args.samples}/{args.baseline} = {big['peak_mib'] / base['peak_mib']:.2f}, "
                  f"throughput = {(big['samples'] / big['seconds']) / (base['samples'] / base['seconds']):.2f}")
        a, b = results["stream", "large"], results["naive", "large"]
        print(f"at {args.samples}: peak memory a/b = {a['peak_mib'] / b['peak_mib']:.2f}  (goal: a constant, b growing)")


if __name__ == "__main__":
    main()
