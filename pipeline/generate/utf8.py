"""Whole characters: the sampler never leaves a multi-byte UTF-8 character half written.

GPT-2's byte-level BPE may split one character's bytes over several tokens (a rare character
is spelled byte by byte). Nothing in plain sampling makes the model finish a character it has
begun, and the decoder turns a broken one into U+FFFD. So while the text ends inside an
incomplete sequence, only tokens that go on with exactly the continuation bytes still owed may
follow (`complete_characters`). The rule acts only after a partial character was written: text
made of whole characters is sampled exactly as before. See docs/decisions.md, "Keyword guidance".
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.core.gpt2 import token_bytes

# A character has at most three continuation bytes, each token at least one byte: the last
# LOOK_BACK tokens hold the start of any character still incomplete.
LOOK_BACK = 3


def _announced(byte: int) -> int:
    """Continuation bytes a UTF-8 lead byte announces (0 for ASCII and for bytes that lead nothing)."""
    if 0xC2 <= byte <= 0xDF:
        return 1
    if 0xE0 <= byte <= 0xEF:
        return 2
    if 0xF0 <= byte <= 0xF4:
        return 3
    return 0


def _continues(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


def byte_tables(enc, n_vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three [n_vocab] int32 tables over the model's tokens, from their bytes (`enc.byte_decoder`).

    lead: how many continuation bytes the token begins with; size: its length in bytes; owe: the
    continuation bytes still missing after it, counted from its last other byte, or -1 when it is
    continuation bytes only (what it leaves owed then depends on the text before it).
    """
    lead, size, owe = np.zeros(n_vocab, np.int32), np.ones(n_vocab, np.int32), np.zeros(n_vocab, np.int32)
    for idx, raw in enumerate(token_bytes(enc, n_vocab)):
        if raw is None:
            continue  # not a byte-level spelling: treated as one whole ASCII byte
        first = next((i for i, b in enumerate(raw) if not _continues(b)), len(raw))
        last = max((i for i, b in enumerate(raw) if not _continues(b)), default=-1)
        lead[idx], size[idx] = first, max(len(raw), 1)
        owe[idx] = -1 if last < 0 else max(_announced(raw[last]) - (len(raw) - 1 - last), 0)
    return lead, size, owe


def owed(tf, tokens: Any, size: Any, owe: Any, pad: int) -> Any:
    """[batch] int: continuation bytes the text `tokens` [batch, time] still owes its last character."""
    batch = tf.shape(tokens)[0]
    back = tf.concat([tf.fill([batch, LOOK_BACK], pad), tokens[:, -LOOK_BACK:]], axis=1)
    need = tf.zeros([batch], tf.int32)
    for j in range(LOOK_BACK, 0, -1):
        tok = back[:, -j]
        left = tf.gather(owe, tok)
        need = tf.where(left >= 0, left, tf.maximum(need - tf.gather(size, tok), 0))
    return need


def complete_characters(tf, logits: Any, tokens: Any, tables: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    """`logits` [batch, n_vocab] where, in rows whose text ends inside a character, only tokens that
    begin with the continuation bytes it still owes may follow: exactly that many and then another
    byte, or continuation bytes only, fewer than owed. A byte-level vocabulary holds each single
    byte as a token, so some token is always allowed."""
    lead, size, owe = tables
    pad = int(np.flatnonzero((owe == 0) & (lead == 0))[0])
    need = owed(tf, tokens, tf.constant(size), tf.constant(owe), pad)[:, tf.newaxis]
    lead, size = tf.constant(lead)[tf.newaxis, :], tf.constant(size)[tf.newaxis, :]
    allowed = tf.equal(lead, need) | (tf.equal(lead, size) & (size < need))
    return tf.where((need > 0) & ~allowed, tf.fill(tf.shape(logits), np.float32(-1e10)), logits)
