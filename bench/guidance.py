"""Finished titles/s with keyword guidance against the same sampler without it.

    make bench-guidance      (python -m bench.guidance [--config configs/default.yaml]
                              [--prompts N] [--count 16] [--rounds 2])

Both sides use the config's trained checkpoint (`make train` first), its prompts (the
first --prompts rows, --count samples each), batch size, length, sampling settings and
seed, in one process:
  (a) unguided: pipeline.generate.sampling.SamplingLoop with no hook (the sampler of a run without guidance);
  (b) guided: the same sampler with the config's `guidance:` hook (strength from the config).
Each side is timed from building its graph to the last sample; the sides alternate for
--rounds rounds and each side's total time counts, so a slow spell of the machine hits both.
Prints finished titles/s of each, the ratio b/a (the goal is >= 0.8) and, as a check that
guidance did its job, the share of finished titles containing every requested keyword as
written (decode's lemma matching can only find more).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.generate import ours  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.decode import extract  # noqa: E402
from pipeline.core.measures import coverage, words  # noqa: E402
from pipeline.generate import load_prompts  # noqa: E402


def all_present(records: list[dict]) -> float:
    """Share of finished records whose title has every requested keyword, as written."""
    hits = []
    for r in records:
        if r["finished"]:
            values = extract(r["text"], ("keywords", "title")).values
            hits.append(not coverage(values["keywords"].split(), words(values["title"])).missing)
    return sum(hits) / len(hits) if hits else 0.0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--prompts", type=int, default=0, help="use the first N prompts (0: all)")
    parser.add_argument("--count", type=int, default=16, help="samples per prompt")
    parser.add_argument("--rounds", type=int, default=2, help="times each side runs, alternating")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    if cfg.guidance.strength == 0:
        parser.error(f"{args.config} has guidance.strength 0; nothing to compare")
    checkpoint = cfg.paths.checkpoint
    if not cfg.paths.train_done.is_file():
        print(f"bench-guidance: no trained model for {args.config} ({cfg.paths.train_done} is missing); "
              f"run `make encode train CONFIG={args.config}` first", file=sys.stderr)
        return 2
    prompts = [dataclasses.replace(p, count=args.count) for p in load_prompts(cfg.generate)[: args.prompts or None]]
    import tensorflow  # noqa: F401  (the one-off library load is not either side's cost)

    g = cfg.generate
    print(f"checkpoint {checkpoint}; {len(prompts)} prompts x {args.count} samples, batch {g.batch_size}, "
          f"max length {g.length}; guidance strength {cfg.guidance.strength}, end_bias {cfg.guidance.end_bias}")
    sides = {"unguided": None, "guided": cfg.guidance}
    totals = {name: [0, 0.0] for name in sides}
    shares = {}
    for _ in range(args.rounds):
        for name, guidance in sides.items():
            records, seconds = ours(checkpoint, prompts, g, cfg.seed, guidance)
            totals[name][0] += sum(r["finished"] for r in records)
            totals[name][1] += seconds
            shares[name] = all_present(records)
    rates = {}
    for name, (finished, seconds) in totals.items():
        rates[name] = finished / seconds
        print(f"{name:>9}: {finished} finished titles in {seconds:.2f} s -> {rates[name]:.2f} titles/s; "
              f"every keyword present in {100 * shares[name]:.1f} %")
    print(f"ratio guided / unguided: {rates['guided'] / rates['unguided']:.2f} (goal >= 0.8)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
