"""GPT-2's forward graph in our own code, for training: gpt-2-simple's variable names, shapes and
initialisers (a checkpoint of either loads in the other), built for speed and memory.

    out = forward(hparams, tokens, Precision("bf16"), recompute=True)   # in a tf.compat.v1 graph
    out["logits"], out["hidden"]

Against gpt-2-simple's model function (gpt_2_simple/src/model.py), the same maths, computed
differently where it costs:

* attention scales q before the q.k product (a [T, d] multiply, not a [T, T] one), masks with
  one additive bias instead of multiply-and-subtract, and uses the fused softmax kernel; the
  [T, T] tensors kept for the backward pass go from five a layer to one;
* `recompute`: the attention's backward pass recomputes the probabilities from q and k instead of
  keeping them (no [T, T] tensor kept at all: 48 MiB a layer at GPT-2 124M's shape);
* `Precision("bf16")`: matrix products in bfloat16, weights cast once a step; layer norms, GELU,
  the residual stream and the loss stay float32 (much as PyTorch's autocast does), instead of
  TensorFlow's graph-rewriting pass, which casts around every op.

`forward(..., targets_only=True)` leaves out the last position's logits (it has no target), as
training and the scorers ask; pipeline.core.copy_head.token_logprob turns them into log-probabilities.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import tensorflow as tf

NEG_INF = -1e9  # the additive mask; finite so a fully masked row cannot produce NaN
# Query blocks of self-attention: block i needs only the keys up to its end, so the [T, T] products
# shrink to (CHUNKS + 1) / (2 * CHUNKS) of their size (0.625 at 4).
CHUNKS = 4


@dataclass(frozen=True)
class Precision:
    """Which dtype the matrix products run in: "fp32" or "bf16" (float32 variables either way)."""

    name: str = "fp32"

    @property
    def compute(self):
        return tf.bfloat16 if self.name == "bf16" else tf.float32


def _variable(name, shape, stddev=None, value=None):
    init = (tf.compat.v1.random_normal_initializer(stddev=stddev) if stddev is not None
            else tf.compat.v1.constant_initializer(value))
    return tf.compat.v1.get_variable(name, shape, initializer=init)


def _norm(x, scope, dtype, epsilon=1e-5):
    """Layer norm in float32 of the float32 `x`; returned in `dtype`."""
    with tf.compat.v1.variable_scope(scope):
        n = x.shape[-1]
        g, b = _variable("g", [n], value=1.0), _variable("b", [n], value=0.0)
        mean, var = tf.nn.moments(x, axes=[-1], keepdims=True)
        return tf.cast((x - mean) * tf.math.rsqrt(var + epsilon) * g + b, dtype)


def _dense(x, scope, nf, dtype):
    """x [rows, nx] (in `dtype`) times gpt-2-simple's conv1d weight [1, nx, nf], plus bias."""
    with tf.compat.v1.variable_scope(scope):
        nx = x.shape[-1]
        w = _variable("w", [1, nx, nf], stddev=0.02)
        b = _variable("b", [nf], value=0.0)
        return tf.matmul(x, tf.cast(tf.reshape(w, [nx, nf]), dtype)) + tf.cast(b, dtype)


_GELU_C = math.sqrt(2.0 / math.pi)


@tf.custom_gradient
def _gelu(x):
    """GPT-2's tanh approximation of GELU (as gpt-2-simple's and transformers' gelu_new); its gradient
    is computed from x alone, so the backward pass keeps one [T, 4 * n_embd] tensor, not six."""
    t = tf.tanh(_GELU_C * (x + 0.044715 * x * x * x))

    def grad(dy):
        x2 = x * x
        th = tf.tanh(_GELU_C * (x + 0.044715 * x2 * x))
        return dy * (0.5 * (1.0 + th) + 0.5 * x * (1.0 - th * th) * _GELU_C * (1.0 + 3 * 0.044715 * x2))

    return 0.5 * x * (1.0 + t), grad


def _causal_bias(nd, ns, dtype):
    """[nd, ns]: 0 where a query (the last nd of ns positions) may see a key, NEG_INF elsewhere."""
    i = tf.range(nd)[:, None]
    j = tf.range(ns)[None, :]
    return tf.cast(tf.where(i >= j - ns + nd, 0.0, NEG_INF), dtype)


def _probs(q, k, bias):
    return tf.nn.softmax(tf.matmul(q, k, transpose_b=True) + bias)


def _attend(q, k, v, bias):
    """softmax(q.k + bias).v for [batch, heads, T, d] (q already scaled): attention with a cache."""
    return tf.matmul(_probs(q, k, bias), v)


def _chunks(q, k, v, bias):
    """Self-attention's work in CHUNKS query blocks, each with only the keys up to its end (the ones
    causality lets it see): a block of queries i gives (its slice, q, k, v, bias of the block)."""
    t = tf.shape(q)[2]
    bounds = [t * i // CHUNKS for i in range(CHUNKS + 1)]
    for lo, hi in zip(bounds, bounds[1:]):
        yield (lo, hi), q[:, :, lo:hi], k[:, :, :hi], v[:, :, :hi], bias[lo:hi, :hi]


def _self_attend(q, k, v, bias):
    """`_attend` for self-attention without a cache (bias causal), skipping the keys after each block."""
    return tf.concat([tf.matmul(_probs(qi, ki, bi), vi) for _, qi, ki, vi, bi in _chunks(q, k, v, bias)], axis=2)


@tf.custom_gradient
def _self_attend_recomputed(q, k, v, bias):
    """`_self_attend` whose backward pass recomputes the probabilities instead of keeping them."""

    def grad(da):
        t = tf.shape(q)[2]
        dq, dk, dv = [], 0, 0
        for (lo, hi), qi, ki, vi, bi in _chunks(q, k, v, bias):
            p, dai = _probs(qi, ki, bi), da[:, :, lo:hi]
            dp = tf.matmul(dai, vi, transpose_b=True)
            ds = p * (dp - tf.reduce_sum(dp * p, axis=-1, keepdims=True))
            dq.append(tf.matmul(ds, ki))
            pad = [[0, 0], [0, 0], [0, t - hi], [0, 0]]
            dk += tf.pad(tf.matmul(ds, qi, transpose_a=True), pad)
            dv += tf.pad(tf.matmul(p, dai, transpose_a=True), pad)
        return tf.concat(dq, axis=2), dk, dv, tf.zeros_like(bias)

    return _self_attend(q, k, v, bias), grad


def forward(hparams, tokens, precision: Precision = Precision(), *, past=None, cache=None, recompute: bool = False,
            targets_only: bool = False, devices: tuple[str, ...] = (), scope: str = "model",
            reuse=tf.compat.v1.AUTO_REUSE) -> dict:
    """GPT-2 on `tokens` [batch, seq] int32; returns {"logits", "present", "cache", "hidden"}.

    past: gpt-2-simple's key/value cache [batch, n_layer, 2, heads, past_seq, d] or None; present is
    this call's keys and values in that layout. cache: the same keys and values as a tuple of
    (keys, values) per layer, each [batch, heads, past_seq, d] in the compute dtype, or None; the
    returned "cache" is that tuple with this call's positions appended. A sampling loop keeps the
    cache, not `past`: it grows by one concatenation per layer a step, where `past` would be
    unstacked, concatenated and stacked again. targets_only: logits for all positions but the last
    (the ones training scores). Logits are float32; `precision` sets what the products run in.
    devices: place the blocks in consecutive groups on these devices (gpt-2-simple's multi_gpu split).
    """
    dtype = precision.compute
    n_embd, n_head = hparams.n_embd, hparams.n_head
    d = n_embd // n_head
    with tf.compat.v1.variable_scope(scope, reuse=reuse):
        batch, seq = tf.shape(tokens)[0], tf.shape(tokens)[1]
        # Read once and gathered as tensors: a gather from the variable itself would switch it to
        # copy-on-read, and every later read (the logits' product, each sampling step) would copy it.
        wpe = _variable("wpe", [hparams.n_ctx, n_embd], stddev=0.01).value()
        wte = _variable("wte", [hparams.n_vocab, n_embd], stddev=0.02).value()
        past_len = tf.shape(past)[-2] if past is not None else tf.shape(cache[0][0])[2] if cache is not None else 0
        h = tf.gather(wte, tokens) + tf.gather(wpe, past_len + tf.range(seq))[None]
        h = tf.reshape(h, [-1, n_embd])
        bias = _causal_bias(seq, past_len + seq, dtype)
        cached = past is not None or cache is not None
        attend = _attend if cached else _self_attend_recomputed if recompute else _self_attend
        pasts = ([tuple(tf.unstack(tf.cast(layer, dtype), axis=1)) for layer in tf.unstack(past, axis=1)]
                 if past is not None else cache if cache is not None else [None] * hparams.n_layer)
        presents, caches = [], []

        def heads(x):  # [batch*seq, n_embd] -> [batch, heads, seq, d]
            return tf.transpose(tf.reshape(x, [batch, seq, n_head, d]), [0, 2, 1, 3])

        per_device = max(1, hparams.n_layer // len(devices)) if devices else 0
        for layer, layer_past in enumerate(pasts):
            place = tf.device(devices[min(layer // per_device, len(devices) - 1)]) if devices else contextlib.nullcontext()
            with place, tf.compat.v1.variable_scope(f"h{layer}"):
                x = _norm(h, "ln_1", dtype)
                with tf.compat.v1.variable_scope("attn"):
                    q, k, v = tf.split(_dense(x, "c_attn", 3 * n_embd, dtype), 3, axis=1)
                    q, k, v = heads(q * tf.cast(1.0 / math.sqrt(d), dtype)), heads(k), heads(v)
                    presents.append(tf.stack([tf.cast(k, tf.float32), tf.cast(v, tf.float32)], axis=1))
                    if layer_past is not None:
                        k, v = tf.concat([layer_past[0], k], axis=-2), tf.concat([layer_past[1], v], axis=-2)
                    caches.append((k, v))
                    a = attend(q, k, v, bias)
                    a = tf.reshape(tf.transpose(a, [0, 2, 1, 3]), [-1, n_embd])
                    h = h + tf.cast(_dense(a, "c_proj", n_embd, dtype), tf.float32)
                x = _norm(h, "ln_2", dtype)
                with tf.compat.v1.variable_scope("mlp"):
                    # GELU in float32 even under bf16: TensorFlow's CPU kernels for bfloat16 element-wise
                    # ops are slower than its float32 ones (measured +3 to +8 % a step with the casts).
                    f = tf.cast(_dense(x, "c_fc", 4 * n_embd, dtype), tf.float32)
                    m = _dense(tf.cast(_gelu(f), dtype), "c_proj", n_embd, dtype)
                    h = h + tf.cast(m, tf.float32)
        x = _norm(h, "ln_f", dtype)
        hidden = tf.reshape(x, [batch, seq, n_embd])
        if targets_only:
            x = tf.reshape(hidden[:, :-1], [-1, n_embd])
        logits = tf.cast(tf.matmul(x, tf.cast(wte, dtype), transpose_b=True), tf.float32)
        logits = tf.reshape(logits, [batch, -1, hparams.n_vocab])
        return {"logits": logits, "present": tf.stack(presents, axis=1), "cache": tuple(caches), "hidden": hidden}

