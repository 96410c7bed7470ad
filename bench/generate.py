"""Finished titles/s: our generator vs a loop of gpt-2-simple's `generate` calls.

    make bench-generate      (python -m bench.generate [--config configs/default.yaml]
                              [--prompts N] [--count 16] [--batch-size B] [--length L])

Both use the same trained checkpoint (the config's run: `make train` first), the same
prompts (the first --prompts rows of the config's prompts, --count samples each), the
same batch size, max length and sampling settings (by default the config's whole prompts
file, 16 samples per prompt, and the config's generate.batch_size and generate.length),
in one process:
  (a) ours: pipeline.sampling.SamplingLoop (graph built once, batches stop when every sample
      ended), batches planned as the generate stage plans them;
  (b) baseline: gpt2.load_gpt2 once, then one gpt2.generate(..., prefix=..., nsamples=count,
      batch_size=..., length=..., truncate=END_TOKEN) call per prompt, as a gpt-2-simple
      user writes it.
Each side is timed from loading the checkpoint to the last sample. A sample counts as a
finished title when the end marker was generated: ours reports it per sample; for the
baseline (whose truncated text no longer shows it) when truncation removed at least the
marker's tokens, i.e. the returned text is shorter than prompt + length tokens.
Prints finished titles/s of both and the ratio a/b.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline.config import load_config  # noqa: E402
from pipeline.format import END_TOKEN  # noqa: E402
from pipeline.generate import plan_job  # noqa: E402
from pipeline.jobfile import batch_records  # noqa: E402
from pipeline.guidance import GuidanceConfig  # noqa: E402
from pipeline.prompts import Prompt, load_prompts  # noqa: E402
from pipeline.sampling import SamplingLoop  # noqa: E402


def ours(checkpoint: Path, prompts: list[Prompt], g, seed: int, guidance: GuidanceConfig | None = None
         ) -> tuple[list[dict], float]:
    """(records, seconds) with the generate stage's sampling loop and batch plan; `guidance`: sample
    every batch guided with it (no unguided comparison pass), None: no hook at all."""
    start = time.perf_counter()
    guidance = dataclasses.replace(guidance, compare=False) if guidance is not None else GuidanceConfig(strength=0.0)
    records = []
    with SamplingLoop(checkpoint, g.sampling, g.length, guidance) as loop:
        batches, _ = plan_job(loop, prompts, g, guidance, seed)
        for batch in batches:
            records += batch_records(loop, batch, prompts)[0]
    return records, time.perf_counter() - start


def baseline(checkpoint: Path, prompts: list[Prompt], g, seed: int) -> tuple[int, int, float]:
    """(samples, finished, seconds) with a loop of gpt2.generate calls."""
    import gpt_2_simple as gpt2
    import tensorflow as tf
    from gpt_2_simple.src import encoder

    enc = encoder.get_encoder(str(checkpoint))
    start = time.perf_counter()
    samples = finished = 0
    with tf.Graph().as_default():
        sess = gpt2.start_tf_sess()
        gpt2.load_gpt2(sess, checkpoint_dir=str(checkpoint.parent), run_name=checkpoint.name)
        for prompt in prompts:
            texts = gpt2.generate(sess, checkpoint_dir=str(checkpoint.parent), run_name=checkpoint.name,
                                  prefix=prompt.prefix, nsamples=prompt.count, batch_size=g.batch_size,
                                  length=g.length, temperature=g.temperature, top_k=g.top_k, top_p=g.top_p,
                                  truncate=END_TOKEN, return_as_list=True, seed=seed)
            full = len(enc.encode(prompt.prefix)) + g.length
            samples += len(texts)
            finished += sum(len(enc.encode(t)) < full for t in texts)
        sess.close()
    return samples, finished, time.perf_counter() - start


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--prompts", type=int, default=0, help="use the first N prompts (0: all)")
    parser.add_argument("--count", type=int, default=16, help="samples per prompt")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's generate.batch_size")
    parser.add_argument("--length", type=int, default=None, help="default: the config's generate.length")
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    args.batch_size = args.batch_size or cfg.generate.batch_size
    args.length = args.length or cfg.generate.length
    if args.count % args.batch_size:
        parser.error("--count must be a multiple of the batch size (gpt2.generate requires it)")
    checkpoint = cfg.paths.checkpoint
    if not cfg.paths.train_done.is_file():
        print(f"bench-generate: no trained model for {args.config} ({cfg.paths.train_done} is missing); "
              f"run `make encode train CONFIG={args.config}` first", file=sys.stderr)
        return 2
    g = dataclasses.replace(cfg.generate, batch_size=args.batch_size, length=args.length)
    prompts = [dataclasses.replace(p, count=args.count) for p in load_prompts(cfg.generate)[: args.prompts or None]]
    seed = cfg.seed
    # Imported before either side is timed: the library load is the same one-off cost for both.
    import gpt_2_simple  # noqa: F401
    import tensorflow  # noqa: F401

    print(f"checkpoint {checkpoint}; {len(prompts)} prompts x {args.count} samples, batch {g.batch_size}, "
          f"max length {g.length}, temperature {g.temperature}, top_k {g.top_k}, top_p {g.top_p}")
    records, seconds = ours(checkpoint, prompts, g, seed)
    results = {"ours": (len(records), sum(r["finished"] for r in records), seconds),
               "gpt2.generate loop": baseline(checkpoint, prompts, g, seed)}
    rates = {}
    for name, (samples, finished, seconds) in results.items():
        rates[name] = finished / seconds
        print(f"{name:>20}: {samples} samples, {finished} finished in {seconds:.2f} s "
              f"-> {rates[name]:.2f} finished titles/s")
    base = rates["gpt2.generate loop"]
    print(f"ratio ours / gpt2.generate loop: {rates['ours'] / base:.1f}x" if base else "baseline finished nothing")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
