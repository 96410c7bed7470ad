"""Keyword-guided decoding: steer each sample toward the requested keywords it has not written yet.

A `KeywordGuidance` is the sampler's logits hook (pipeline.generate.sampler.LogitsHook). Per sample,
keyword and spelling (' dog', ' Dog', 'dog', 'Dog') it keeps, inside the TensorFlow while-loop,
whether the keyword has been written and how many tokens of the spelling were just generated.
Each step, while a keyword is owed and fewer than `budget` tokens were generated, it:
  * adds `strength` to the first token of the keyword's pulled spellings, where a new word starts;
  * lets a spelling under way continue only with its next token, and forbids gluing a word
    onto a finished one (a spelling begun within the budget is followed to its end past it);
  * forbids the tokens that would close the title (end marker, section marker);
and once every keyword is written adds `end_bias` to the end marker's tokens. With `shape: length`
each sample aims at a length in words drawn from its category's training titles
(pipeline.generate.title_lengths): each keyword's pull rises from nothing to `strength` over its share of
that length, and `end_bias` waits until the title is that long; `hold_end` forbids closing the
title before that share of the length (within the budget). With strength 0 the logits are
left exactly as they are, so the output equals the unguided sampler's. A keyword that another
keyword of the prompt spells ('food' beside 'Street-food') gets no pull of its own: it is written
with that one. See docs/decisions.md, "Keyword guidance", for the reasons behind each rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Sequence

import numpy as np

from pipeline.core.errors import ConfigError
from pipeline.core.format import END_TOKEN, KEYWORD_JOIN, closes_title


@dataclass(frozen=True)
class GuidanceConfig:
    """The `guidance:` section. strength 0 turns guidance off."""

    strength: float = 0.0
    budget: int = 40  # generated tokens after which guidance stops and the sample may end freely
    end_bias: float = 0.0  # added to the end marker's tokens once every keyword is written
    max_keywords: int = 6  # keywords per prompt that are steered toward (the rest are ignored)
    compare: bool = True  # also generate unguided on the same prompts and seed, for the report
    # 'length': pulls spread over, and the end held back until, a length drawn from the category's
    # training titles; 'keywords': full pull from the first word, end bias right after the last keyword.
    shape: Literal["length", "keywords"] = "length"
    # With shape 'length': the title may not close before this share of its drawn length (0: off).
    # A model that copies its keywords writes them early and would otherwise end there.
    hold_end: float = 0.0
    # With a copy head: a guided title copies a keyword phrase's later words only right after the
    # word before them. Left free, the head wrote 'question' first and guidance, which counts a
    # phrase only whole, then pulled in 'Electrical question': "the question you add Electrical question".
    phrase_order: bool = True

    @property
    def active(self) -> bool:
        """Whether sampling gets the guidance hook at all (strength 0: the plain sampler)."""
        return self.strength != 0

    def __post_init__(self) -> None:
        if self.strength < 0:
            raise ConfigError("strength: must be >= 0 (0 turns guidance off)")
        if self.budget < 1:
            raise ConfigError("budget: must be at least 1")
        if self.max_keywords < 1:
            raise ConfigError("max_keywords: must be at least 1")
        if not 0.0 <= self.hold_end <= 1.0:
            raise ConfigError(f"hold_end: must be between 0 and 1, got {self.hold_end}")


def spellings(keyword: str) -> list[str]:
    """How a keyword can appear in a title: after a space or bare (the title's first word), each
    as written and capitalised. Normalised keywords join words with '-' ('Big-Bird'); titles use spaces.
    """
    words = keyword.replace(KEYWORD_JOIN, " ").strip()
    if not words:
        return []
    upper = words[:1].upper() + words[1:]
    return [" " + words, " " + upper, words, upper]


def spelt_by_another(keywords: Sequence[str]) -> list[bool]:
    """For each keyword, whether another keyword of the same prompt holds its words, in order and
    case aside ('food' in 'Street-food'; of two equal keywords, the later one): writing the longer
    one writes it too. The encoder often extracts both; steered apart, titles said 'food Street food'."""
    split = [keyword.replace(KEYWORD_JOIN, " ").lower().split() for keyword in keywords]

    def inside(short: list[str], long: list[str]) -> bool:
        return any(long[i:i + len(short)] == short for i in range(len(long) - len(short) + 1))

    return [bool(words) and any(j != i and inside(words, other) and (other != words or j < i)
                                for j, other in enumerate(split))
            for i, words in enumerate(split)]


# With `shape: length`, a keyword still owed past its due word is pulled up to this many times `strength`.
OVERDUE_MAX = 2.0
# spellings() gives N_FORMS forms; these are the ones without a leading space.
N_FORMS = 4
BARE_FORMS = np.array([False, False, True, True])


def token_tables(enc, n_vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three [n_vocab] bool tables over the model's tokens.

    closing: tokens that would close the title for the decoder or begin what does
    (pipeline.core.format.closes_title); ending: those that can begin the end marker;
    word_cont: tokens whose text starts with a letter or digit, i.e. that glue onto the word before.
    """
    closing, ending, word_cont = (np.zeros(n_vocab, dtype=bool) for _ in range(3))
    for idx in enc.decoder:
        if idx < n_vocab:
            text = enc.decode([idx])
            ending[idx] = END_TOKEN[0] in text
            closing[idx] = closes_title(text)
            word_cont[idx] = text[:1].isalnum()
    return closing, ending, word_cont


class KeywordGuidance:
    """The logits hook (see pipeline.generate.sampler.LogitsHook).

    enc: the model's gpt-2-simple encoder; n_vocab: width of the logits. The strength is a graph input defaulting to the config's, so one graph serves guided and
    unguided batches (`feed(..., strength=0.0)`).

    A keyword counts as written when all tokens of one of its spellings were generated in a row
    and the token after them does not continue the word ('dog' then 'gy' is not 'dog'). Spellings
    without a leading space only count, and are only pulled toward, as the title's first word.
    """

    def __init__(self, gcfg: GuidanceConfig, enc, n_vocab: int, lengths: dict[str, np.ndarray] | None = None):
        self.gcfg, self.enc, self.n_vocab = gcfg, enc, n_vocab
        self.closing, self.ending, self.word_cont = token_tables(enc, n_vocab)
        # Tokens that start a new word of the title (a leading space): the graph counts words with them.
        self.new_word = np.zeros(n_vocab, dtype=bool)
        for idx in enc.decoder:
            if idx < n_vocab:
                self.new_word[idx] = enc.decode([idx])[:1] == " "
        # Training title lengths in words per category (pipeline.generate.title_lengths); none: no length targets.
        self.lengths = lengths if gcfg.shape == "length" and lengths else {}
        self._inputs: tuple | None = None

    # -- host side -----------------------------------------------------------------------------
    def keyword_table(self, keyword_lists: Sequence[Sequence[str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each row's keywords: token ids [batch, max_keywords, N_FORMS, width] (-1 padded),
        lengths [batch, kw, forms], and which spellings are pulled toward [batch, kw, forms].

        Every spelling is whole, however many tokens it takes (byte-level BPE spells a rare
        character byte by byte, and a cut spelling leaves half a character), and the table is
        one column wider than the batch's longest: past a spelling's end it expects -1.

        Only the leading-space spellings with the fewest tokens are pulled toward: a form the BPE
        splits more finely starts with a short piece (' G' of ' Gym') that begins many other
        words, and pulling it writes those instead. A keyword that another one spells already
        (spelt_by_another) gets an empty slot: it is written with that one.
        """
        shape = (len(keyword_lists), self.gcfg.max_keywords, N_FORMS)
        steered = [list(keywords)[: self.gcfg.max_keywords] for keywords in keyword_lists]
        spelled = {(b, s, f): self.enc.encode(form)
                   for b, keywords in enumerate(steered)
                   for s, (keyword, covered) in enumerate(zip(keywords, spelt_by_another(keywords)))
                   if not covered
                   for f, form in enumerate(spellings(keyword))}
        ids = np.full(shape + (max(map(len, spelled.values()), default=0) + 1,), -1, dtype=np.int32)
        lens = np.zeros(shape, dtype=np.int32)
        pull = np.zeros(shape, dtype=bool)
        for (b, s, f), toks in spelled.items():
            ids[b, s, f, : len(toks)] = toks
            lens[b, s, f] = len(toks)
        for b, keywords in enumerate(keyword_lists):
            for s in range(min(len(keywords), self.gcfg.max_keywords)):
                shortest = lens[b, s][~BARE_FORMS].min()
                pull[b, s] = ~BARE_FORMS & (lens[b, s] == shortest) & (shortest > 0)
        return ids, lens, pull

    def targets(self, categories: Sequence[str | None], seed: int) -> np.ndarray:
        """Each row's target title length in words (0: none), drawn per (seed, row) from its category's
        training titles; all zero with `shape: keywords` or when the model folder had no training text."""
        from pipeline.generate.title_lengths import draw_targets

        return draw_targets(self.lengths, list(categories), seed)

    def feed(self, keyword_lists: Sequence[Sequence[str]], strength: float | None = None,
             categories: Sequence[str | None] | None = None, seed: int = 0) -> dict:
        """Feed dict for one batch: each row's requested keywords; strength None keeps the config's;
        categories (None: unknown) and the batch seed pick each row's target length."""
        if self._inputs is None:
            raise RuntimeError("KeywordGuidance.feed before the sampler built its graph")
        kw_ids, kw_lens, kw_pull, strength_in, target_in = self._inputs
        ids, lens, pull = self.keyword_table(keyword_lists)
        cats = list(categories) if categories is not None else [None] * len(keyword_lists)
        feed = {kw_ids: ids, kw_lens: lens, kw_pull: pull, target_in: self.targets(cats, seed)}
        if strength is not None:
            feed[strength_in] = float(strength)
        return feed

    # -- graph side ----------------------------------------------------------------------------
    def state_shapes(self) -> tuple:
        import tensorflow as tf

        return (tf.TensorShape([None, self.gcfg.max_keywords]),          # keyword written
                tf.TensorShape([None, self.gcfg.max_keywords, N_FORMS]),  # tokens matched per spelling
                tf.TensorShape([]),                                       # tokens generated
                tf.TensorShape([None]),                                   # title words begun
                tf.TensorShape([None]))                                   # a closing token written

    def initial_state(self, batch_size: Any) -> tuple:
        import tensorflow as tf

        kw_ids = tf.compat.v1.placeholder(tf.int32, [None, self.gcfg.max_keywords, N_FORMS, None],
                                          name="guidance_ids")
        kw_lens = tf.compat.v1.placeholder(tf.int32, [None, self.gcfg.max_keywords, N_FORMS], name="guidance_lens")
        kw_pull = tf.compat.v1.placeholder(tf.bool, [None, self.gcfg.max_keywords, N_FORMS], name="guidance_pull")
        strength = tf.compat.v1.placeholder_with_default(np.float32(self.gcfg.strength), [], name="guidance_strength")
        target = tf.compat.v1.placeholder(tf.int32, [None], name="guidance_target")
        self._inputs = (kw_ids, kw_lens, kw_pull, strength, target)
        used = tf.reduce_all(tf.equal(kw_lens, 0), axis=2)  # empty slots count as written
        return used, tf.zeros_like(kw_lens), tf.constant(0), tf.zeros_like(target), tf.zeros_like(target, tf.bool)

    def _at(self, kw_ids: Any, pos: Any) -> Any:
        """The token each spelling expects at match position `pos` (-1 past its end)."""
        import tensorflow as tf

        last = tf.shape(kw_ids)[-1] - 1
        return tf.gather(kw_ids, tf.minimum(pos, last)[..., tf.newaxis], batch_dims=3)[..., 0]

    def step(self, logits: Any, state: tuple, tokens: Any, done: Any) -> tuple[Any, tuple]:
        """Update the matches with the token written last step, then bias `logits` [batch, n_vocab]."""
        import tensorflow as tf

        kw_ids, kw_lens, kw_pull, strength, target_words = self._inputs
        used, pos, t, n_words, closed = state
        zeros = tf.zeros_like(pos)
        # At t=0 the last token is the prompt's; from t=1 it is the one generated at step t-1.
        last = tokens[:, -1]
        last3 = last[:, tf.newaxis, tf.newaxis]
        glued = tf.gather(tf.constant(self.word_cont), last)[:, tf.newaxis, tf.newaxis]
        # A spelling completed last step is written if this token does not continue its word.
        complete = (pos > 0) & (pos >= kw_lens)
        used = used | tf.reduce_any(complete & ~glued, axis=2)
        bare = tf.constant(BARE_FORMS)[tf.newaxis, tf.newaxis, :]
        continues = (pos > 0) & ~complete & tf.equal(self._at(kw_ids, pos), last3)
        starts = tf.equal(kw_ids[..., 0], last3) & (t > 0) & (~bare | tf.equal(t, 1))
        pos = tf.where(continues, pos + 1, tf.where(starts, tf.ones_like(pos), zeros))
        pos = tf.where(used[..., tf.newaxis], zeros, pos)
        # Words of the title begun so far: the first generated token begins one, then each leading space.
        begins = tf.gather(tf.constant(self.new_word), last) & (t > 1)
        n_words = tf.where(tf.equal(t, 1), tf.ones_like(n_words), n_words + tf.cast(begins, tf.int32))
        closed = closed | (tf.gather(tf.constant(self.closing), last) & (t > 0))

        guiding = ~used & (strength > 0.0)  # [batch, kw]
        active = guiding & (t < self.gcfg.budget)
        complete = (pos > 0) & (pos >= kw_lens)
        under_way = (pos > 0) & ~complete
        # A spelling begun within the budget (its first token came at step t - pos) is followed to its
        # end past it: stopping there would leave half a keyword, or half a character of one.
        finishing = guiding[..., tf.newaxis] & under_way & (t - pos < self.gcfg.budget)
        # A keyword none of whose spellings is under way pulls toward the first token of its pulled
        # spellings, after the title's first word and only between words: a pull while the model
        # is inside a word ('C' of 'Cabin') would cut it off.
        p_glue = tf.reduce_sum(tf.nn.softmax(logits) * tf.constant(self.word_cont, tf.float32), axis=1)
        boundary = (p_glue < 0.5)[:, tf.newaxis, tf.newaxis]
        idle = ~tf.reduce_any(pos > 0, axis=2, keepdims=True) & kw_pull & (t > 0) & boundary
        target = self._at(kw_ids, pos)
        live = active[..., tf.newaxis] & (target >= 0)
        pull = _token_max(live & idle, target, logits, strength * self._pull_scale(kw_lens, target_words, n_words))
        logits = tf.where(pull > 0.0, logits + pull, logits)
        # A keyword under way is spelled to its end: only the next tokens of started spellings may follow.
        follow = _token_mask(finishing, target, logits)
        spelling = tf.reduce_any(follow, axis=1, keepdims=True)
        # Forbidden while a keyword is owed: closing the title; right after a spelling: gluing onto it.
        owed = tf.reduce_any(active, axis=1)[:, tf.newaxis]
        ending = tf.reduce_any(active[..., tf.newaxis] & complete, axis=[1, 2])[:, tf.newaxis]
        if self.gcfg.shape == "length" and self.gcfg.hold_end:
            short = (tf.cast(n_words, tf.float32) < self.gcfg.hold_end * tf.cast(target_words, tf.float32))
            owed = owed | (short[:, tf.newaxis] & (t < self.gcfg.budget) & (strength > 0.0))
        banned = ((spelling & ~follow)
                  | (owed & tf.constant(self.closing)[tf.newaxis, :])
                  | (ending & tf.constant(self.word_cont)[tf.newaxis, :]))
        logits = tf.where(banned, tf.fill(tf.shape(logits), np.float32(-1e10)), logits)
        if self.gcfg.end_bias:
            long_enough = (n_words >= target_words)[:, tf.newaxis]  # a target of 0 is always reached
            written = tf.reduce_all(used, axis=1, keepdims=True) & (strength > 0.0) & long_enough
            if self.gcfg.shape == "length":
                # Not once the end marker is begun: the bias would pull '<|' again instead of its next
                # piece, and a weak model then loops ('<|!<|!<|...') and never finishes.
                written = written & ~closed[:, tf.newaxis]
            logits = tf.where(written & tf.constant(self.ending)[tf.newaxis, :], logits + self.gcfg.end_bias, logits)
        return logits, (used, pos, t + 1, n_words, closed)

    @staticmethod
    def _pull_scale(kw_lens: Any, target_words: Any, n_words: Any) -> Any:
        """[batch, kw] multiple of `strength` to pull with: keyword i of n (in prompt order) is due at
        word target * i / (n + 1); the pull rises linearly to full strength there, so keywords spread
        over the title instead of all landing at its start, and on past it, up to OVERDUE_MAX times,
        so a keyword the model resists is still written near its place; 1 everywhere for a target of 0."""
        import tensorflow as tf

        filled = tf.cast(~tf.reduce_all(tf.equal(kw_lens, 0), axis=2), tf.float32)
        rank = tf.cumsum(filled, axis=1)
        due = tf.cast(target_words, tf.float32)[:, tf.newaxis] * rank / (tf.reduce_sum(filled, 1, keepdims=True) + 1.0)
        share = tf.minimum(OVERDUE_MAX, tf.cast(n_words, tf.float32)[:, tf.newaxis] / tf.maximum(due, 1.0))
        return tf.where(due > 0.0, share, tf.ones_like(share))


def _token_mask(want: Any, target: Any, logits: Any) -> Any:
    """[batch, n_vocab] bool: the `target` token [batch, kw, form] of every spelling where `want` is set."""
    import tensorflow as tf

    where = tf.cast(tf.where(want), tf.int32)  # rows of (batch, keyword, spelling)
    hits = tf.stack([where[:, 0], tf.gather_nd(target, where)], axis=1)
    return tf.scatter_nd(hits, tf.ones([tf.shape(hits)[0]]), tf.shape(logits)) > 0


def _token_max(want: Any, target: Any, logits: Any, value: Any) -> Any:
    """[batch, n_vocab] float: at the `target` token [batch, kw, form] of every spelling where `want` is
    set, the largest `value` [batch, kw] of those keywords; 0 elsewhere."""
    import tensorflow as tf

    where = tf.cast(tf.where(want), tf.int32)  # rows of (batch, keyword, spelling)
    hits = tf.stack([where[:, 0], tf.gather_nd(target, where)], axis=1)
    return tf.tensor_scatter_nd_max(tf.zeros_like(logits), hits, tf.gather_nd(value, where[:, :2]))


def guidance_for(gcfg: GuidanceConfig, model_path: Path, enc=None) -> KeywordGuidance | None:
    """The hook for the model in `model_path` (whose encoder `enc` the caller may have read already),
    or None when guidance is off (strength 0)."""
    if not gcfg.active:
        return None
    from gpt_2_simple.src import encoder

    from pipeline.generate.title_lengths import training_lengths
    from pipeline.train import load_hparams

    enc = enc if enc is not None else encoder.get_encoder(str(model_path))
    lengths = training_lengths(model_path, enc) if gcfg.shape == "length" else {}
    return KeywordGuidance(gcfg, enc, load_hparams(model_path).n_vocab, lengths=lengths)
