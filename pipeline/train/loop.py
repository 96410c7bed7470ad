"""The training session: our own step on pipeline.core.transformer, in place of gpt-2-simple's finetune.

It keeps what finetune's users rely on: the checkpoint folder's layout (`model-N.*`, `checkpoint`,
`counter`, and the model's hparams.json / encoder.json / vocab.bpe copied in), random 1024-token
windows drawn as finetune's sampler draws them (the same windows for the same seed), Adam or SGD,
gradient accumulation (summed, as finetune does), only_train_transformer_layers, layers spread
over GPUs (multi_gpu), samples every `sample_every` steps into `samples/<run_name>/`, a save on
Ctrl-C, and finetune's running average loss. What it adds: the faster, leaner step (bfloat16 as
explicit mixed precision, attention recomputed in the backward pass), a `counter` written
atomically, and a save at an early stop.

Optimizer state (Adam's moments) is not saved, as finetune never saved it: a resumed run restarts it.
"""
from __future__ import annotations

import math
import random
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pipeline.core.format import START_TOKEN
from pipeline.core.gpt2 import WINDOW
from pipeline.core.io import write_text
from pipeline.train.log import LossLog, read_counter

if TYPE_CHECKING:
    from pipeline.core.copy_head import HeadSpec

SAMPLE_TOP_K = 40  # finetune's sample settings
COPIED = ("hparams.json", "encoder.json", "vocab.bpe")


@dataclass(frozen=True)
class Session:
    """One training session: `steps` more steps of `checkpoint_dir/run_name` from the base model
    in `base_path`, on `tokens` (the tokenised training text); copy_head: train a copy head of this
    pipeline.core.copy_head.HeadSpec with the trunk (None: none)."""

    base_path: Path
    checkpoint_dir: Path
    tokens: np.ndarray
    steps: int
    seed: int
    copy_head: HeadSpec | None = None


class Objective:
    """What a window is scored with, in the current graph: the language model's mean loss, or with
    the copy head the mixture's. `feed(batch)` gives the values for a [B, T] batch of windows."""

    def __init__(self, tf, hparams, precision: str, sections=None, devices: tuple[str, ...] = (), spec=None):
        from pipeline.core.copy_head import HeadInputs, token_logprob
        from pipeline.core.transformer import Precision

        self.x = tf.compat.v1.placeholder(tf.int32, [None, None])
        self.head = HeadInputs(tf, sections, spec) if sections is not None else None
        logp = token_logprob(tf, hparams, self.x, Precision(precision), head=self.head, recompute=True,
                             devices=devices)
        self.loss = -tf.reduce_mean(logp)

    def feed(self, batch: np.ndarray) -> dict:
        return {self.x: batch, **(self.head.feed(batch) if self.head is not None else {})}


class Windows:
    """Random WINDOW-token slices of `tokens`, drawn as gpt-2-simple's Sampler draws from one chunk
    (Python's random.randint over the start positions), from a generator of its own seeded `seed`."""

    def __init__(self, tokens: np.ndarray, seed: int):
        self.tokens, self.random = tokens, random.Random(seed)

    def batch(self, size: int) -> np.ndarray:
        starts = [self.random.randint(0, len(self.tokens) - WINDOW - 1) for _ in range(size)]
        return np.stack([self.tokens[s:s + WINDOW] for s in starts])


def learning_rate_at(t, step: int) -> float:
    """The learning rate of optimiser step `step` (from 1) under `t` (a TrainConfig): `learning_rate`,
    or with `lr_decay_steps` a cosine from it down to a tenth of it at that step, and a tenth after."""
    if not t.lr_decay_steps:
        return t.learning_rate
    done = min(1.0, (step - 1) / t.lr_decay_steps)
    return t.learning_rate * (0.1 + 0.45 * (1.0 + math.cos(math.pi * done)))


def resolve_precision(tf, t):
    """`t` (a TrainConfig) with precision "auto" made "bf16" or "fp32" for the devices `tf` trains on,
    the choice and its reason printed; any other precision as it is."""
    if t.precision != "auto":
        return t
    from dataclasses import replace

    from pipeline.core.device import native_bf16

    native, why = native_bf16(tf)
    precision = "bf16" if native else "fp32"
    print(f"train: precision auto -> {precision}: {why}", file=sys.stderr, flush=True)
    return replace(t, precision=precision)


def _devices(tf, multi_gpu: bool) -> tuple[str, ...]:
    if not multi_gpu:
        return ()
    return tuple(f"/gpu:{i}" for i in range(len(tf.config.list_physical_devices("GPU"))))


class _Step:
    """The training graph: loss, gradients and the optimiser update of `t` (a TrainConfig);
    sections, spec: pipeline.core.copy_head.Sections and HeadSpec when the copy head trains too."""

    def __init__(self, tf, t, hparams, devices, sections=None, spec=None):
        from pipeline.core.copy_head import head_variables

        self.t = t
        self.objective = Objective(tf, hparams, t.precision, sections, devices, spec)
        self.x, self.loss = self.objective.x, self.objective.loss
        # finetune's selection: every model variable, or only the transformer blocks' ones (and the head).
        self.variables = head_variables(tf)
        train_vars = ([v for v in self.variables if "/h" in v.name or v.name.startswith("copy/")]
                      if t.only_train_transformer_layers else self.variables)
        # The rate is fed each step (learning_rate_at): constant as finetune's unless a decay is set.
        self.rate = tf.compat.v1.placeholder_with_default(np.float32(t.learning_rate), [])
        opt = (tf.compat.v1.train.AdamOptimizer(learning_rate=self.rate) if t.optimizer == "adam"
               else tf.compat.v1.train.GradientDescentOptimizer(learning_rate=self.rate))
        grads = tf.gradients(self.loss, train_vars)
        if t.accumulate_gradients == 1:
            self.apply = opt.apply_gradients(list(zip(grads, train_vars)))
            return
        # Summed over the micro-batches (finetune's AccumulatingOptimizer does so); the loss is their mean.
        sums = [tf.Variable(tf.zeros(v.shape, v.dtype.base_dtype), trainable=False) for v in train_vars]
        loss_sum = tf.Variable(0.0, trainable=False)
        self.reset = tf.group(*[s.assign(tf.zeros_like(s)) for s in sums], loss_sum.assign(0.0))
        self.add = tf.group(*[s.assign_add(tf.convert_to_tensor(g)) for s, g in zip(sums, grads)],
                            loss_sum.assign_add(self.loss))
        with tf.control_dependencies([opt.apply_gradients(list(zip([s.read_value() for s in sums], train_vars)))]):
            self.apply = loss_sum.read_value() / t.accumulate_gradients

    def run(self, sess, windows: Windows, step: int) -> float:
        """Optimiser step number `step` (from 1); returns its loss."""
        t = self.t
        rate = {self.rate: learning_rate_at(t, step)}
        if t.accumulate_gradients == 1:
            _, loss = sess.run((self.apply, self.loss), {**self.objective.feed(windows.batch(t.batch_size)), **rate})
            return float(loss)
        sess.run(self.reset)
        for _ in range(t.accumulate_gradients):
            sess.run(self.add, self.objective.feed(windows.batch(t.batch_size)))
        return float(sess.run(self.apply, rate))


class _Samples:
    """finetune's progress samples: `t.sample_length` tokens (top-k 40, temperature 1) after the start
    marker, written to `samples/<run_name>/samples-<step>` beside the run folder and printed. They
    show the transformer alone: with no prompt's keywords there is nothing for a copy head to copy."""

    def __init__(self, tf, t, hparams, base_path: Path, out_dir: Path, seed: int):
        from gpt_2_simple.src import encoder

        from pipeline.core.transformer import forward

        self.t, self.out_dir = t, out_dir
        self.encoder = encoder.get_encoder(str(base_path))
        self.rng = np.random.default_rng(seed)
        self.x = tf.compat.v1.placeholder(tf.int32, [1, None])
        self.past = tf.compat.v1.placeholder(tf.float32, [1, hparams.n_layer, 2, hparams.n_head, None,
                                                          hparams.n_embd // hparams.n_head])
        out = forward(hparams, self.x, past=self.past)
        top = tf.math.top_k(out["logits"][0, -1], SAMPLE_TOP_K)
        self.fetch = (top.values, top.indices, out["present"])
        self.empty = np.zeros([1, hparams.n_layer, 2, hparams.n_head, 0, hparams.n_embd // hparams.n_head],
                              np.float32)

    def write(self, sess, step: int) -> None:
        context = self.encoder.encode(START_TOKEN)
        ids, past = list(context), self.empty
        feed = context
        for _ in range(self.t.sample_length):
            values, indices, present = sess.run(self.fetch, {self.x: [feed], self.past: past})
            p = np.exp(values - values.max())
            feed = [int(self.rng.choice(indices, p=p / p.sum()))]
            ids.append(feed[0])
            past = np.concatenate([past, present], axis=-2)
        text = self.encoder.decode(ids)
        print(f"======== SAMPLE at step {step} ========\n{text}", flush=True)
        write_text(self.out_dir / f"samples-{step}", text + "\n")


def run_session(t, s: Session, log: LossLog, validator_factory=None) -> str | None:
    """Train `s.steps` steps of run `t.run_name` (t: the TrainConfig), recording each in `log`.

    validator_factory(sess, objective) -> a pipeline.train.validation.Validator, called once the
    session exists (objective: a function that builds an `Objective` in its graph); it becomes
    `log.validate`. Returns why training stopped early (the validator's
    reason) or None. Saves every `t.save_every` steps, at the end, at an early stop and on Ctrl-C
    (then re-raised).
    """
    from pipeline.core.device import load_tensorflow
    from pipeline.core.gpt2 import load_hparams
    from pipeline.train.model import session_config

    tf = load_tensorflow("train")
    t = resolve_precision(tf, t)
    ckpt_path = s.checkpoint_dir / t.run_name
    ckpt_path.mkdir(parents=True, exist_ok=True)
    for name in COPIED:  # the checkpoint folder is a model folder of its own, as finetune leaves it
        shutil.copyfile(s.base_path / name, ckpt_path / name)
    hparams = load_hparams(s.base_path)
    sections = None
    if s.copy_head:
        from gpt_2_simple.src import encoder

        from pipeline.core.copy_head import Sections

        sections = Sections(encoder.get_encoder(str(s.base_path)), hparams.n_vocab)
        s.copy_head.write(ckpt_path)
    done_before = read_counter(ckpt_path) if t.restore_from == "latest" else 0
    # Offset by the steps already done so a resumed run does not replay the same windows.
    windows = Windows(s.tokens, s.seed + done_before)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(s.seed + done_before)
        devices = _devices(tf, t.multi_gpu)
        step = _Step(tf, t, hparams, devices, sections, s.copy_head)
        samples = (_Samples(tf, t, hparams, s.base_path, s.checkpoint_dir / "samples" / t.run_name, s.seed + done_before)
                   if t.sample_every else None)
        saver = tf.compat.v1.train.Saver(var_list=step.variables, max_to_keep=t.max_checkpoints)
        sess = tf.compat.v1.Session(config=session_config(tf, t.threads, layout_optimizer=False, xla=t.xla))
        with sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            restore = (tf.train.latest_checkpoint(str(ckpt_path)) if t.restore_from == "latest" else None) \
                or tf.train.latest_checkpoint(str(s.base_path))
            print(f"Loading checkpoint {restore}", file=sys.stderr)
            # The trunk must be there; a base model has no copy head, which then starts from its initial values.
            saved = {name for name, _ in tf.train.list_variables(restore)}
            restored = [v for v in step.variables if v.name.startswith("model/") or v.name.split(":")[0] in saved]
            tf.compat.v1.train.Saver(var_list=restored).restore(sess, restore)
            if validator_factory is not None:
                log.validate = validator_factory(
                    sess, lambda: Objective(tf, hparams, t.precision, sections, devices, s.copy_head))

            def save(n: int) -> None:
                saver.save(sess, str(ckpt_path / "model"), global_step=n)
                write_text(ckpt_path / "counter", f"{n}\n")

            done, avg, started = done_before, (0.0, 0.0), time.time()
            last = done_before + s.steps
            try:
                for n in range(done_before + 1, last + 1):
                    loss = step.run(sess, windows, n)
                    avg = (avg[0] * 0.99 + loss, avg[1] * 0.99 + 1.0)
                    done = n
                    log.record(n, round(time.time() - started, 3), round(loss, 4), round(avg[0] / avg[1], 4))
                    stop = getattr(log.validate, "stop_reason", lambda: None)()
                    if stop:
                        save(n)
                        return stop
                    if t.save_every and n % t.save_every == 0 and n < last:
                        save(n)
                    if samples is not None and n % t.sample_every == 0:
                        samples.write(sess, n)
            except KeyboardInterrupt:
                print(f"train: interrupted; saving step {done}", file=sys.stderr)
                if done > done_before:
                    save(done)
                raise
            save(done)
    return None
