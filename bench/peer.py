"""Ours against `transformers` on identical weights: logits parity, and finished titles/s of generation.

    make bench-peer        (python -m bench.peer [--config configs/default.yaml] [--samples 448] [--threads 2])

The peer runs in its own venv, .venv-peer, built by `make bench-peer` from bench/peer.lock (torch
2.14.1, transformers 5.23.0, safetensors; the registry's torch wheel is the CUDA build, about 5.6 GB
installed, 90 s to install here), never in the project's install. Its code is bench/peer_side.py.

1. Parity: the config's trained run (`make train` first) and an UNTRAINED GPT-2 124M-shape model
   (pipeline.train.released) are exported (pipeline.hf) and loaded by transformers; their fp32 logits
   on one prompt and title must be within 1e-4 of our TensorFlow model's, with the same argmax.
2. Generate: the config's prompts (unguided, --samples in all, the config's generate.batch_size,
   length, temperature and top_p), ours (pipeline.generate.SamplingLoop) against transformers'
   `generate` (KV cache, do_sample, left padding, stopping at the end marker), both on --threads
   threads, in the order a b b a; each side timed from loading the model to the last sample.
   Finished titles/s at the config's shape; at the 124M shape (untrained: no sample ever ends) one
   prompt 64 times, batch 64, 64 new tokens, tokens/s.
3. Train: tokens/s of batch-1 1024-token windows, our training step (bench.train's measure, the
   step `train` runs) against a plain PyTorch AdamW loop on transformers' GPT-2 (bench/peer_side.py
   train), fp32 against fp32 and bf16 against bf16 autocast, at the default shape and the 124M
   shape, a b b a, each measure a fresh process on --threads threads (`--no-train` skips it).
Prints the parity, finished titles/s of each side and the ratio with the load average.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from pipeline.config import load_config
from pipeline.core.format import build_prefix

PEER = Path(".venv-peer/bin/python")
SIDE = Path(__file__).with_name("peer_side.py")
TOLERANCE = 1e-4


def our_logits(model_dir: Path, ids: list[int]) -> np.ndarray:
    """Our TensorFlow model's fp32 logits for `ids` (pipeline.core.transformer, as train and generate use it)."""
    from pipeline.core.device import load_tensorflow

    tf = load_tensorflow("bench-peer", announce=False)
    from pipeline.core.transformer import forward
    from pipeline.train import load_hparams

    graph = tf.Graph()
    with graph.as_default():
        tokens = tf.compat.v1.placeholder(tf.int32, [1, None])
        logits = forward(load_hparams(model_dir), tokens)["logits"]
        with tf.compat.v1.Session(graph=graph) as sess:
            tf.compat.v1.train.Saver(var_list=tf.compat.v1.trainable_variables()).restore(
                sess, tf.train.latest_checkpoint(str(model_dir)))
            return sess.run(logits, {tokens: [ids]})[0]


def parity(name: str, model_dir: Path, hf_dir: Path, tmp: Path) -> dict:
    from gpt_2_simple.src import encoder

    ids = encoder.get_encoder(str(model_dir)).encode(build_prefix("cooking", ("garlic", "bread")) +
                                                       "How do I make garlic bread in the oven?")
    (tmp / "ids.json").write_text(json.dumps(ids))
    subprocess.run([str(PEER), str(SIDE), "logits", str(hf_dir), str(tmp / "ids.json"), str(tmp / "peer.npy")],
                   check=True, capture_output=True)
    ours, theirs = our_logits(model_dir, ids), np.load(tmp / "peer.npy")
    diff = float(np.abs(ours - theirs).max())
    same = float((ours.argmax(-1) == theirs.argmax(-1)).mean())
    ok = diff <= TOLERANCE and same == 1.0
    print(f"parity {name}: {len(ids)} tokens, max |logit difference| {diff:.2e} (tolerance {TOLERANCE:g}), "
          f"argmax equal {100 * same:.0f} % -> {'ok' if ok else 'FAILED'}")
    return {"max_abs_diff": diff, "argmax_equal": same, "ok": ok}


def ours_generate(checkpoint: Path, settings, length: int, batch_size: int, prompts: list, threads: int) -> dict:
    """Our sampler (unguided) over `prompts` in batches of one token length; samples, finished titles,
    new tokens (rows x loop steps) and seconds from loading the model to the last sample."""
    from pipeline.generate import SamplingLoop

    start = time.perf_counter()
    finished = tokens = 0
    with SamplingLoop(checkpoint, settings, length, None, threads=threads) as loop:
        by_length: dict[int, list] = {}
        for p in prompts:
            by_length.setdefault(loop.prompt_tokens(p), []).append(p)
        seed = 0
        for group in by_length.values():
            for at in range(0, len(group), batch_size):
                batch = group[at: at + batch_size]
                draws, steps = loop.draw(batch, seed=seed)
                finished += sum(d.finished for d in draws)
                tokens += steps * len(batch)
                seed += 1
    return {"samples": len(prompts), "finished": finished, "tokens": tokens, "seconds": time.perf_counter() - start}


def compare(name: str, hf_dir: Path, job: dict, ours, tmp: Path, unit: str) -> dict:
    """ours() against transformers on `job`, in the order a b b a; the ratio of `unit` ('finished' or 'tokens') per s."""
    (tmp / "job.json").write_text(json.dumps(job))
    runs: dict[str, list[dict]] = {"ours": [], "transformers": []}
    for side in ("ours", "transformers", "transformers", "ours"):
        if side == "ours":
            runs[side].append(ours())
        else:
            done = subprocess.run([str(PEER), str(SIDE), "generate", str(hf_dir), str(tmp / "job.json")],
                                  check=True, capture_output=True, text=True)
            runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = runs[side][-1]
        print(f"  {name} {side:<13} {r[unit] / r['seconds']:8.2f} {unit}/s ({r['finished']}/{r['samples']} finished, "
              f"{r['tokens']} tokens, {r['seconds']:.1f} s)")
    rate = {s: sum(r[unit] for r in rs) / sum(r["seconds"] for r in rs) for s, rs in runs.items()}
    return {"runs": runs, "ours": round(rate["ours"], 2), "transformers": round(rate["transformers"], 2),
            "ratio": round(rate["ours"] / rate["transformers"], 2)}


def compare_train(shape: str, precision: str, steps: int, threads: int) -> dict:
    """Our training step against PyTorch's at `shape` in `precision`, a b b a; tokens/s and the ratio."""
    from bench.train import SHAPES, run_one

    runs: dict[str, list[dict]] = {"ours": [], "pytorch": []}
    for side in ("ours", "pytorch", "pytorch", "ours"):
        if side == "ours":
            runs[side].append(run_one(shape, precision, steps, threads))
        else:
            done = subprocess.run([str(PEER), str(SIDE), "train", json.dumps(SHAPES[shape]), precision, str(steps),
                                   str(threads)], check=True, capture_output=True, text=True)
            runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
    rate = {s: sum(r["tokens_per_s"] for r in rs) / len(rs) for s, rs in runs.items()}
    ratio = rate["ours"] / rate["pytorch"]
    print(f"train, {shape} shape, {precision}: ours {rate['ours']:.1f} vs PyTorch {rate['pytorch']:.1f} tokens/s: "
          f"{ratio:.2f}x (goal >= 1.0x); peak RSS ours {max(r['peak_rss_gib'] for r in runs['ours']):.2f} GiB, "
          f"PyTorch {max(r['peak_rss_gib'] for r in runs['pytorch']):.2f} GiB; load average {os.getloadavg()[0]:.2f}")
    return {"runs": runs, "ours": round(rate["ours"], 1), "pytorch": round(rate["pytorch"], 1),
            "ratio": round(ratio, 2)}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/default.yaml")
    parser.add_argument("--samples", type=int, default=448)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-124m", action="store_true", help="skip the 124M-shape parity (2 GB of files)")
    parser.add_argument("--no-train", action="store_true", help="skip the training comparison")
    parser.add_argument("--train-only", action="store_true", help="only the training comparison")
    parser.add_argument("--train-steps", type=int, default=3)
    parser.add_argument("overrides", nargs="*", help="section.key=value")
    args = parser.parse_args(argv)
    if not PEER.is_file():
        print("bench-peer: no .venv-peer (run `make bench-peer`, which builds it from bench/peer.lock)", file=sys.stderr)
        return 2
    results = {}
    if not args.no_train:
        for shape in ("default",) + (() if args.no_124m else ("124M",)):
            for precision in ("fp32", "bf16"):
                results[f"train_{shape}_{precision}"] = compare_train(shape, precision, args.train_steps, args.threads)
    if args.train_only:
        return _write(results)
    cfg = load_config(args.config, args.overrides)
    if not cfg.paths.train_done.is_file():
        print(f"bench-peer: {args.config} is not trained (run `make encode train CONFIG={args.config}`)", file=sys.stderr)
        return 2
    from pipeline.generate import load_prompts
    from pipeline.hf import export_hf

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run_hf = tmp / "run-hf"
        export_hf(cfg.paths.checkpoint, run_hf)
        results["parity_default"] = parity(f"{cfg.name} run", cfg.paths.checkpoint, run_hf, tmp)
        if not args.no_124m:
            from pipeline.train.released import write_untrained

            model = write_untrained("124M", tmp / "models" / "124M", 0)
            export_hf(model, tmp / "124M-hf")
            results["parity_124M"] = parity("124M shape (untrained)", model, tmp / "124M-hf", tmp)
        base = [p for p in load_prompts(cfg.generate)]
        prompts = [base[i % len(base)] for i in range(args.samples)]
        g = cfg.generate
        job = {"prompts": [p.prefix for p in prompts], "batch_size": g.batch_size, "length": g.length,
               "temperature": g.temperature, "top_p": g.top_p, "threads": args.threads, "seed": 0}
        results["generate_default"] = compare(
            cfg.name, run_hf, job, lambda: ours_generate(cfg.paths.checkpoint, g.sampling, g.length, g.batch_size,
                                                         prompts, args.threads), tmp, "finished")
        r = results["generate_default"]
        print(f"generate, {cfg.name} shape, batch {g.batch_size}: ours {r['ours']:.2f} vs transformers "
              f"{r['transformers']:.2f} finished titles/s: {r['ratio']:.2f}x (goal >= 1.2x); "
              f"load average {os.getloadavg()[0]:.2f}")
        if not args.no_124m:
            # An untrained model never writes the end marker: every row runs the full 64 tokens, so compare tokens/s.
            big = [prompts[0]] * 64
            job = {**job, "prompts": [p.prefix for p in big], "batch_size": 64, "length": 64}
            results["generate_124M"] = compare(
                "124M", tmp / "124M-hf", job, lambda: ours_generate(model, g.sampling, 64, 64, big, args.threads),
                tmp, "tokens")
            r = results["generate_124M"]
            print(f"generate, 124M shape (untrained), batch 64, 64 new tokens: ours {r['ours']:.1f} vs transformers "
                  f"{r['transformers']:.1f} tokens/s: {r['ratio']:.2f}x (goal >= 1.5x); "
                  f"load average {os.getloadavg()[0]:.2f}")
    return _write(results)


def _write(results: dict) -> int:
    """bench/out/peer.json; the exit status (1 when a parity check failed)."""
    out = Path("bench/out/peer.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0 if all(v["ok"] for k, v in results.items() if k.startswith("parity")) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
