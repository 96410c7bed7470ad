"""Finished titles/s: our generator vs a loop of gpt-2-simple's `generate` calls.

    make bench-generate      (python -m bench.generate [--config configs/default.yaml]
                              [--prompts N] [--count 16] [--batch-size B] [--length L])

Both use the same trained checkpoint (the config's run: `make train` first), the same
prompts (the first --prompts rows of the config's prompts, --count samples each), the
same batch size, max length and sampling settings (by default the config's whole prompts
file, 16 samples per prompt, and the config's generate.batch_size and generate.length),
in one process:
  (a) ours: pipeline.generate.sampling.SamplingLoop (graph built once, batches stop when every sample
      ended), batches planned as the generate stage plans them;
  (b) baseline: gpt2.load_gpt2 once, then one gpt2.generate(..., prefix=..., nsamples=count,
      batch_size=..., length=..., truncate=END_TOKEN) call per prompt, as a gpt-2-simple
      user writes it.
Each side is timed from loading the checkpoint to the last sample. A sample counts as a
finished title when the end marker was generated: ours reports it per sample; for the
baseline (whose truncated text no longer shows it) when truncation removed at least the
marker's tokens, i.e. the returned text is shorter than prompt + length tokens.
Prints finished titles/s of both and the ratio a/b.

Then the generate stage itself on one job of --pool-count samples per prompt (guided and
unguided passes as the config has them, >= 1,000 samples by default), three ways in one run:
  (p1) the in-process path (generate.workers 1), TensorFlow on --threads threads;
  (p2) a pool of one Ray actor with --threads threads (the pool's own overhead);
  (p3) generate.workers --threads Ray actors, one thread each.
Each is timed from the call to the finished output file (Ray is started first, actors and
their model loads are inside); prints finished titles/s, the ratios, and whether the three
outputs are byte-identical.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipeline.config import load_config  # noqa: E402
from pipeline.core.format import END_TOKEN  # noqa: E402
from pipeline.generate import generate, plan_job  # noqa: E402
from pipeline.generate.jobfile import JobFile, batch_records  # noqa: E402
from pipeline.generate import GuidanceConfig  # noqa: E402
from pipeline.generate import Prompt, load_prompts  # noqa: E402
from pipeline.generate import SamplingLoop  # noqa: E402


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


def one_actor_pool(g, guidance: GuidanceConfig, seed: int, checkpoint: Path, out: Path) -> None:
    """(p2): the stage's job on a pool of one actor (not a config choice: workers 1 runs in process)."""
    from pipeline.generate.pool import Planner, sample_on_pool

    prompts = load_prompts(g)
    batches, total = plan_job(Planner(checkpoint, guidance), prompts, g, guidance, seed)
    job = JobFile(out, "bench")
    job.open()
    for _, outcome in sample_on_pool(g, guidance, checkpoint, prompts, batches):
        job.append(outcome.records)
    job.finish(total)


def pool_comparison(cfg, prompts: list[Prompt], threads: int, rounds: int = 1) -> None:
    """(p1), (p2), (p3) on the job of `prompts`: finished titles/s, ratios, byte comparison.

    rounds: run the three that many times, in reverse order every other round, and compare each
    one's best (on a shared machine the best is the run least slowed by others' work)."""
    from pipeline.core.actor_pool import start_ray

    checkpoint, seed = cfg.paths.checkpoint, cfg.seed
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        prompts_file = tmp / "prompts.yaml"  # written as JSON, which is YAML
        prompts_file.write_text(json.dumps({"prompts": [{"category": p.category, "keywords": list(p.keywords),
                                                         "count": p.count} for p in prompts]}))
        base = dataclasses.replace(cfg.generate, prompts_file=str(prompts_file))
        start_ray(threads, None, section="generate")
        runs = {"(p1) in-process": dataclasses.replace(base, workers=1, threads=threads),
                "(p2) 1 actor": dataclasses.replace(base, workers=1, threads=threads),
                f"(p3) {threads} actors": dataclasses.replace(base, workers=threads, threads=1)}
        rates: dict[str, float] = {}
        for name, g in [item for r in range(rounds) for item in list(runs.items())[:: -1 if r % 2 else 1]]:
            out = tmp / f"{name.split()[0]}.jsonl"
            start, busy = time.perf_counter(), ""
            if name.startswith("(p2)"):
                one_actor_pool(g, cfg.guidance, seed, checkpoint, out)
            else:
                stats = generate(g, cfg.guidance, seed, checkpoint, out, tmp / "stats.json")
                sampling = sum(p["sampling_seconds"] for p in stats["passes"].values())
                busy = f"; sampling {sampling:.1f} s summed over {g.workers} sampler(s)"
            seconds = time.perf_counter() - start
            records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
            finished = sum(r["finished"] for r in records)
            rates[name] = max(rates.get(name, 0.0), finished / seconds)
            print(f"{name:>20}: {len(records)} samples, {finished} finished in {seconds:.2f} s "
                  f"-> {finished / seconds:.2f} finished titles/s (load average {os.getloadavg()[0]:.1f}{busy})")
        names = list(runs)
        outputs = [(tmp / f"{n.split()[0]}.jsonl").read_bytes() for n in names]
        print(f"ratio {names[2]} / {names[0]}: {rates[names[2]] / rates[names[0]]:.2f}x; "
              f"{names[2]} / {names[1]}: {rates[names[2]] / rates[names[1]]:.2f}x; "
              f"{names[1]} / {names[0]}: {rates[names[1]] / rates[names[0]]:.2f}x")
        print(f"outputs byte-identical: {all(o == outputs[0] for o in outputs)}; "
              f"load average {os.getloadavg()[0]:.1f}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--prompts", type=int, default=0, help="use the first N prompts (0: all)")
    parser.add_argument("--count", type=int, default=16, help="samples per prompt")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's generate.batch_size")
    parser.add_argument("--length", type=int, default=None, help="default: the config's generate.length")
    parser.add_argument("--pool-count", type=int, default=20, help="samples per prompt in the workers comparison")
    parser.add_argument("--threads", type=int, default=2, help="cores to use in the workers comparison")
    parser.add_argument("--only", choices=["baseline", "workers"], help="run only one comparison")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of the workers comparison (best of each)")
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
          f"max length {g.length}, temperature {g.temperature}, top_k {g.top_k}, top_p {g.top_p}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if args.only != "workers":
        baseline_comparison(checkpoint, prompts, g, seed)
    if args.only != "baseline":
        pool_prompts = [dataclasses.replace(p, count=args.pool_count) for p in prompts]
        print(f"generate stage, {len(pool_prompts)} prompts x {args.pool_count} samples "
              f"(guidance compare: {cfg.guidance.compare and cfg.guidance.strength > 0}):")
        pool_comparison(dataclasses.replace(cfg, generate=g), pool_prompts, args.threads, args.rounds)
    return 0


def baseline_comparison(checkpoint: Path, prompts: list[Prompt], g, seed: int) -> None:
    """(a) ours vs (b) the gpt2.generate loop: finished titles/s and the ratio."""
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


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
