"""Best-of-n: kept titles/s, fluency and keyword share at k = 1, 2, 4 candidates per title.

    make bench-best-of      (python -m bench.best_of [--config configs/default.yaml]
                             [--checkpoint DIR] [--prompts N] [--count 8] [--k 1 2 4])

Each k samples the config's prompts (the first --prompts rows, --count titles each), guided with
the config's `guidance:`, through the generate stage's batch plan and batch_records with
`generate.candidates` = k (one graph, batch_size x k rows per batch). Each k is timed from
building its graph to the last title. Prints kept (finished) titles/s, its ratio to k = 1
measured in the same run, and the kept titles' mean log-prob per token and every-keyword share.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from bench.guidance import all_present  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.generate import plan_job  # noqa: E402
from pipeline.generate.jobfile import batch_records  # noqa: E402
from pipeline.generate import load_prompts  # noqa: E402
from pipeline.generate import SamplingLoop  # noqa: E402


def run_k(checkpoint: Path, prompts, g, guidance, seed: int, k: int) -> tuple[list[dict], float]:
    """(kept records, seconds) for k candidates per title."""
    start = time.perf_counter()
    records = []
    with SamplingLoop(checkpoint, g.sampling, g.length, guidance, candidates=k) as loop:
        batches, _ = plan_job(loop, prompts, g, guidance, seed)
        for batch in batches:
            records += batch_records(loop, batch, prompts)[0]
    return records, time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--checkpoint", help="a trained model folder (default: the config's)")
    parser.add_argument("--prompts", type=int, default=0, help="use the first N prompts (0: all)")
    parser.add_argument("--count", type=int, default=8, help="titles per prompt")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    checkpoint = Path(args.checkpoint) if args.checkpoint else cfg.paths.checkpoint
    if not (checkpoint / "checkpoint").is_file():
        print(f"bench-best-of: no trained model in {checkpoint}; run `make encode train` first", file=sys.stderr)
        return 2
    prompts = [dataclasses.replace(p, count=args.count) for p in load_prompts(cfg.generate)[: args.prompts or None]]
    guidance = dataclasses.replace(cfg.guidance, compare=False)
    import tensorflow  # noqa: F401  (the one-off library load is not any side's cost)

    g = cfg.generate
    print(f"checkpoint {checkpoint}; {len(prompts)} prompts x {args.count} titles, batch {g.batch_size}; "
          f"guidance strength {guidance.strength}, end_bias {guidance.end_bias}, shape {guidance.shape}")
    base = None
    for k in args.k:
        records, seconds = run_k(checkpoint, prompts, g, guidance, cfg.seed, k)
        finished = [r for r in records if r["finished"]]
        rate = len(finished) / seconds
        base = base or rate
        print(f"k={k}: {len(finished)} titles in {seconds:.1f} s -> {rate:.2f} titles/s ({rate / base:.2f} x k=1); "
              f"log-prob/token {statistics.fmean(r['logprob'] for r in finished):.3f}; "
              f"every keyword present {100 * all_present(records):.1f} %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
