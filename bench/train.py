"""Training speed: tokens/s of one 1024-token training step, each train option against fp32, in one run.

    make bench-train      (python -m bench.train [--shapes default,124M]
                           [--options finetune,bf16,xla,xla+bf16] [--steps 3] [--threads 0])

The step is the one `train` runs (pipeline.train.loop's step on pipeline.core.transformer: the
language-model loss over a batch of one 1024-token window, Adam) in a session made by
pipeline.train.model.session_config with the option's precision and XLA settings. `finetune` is
the step this project ran before it had its own: gpt-2-simple's model function, fp32. Each measure
is a fresh subprocess (so peak RSS and TF_XLA_FLAGS are its own): random weights and token
windows from seed 0, one warm-up step (graph compile), then --steps timed steps. The options run
in the order a b b a (fp32, options..., options reversed, fp32) because this host's speed drifts
by a quarter over minutes; each ratio is the mean of an option's two runs over the mean of
fp32's. The loss after the timed steps must stay within LOSS_TOLERANCE of fp32's (same weights,
same windows), or the option fails. Shapes: `default` is configs/default.yaml's model (256 wide,
2 heads, 4 layers, its 4,000-token vocabulary), `124M` and `355M` GPT-2's released shapes. Prints ratios,
peak RSS and the load average; writes bench/out/train.json.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from pipeline.core.gpt2 import WINDOW

OUT = Path("bench/out/train.json")
SHAPES = {"default": {"n_vocab": 4001, "n_ctx": 1024, "n_embd": 256, "n_head": 2, "n_layer": 4},
          "124M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 768, "n_head": 12, "n_layer": 12},
          "355M": {"n_vocab": 50257, "n_ctx": 1024, "n_embd": 1024, "n_head": 16, "n_layer": 24}}
OPTIONS = {"fp32": {}, "bf16": {"bf16": True}, "xla": {"xla": True}, "xla+bf16": {"xla": True, "bf16": True},
           "finetune": {"finetune": True}}
# Relative difference of the loss after the timed steps from fp32's that an option may have.
LOSS_TOLERANCE = 0.02


def measure(shape: str, option: str, steps: int, threads: int) -> dict:
    """One measure, in this process: tokens/s over `steps` timed steps, the loss after them, peak RSS."""
    settings = OPTIONS[option]
    if settings.get("xla"):
        from pipeline.train.model import xla_environment

        xla_environment()
    import numpy as np

    from pipeline.core.device import load_tensorflow
    from pipeline.train import TrainConfig
    from pipeline.train.loop import Windows, _Step
    from pipeline.train.model import session_config

    tf = load_tensorflow("bench-train", announce=False)
    from gpt_2_simple.src import model as gpt_model

    hparams = gpt_model.default_hparams()
    hparams.override_from_dict(SHAPES[shape])
    tokens = np.random.default_rng(0).integers(0, hparams.n_vocab, size=WINDOW * 64, dtype=np.int32)
    t = TrainConfig(precision="bf16" if settings.get("bf16") else "fp32", xla=settings.get("xla", False),
                    threads=threads)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(0)
        if settings.get("finetune"):  # the step gpt-2-simple's finetune ran: its model function, fp32
            step = _FinetuneStep(tf, hparams)
        else:
            step = _Step(tf, t, hparams, ())
        config = session_config(tf, threads, layout_optimizer=False, xla=t.xla)
        with tf.compat.v1.Session(graph=graph, config=config) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            windows = Windows(tokens, 0)
            first = windows.batch(1)
            step.run(sess, Windows(tokens, 1))  # compiles the graph
            start = time.perf_counter()
            for _ in range(steps):
                step.run(sess, windows)
            seconds = time.perf_counter() - start
            after = float(sess.run(step.loss, {step.x: first}))
    return {"shape": shape, "option": option, "tokens_per_s": round(steps * WINDOW / seconds, 1),
            "loss_after": round(after, 5), "peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
                                                                   / 2**20, 2)}


class _FinetuneStep:
    """gpt-2-simple's finetune step (its model function, Adam), the baseline this project replaced."""

    def __init__(self, tf, hparams):
        from gpt_2_simple.src import model as gpt_model

        self.x = tf.compat.v1.placeholder(tf.int32, [1, None])
        logits = gpt_model.model(hparams=hparams, X=self.x)["logits"]
        self.loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=self.x[:, 1:],
                                                                                  logits=logits[:, :-1]))
        self.apply = tf.compat.v1.train.AdamOptimizer(learning_rate=1e-4).minimize(self.loss)

    def run(self, sess, windows) -> float:
        return float(sess.run((self.apply, self.loss), {self.x: windows.batch(1)})[1])


def run_one(shape: str, option: str, steps: int, threads: int) -> dict:
    """measure() in a fresh subprocess; its result."""
    done = subprocess.run([sys.executable, "-m", "bench.train", "--measure", shape, option, "--steps", str(steps),
                           "--threads", str(threads)], capture_output=True, text=True,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        raise SystemExit(f"bench-train: {shape} {option} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", default="default,124M")
    parser.add_argument("--options", default="finetune,bf16,xla,xla+bf16")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--measure", nargs=2, metavar=("SHAPE", "OPTION"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(*args.measure, args.steps, args.threads)))
        return 0
    options = [o for o in args.options.split(",") if o]
    unknown = [x for x in args.shapes.split(",") if x not in SHAPES] + [o for o in options if o not in OPTIONS]
    if unknown:
        print(f"bench-train: unknown shape or option {unknown[0]!r}", file=sys.stderr)
        return 2
    results, ok = {}, True
    for shape in args.shapes.split(","):
        order = ["fp32", *options, *reversed(options), "fp32"]
        runs: dict[str, list[dict]] = {}
        for option in order:
            runs.setdefault(option, []).append(run_one(shape, option, args.steps, args.threads))
        speed = {o: sum(r["tokens_per_s"] for r in rs) / len(rs) for o, rs in runs.items()}
        loss = {o: sum(r["loss_after"] for r in rs) / len(rs) for o, rs in runs.items()}
        print(f"{shape}: fp32 {speed['fp32']:.1f} tokens/s, loss after {args.steps} steps {loss['fp32']:.4f}, "
              f"peak RSS {max(r['peak_rss_gib'] for r in runs['fp32']):.2f} GiB")
        rows = {}
        for option in options:
            ratio = speed[option] / speed["fp32"]
            drift = abs(loss[option] - loss["fp32"]) / loss["fp32"]
            rss = max(r["peak_rss_gib"] for r in runs[option])
            ok &= drift <= LOSS_TOLERANCE
            rows[option] = {"tokens_per_s": round(speed[option], 1), "ratio": round(ratio, 2),
                            "loss_drift": round(drift, 4), "peak_rss_gib": rss}
            print(f"  {option:<9} {speed[option]:8.1f} tokens/s  {ratio:5.2f}x fp32  loss drift {100 * drift:5.2f} % "
                  f"({'ok' if drift <= LOSS_TOLERANCE else 'OVER'} {100 * LOSS_TOLERANCE:g} %)  peak RSS {rss:.2f} GiB")
        best = max((o for o in rows if o != "finetune"), key=lambda o: rows[o]["ratio"], default=None)
        if best:
            old = f", {rows[best]['tokens_per_s'] / rows['finetune']['tokens_per_s']:.2f}x finetune's fp32 step" \
                if "finetune" in rows else ""
            print(f"  best: {best} {rows[best]['ratio']}x our fp32{old} (goal >= 1.7x)")
        results[shape] = {"runs": runs, "options": rows}
    print(f"load average {os.getloadavg()[0]:.2f}; {'ok' if ok else 'FAILED: a loss left the tolerance'}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"steps": args.steps, "threads": args.threads, "results": results}, indent=2) + "\n",
                   encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
