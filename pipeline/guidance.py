"""Keyword-guided decoding: steer each sample toward the requested keywords it has not written yet.

A `KeywordGuidance` is the sampler's logits hook (pipeline.sampler.LogitsHook). Per sample and
keyword it keeps, in the TensorFlow while-loop, whether the keyword has been written and how far
into each of its spellings the sample is. Each step it:
  * adds `strength` to the logit of the first token of every spelling (' dog', 'dog', 'Dog') of
    every unused keyword, or, once a spelling has started, to its next token only;
  * forbids the tokens that start the end marker while a keyword is unused,
until all keywords are written or `budget` tokens have been generated. With strength 0 the
logits are left exactly as they are, so the output equals the unguided sampler's.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from pipeline.errors import ConfigError
from pipeline.format import END_TOKEN


@dataclass(frozen=True)
class GuidanceConfig:
    """The `guidance:` section. strength 0 turns guidance off."""

    strength: float = 0.0
    budget: int = 40  # generated tokens after which guidance stops and the sample may end freely
    max_keywords: int = 6  # keywords per prompt that are steered toward (the rest are ignored)
    compare: bool = True  # also generate unguided on the same prompts and seed, for the report

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ConfigError("strength: must be >= 0 (0 turns guidance off)")
        if self.budget < 1:
            raise ConfigError("budget: must be at least 1")
        if self.max_keywords < 1:
            raise ConfigError("max_keywords: must be at least 1")


def spellings(keyword: str) -> list[str]:
    """How a keyword can appear in a title: with a leading space, bare, and capitalised bare.

    Normalised keywords join words with '-' ('Big-Bird'); a title writes them with spaces.
    """
    words = keyword.replace("-", " ").strip()
    if not words:
        return []
    forms = [" " + words, words, words[:1].upper() + words[1:]]
    return list(dict.fromkeys(forms))


N_FORMS = 3


def end_start_mask(enc) -> np.ndarray:
    """[n_vocab] bool: tokens that can begin the end marker (any token containing its first character)."""
    first = END_TOKEN[0]
    mask = np.zeros(len(enc.encoder), dtype=bool)
    for token, idx in enc.encoder.items():
        text = enc.decode([idx]) if idx < len(enc.decoder) else token
        mask[idx] = first in text
    return mask


class KeywordGuidance:
    """The logits hook. enc: the model's gpt-2-simple encoder; n_vocab: logits width."""

    def __init__(self, gcfg: GuidanceConfig, enc, n_vocab: int, max_tokens: int = 8):
        self.gcfg, self.enc, self.n_vocab, self.max_tokens = gcfg, enc, n_vocab, max_tokens
        self.end_mask = end_start_mask(enc)[:n_vocab]
        self._placeholders: tuple | None = None

    # -- host side -----------------------------------------------------------------------------
    def keyword_table(self, keyword_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids [batch, max_keywords, N_FORMS, max_tokens] (-1 padded) and lengths [batch, kw, forms]."""
        shape = (len(keyword_lists), self.gcfg.max_keywords, N_FORMS)
        ids = np.full(shape + (self.max_tokens,), -1, dtype=np.int32)
        lens = np.zeros(shape, dtype=np.int32)
        for b, keywords in enumerate(keyword_lists):
            for s, keyword in enumerate(list(keywords)[: self.gcfg.max_keywords]):
                for f, form in enumerate(spellings(keyword)):
                    toks = self.enc.encode(form)[: self.max_tokens]
                    ids[b, s, f, : len(toks)] = toks
                    lens[b, s, f] = len(toks)
        return ids, lens

    def feed(self, prompts: Sequence[Any]) -> dict:
        """Feed dict for one batch; `prompts` are the rows' keyword lists."""
        ids, lens = self.keyword_table(prompts)
        kw_ids, kw_lens = self._placeholders
        return {kw_ids: ids, kw_lens: lens}

    # -- graph side ----------------------------------------------------------------------------
    def state_shapes(self) -> tuple:
        import tensorflow as tf

        return (tf.TensorShape([None, self.gcfg.max_keywords]),          # used
                tf.TensorShape([None, self.gcfg.max_keywords, N_FORMS]),  # tokens matched per spelling
                tf.TensorShape([]))                                       # tokens generated

    def initial_state(self, batch_size: Any) -> tuple:
        import tensorflow as tf

        kw_ids = tf.compat.v1.placeholder(tf.int32, [None, self.gcfg.max_keywords, N_FORMS, self.max_tokens],
                                          name="guidance_ids")
        kw_lens = tf.compat.v1.placeholder(tf.int32, [None, self.gcfg.max_keywords, N_FORMS], name="guidance_lens")
        self._placeholders = (kw_ids, kw_lens)
        used = tf.reduce_all(tf.equal(kw_lens, 0), axis=2)  # empty slots count as used
        return used, tf.zeros_like(kw_lens), tf.constant(0)

    def step(self, logits: Any, state: tuple, tokens: Any, done: Any) -> tuple[Any, tuple]:
        import tensorflow as tf

        kw_ids, kw_lens = self._placeholders
        used, pos, t = state
        last = tokens[:, -1][:, tf.newaxis, tf.newaxis]  # the token written last step
        # Advance every spelling's match by the last token (the prompt's own last token at t=0 is not a match).
        expected = tf.gather(kw_ids, tf.minimum(pos, self.max_tokens - 1)[..., tf.newaxis], batch_dims=3)[..., 0]
        continues = (pos > 0) & tf.equal(expected, last)
        starts = tf.equal(kw_ids[..., 0], last)
        pos = tf.where(continues, pos + 1, tf.where(starts, tf.ones_like(pos), tf.zeros_like(pos)))
        pos = tf.where(t > 0, pos, tf.zeros_like(pos))
        complete = (pos >= kw_lens) & (kw_lens > 0) & (pos > 0)
        used = used | tf.reduce_any(complete, axis=2)
        pos = tf.where(complete | used[..., tf.newaxis], tf.zeros_like(pos), pos)

        strength = float(self.gcfg.strength)
        if strength > 0.0:
            active = ~used & (t < self.gcfg.budget)  # [batch, kw]
            started = tf.reduce_any(pos > 0, axis=2, keepdims=True)
            target = tf.gather(kw_ids, tf.minimum(pos, self.max_tokens - 1)[..., tf.newaxis], batch_dims=3)[..., 0]
            # A started spelling pulls toward its next token only; otherwise every first token pulls.
            want = active[..., tf.newaxis] & (target >= 0) & tf.where(started, pos > 0, tf.ones_like(pos, tf.bool))
            where = tf.cast(tf.where(want), tf.int32)  # [n, 3]: batch, kw, form
            hits = tf.stack([where[:, 0], tf.gather_nd(target, where)], axis=1)
            counts = tf.scatter_nd(hits, tf.ones([tf.shape(hits)[0]]), tf.shape(logits))
            logits = logits + strength * tf.cast(counts > 0, logits.dtype)
            holding = tf.reduce_any(active, axis=1)[:, tf.newaxis] & tf.constant(self.end_mask)[tf.newaxis, :]
            logits = tf.where(holding, tf.fill(tf.shape(logits), np.float32(-1e10)), logits)
        return logits, (used, pos, t + 1)
