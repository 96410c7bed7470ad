"""A batched GPT-2 sampler whose TensorFlow graph is built once per job and stops early.

gpt-2-simple's `generate` adds a new sampling graph to the session on every call and
always runs the full length. Here one graph serves every batch of a job: the prompt
goes in through a placeholder, the transformer's key/value cache (one per layer) grows in a
`tf.while_loop`, and the loop ends as soon as every sample of the batch has produced
the end marker (or the length limit is reached). Each batch draws its random numbers
from a stateless generator keyed by (batch seed, step), so a batch gives the same
samples whatever ran before it in the session (which is what makes a resumed job
identical to an uninterrupted one).

The model is pipeline.core.transformer's graph on the checkpoint's variables; a checkpoint trained
with the copy head (pipeline.core.copy_head) is sampled from its mixture, the keyword tokens of each
prompt fed per batch and the candidates already written kept in the loop.

Per-step logits processing has one hook point (`LogitsHook`) for per-sample logit
biases with per-sample state (keyword guidance); with no hook the sampler is plain
temperature / top-k / top-p sampling, which only ever finishes a begun end marker
(`marker_rest`) or a begun multi-byte character (pipeline.generate.utf8), and opens no format
section inside a title (`section_openers`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from pipeline.core.errors import InputError
from pipeline.core.format import BROKEN_MARKER, END_TOKEN, MARKER, SECTIONS
from pipeline.generate.utf8 import byte_tables, complete_characters


# What a title's last characters may be when the end marker follows: its spelling is read in each.
END_CONTEXTS = ("a", "a?", "a.", "1", "a!", "a)", "a'")

# Nucleus sampling looks at this many most likely tokens first (see _top_p), then bands (_bucketed_floor).
NUCLEUS_FAST_K = 256
NUCLEUS_BUCKETS = 2048
NUCLEUS_SPAN = 30.0


@dataclass(frozen=True)
class SamplingSettings:
    """How the next token is drawn. top_k 0 and top_p 0 (or 1) mean no truncation."""

    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 0.9


class LogitsHook(Protocol):
    """Per-step logits processing with per-sample state, applied before temperature and truncation.

    The sampler calls `initial_state` once while building the graph (it may create placeholders,
    which the caller fills per batch through `Sampler.sample(..., feed=...)`), keeps the state in
    the while-loop, and calls `step` every
    step with the raw next-token logits [batch, n_vocab], the state, every token so far
    [batch, time] (prompt included) and the done flags [batch]; `step` returns new logits and
    the new state, with the same structure and shapes as `state_shapes`.
    """

    def initial_state(self, batch_size: Any) -> tuple: ...

    def state_shapes(self) -> tuple: ...

    def step(self, logits: Any, state: tuple, tokens: Any, done: Any) -> tuple[Any, tuple]: ...


@dataclass
class SamplerOutput:
    """What one batch gives back: every row's tokens (prompt included) and the loop's step count."""

    tokens: np.ndarray  # [batch, prompt + steps]
    steps: int  # while-loop iterations actually run (<= the length limit)
    logprob: np.ndarray  # [batch] mean log-probability per new token under the model itself (see _build)


def end_tail(enc) -> list[int]:
    """The token ids that end the end marker whatever character comes before it.

    gpt-2-simple's encoder spells "<|endoftext|>" with ordinary tokens and the first of them
    can merge with punctuation before it ('?<|'), so only the common suffix of a few
    spellings in context is a reliable signal.
    """
    spellings = [enc.encode(prev + END_TOKEN) for prev in END_CONTEXTS]
    tail: list[int] = []
    for position in range(1, min(len(s) for s in spellings) + 1):
        ids = {s[-position] for s in spellings}
        if len(ids) != 1:
            break
        tail.insert(0, ids.pop())
    if not tail:
        raise InputError(f"the vocabulary cannot spell {END_TOKEN} consistently")
    return tail


def marker_rest(enc, n_vocab: int = 0) -> tuple[np.ndarray, list[int]]:
    """What finishes a begun end marker: (a mask over the vocabulary, at least `n_vocab` long, of the
    tokens whose text ends with '<|'; the tokens that spell the rest of the end marker after them).

    Inside a title the format allows no '<|' (clean_text removes it from training titles), so one
    can only begin the end marker; a weak model often goes on with 'startoftext' instead, and its
    title then never ends. The rest is empty (nothing is forced) when the vocabulary does not
    spell the marker with a token boundary right after '<|' the same way in every context.
    """
    opener = np.zeros(max(len(enc.decoder), n_vocab), dtype=bool)
    for idx in enc.decoder:
        opener[idx] = enc.decode([idx]).endswith(BROKEN_MARKER)
    rests = set()
    for prev in END_CONTEXTS:
        ids = enc.encode(prev + END_TOKEN)
        cut = [i for i in range(1, len(ids)) if enc.decode(ids[:i]) == prev + BROKEN_MARKER]
        rests.add(tuple(ids[cut[0]:]) if cut else ())
    rest = rests.pop() if len(rests) == 1 else ()
    return opener, list(rest)


def section_openers(enc, n_vocab: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What would open a format section inside a title (the format allows none: clean_text removes a
    marker written before a section character), as masks over the vocabulary, at least `n_vocab`
    long: (tokens whose text holds a marker and a section character right after it, tokens whose
    text ends with a marker, tokens whose text begins with a section character)."""
    size = max(len(enc.decoder), n_vocab)
    inside, ends, begins = (np.zeros(size, dtype=bool) for _ in range(3))
    sections = tuple(SECTIONS.values())
    for idx in enc.decoder:
        text = enc.decode([idx])
        inside[idx] = any(MARKER + c in text for c in sections)
        ends[idx] = text.endswith(MARKER)
        begins[idx] = text.startswith(sections)
    return inside, ends, begins


def _top_k(tf, logits, k: int):
    if k <= 0:
        return logits
    kth = tf.math.top_k(logits, k=k).values[:, -1:]
    return tf.where(logits < kth, tf.fill(tf.shape(logits), -1e10), logits)


def _nucleus_floor(tf, ordered, before, p: float):
    """The smallest logit kept by nucleus sampling, per row: `ordered` are logits in descending order
    and `before` the probability of all the row's tokens ahead of each of them."""
    # The first of `ordered` always stays (before < p there), so the set is never empty.
    kept = tf.where(before < p, ordered, tf.fill(tf.shape(ordered), np.float32(np.inf)))
    return tf.reduce_min(kept, axis=-1, keepdims=True)


def _sorted_floor(tf, ordered, lse, p: float):
    """_nucleus_floor from a row's largest logits in descending order (lse: the row's log-sum-exp)."""
    return _nucleus_floor(tf, ordered, tf.cumsum(tf.exp(ordered - lse), axis=-1, exclusive=True), p)


def _bucketed_floor(tf, logits, lse, p: float):
    """_nucleus_floor without sorting the vocabulary (TensorFlow's CPU sort takes 140 ms for 64 rows of
    GPT-2's 50,257 tokens, most of a sampling step): each row's logits fall into NUCLEUS_BUCKETS
    equal bands below its largest; the bands' probabilities locate the one the nucleus ends in, and
    only that band's tokens are ordered. Logits more than NUCLEUS_SPAN below the largest (each
    less likely than e^-30) share the last band."""
    top = tf.reduce_max(logits, axis=-1, keepdims=True)
    low = tf.maximum(tf.reduce_min(logits, axis=-1, keepdims=True), top - NUCLEUS_SPAN)
    width = tf.maximum(top - low, 1e-6) / NUCLEUS_BUCKETS
    band = tf.cast(tf.minimum((top - logits) / width, NUCLEUS_BUCKETS - 1), tf.int32)  # 0 holds the largest
    mass = tf.math.bincount(band, weights=tf.exp(logits - lse), minlength=NUCLEUS_BUCKETS,
                            maxlength=NUCLEUS_BUCKETS, axis=-1)  # [rows, NUCLEUS_BUCKETS]
    ahead = tf.cumsum(mass, axis=-1, exclusive=True)
    last = tf.reduce_sum(tf.cast(ahead < p, tf.int32), axis=-1, keepdims=True) - 1  # the band it ends in
    inside = tf.equal(band, last)
    most = tf.reduce_max(tf.reduce_sum(tf.cast(inside, tf.int32), axis=-1))
    ordered = tf.math.top_k(tf.where(inside, logits, tf.fill(tf.shape(logits), np.float32(-np.inf))), most).values
    before = tf.gather(ahead, last, batch_dims=1) + tf.cumsum(tf.exp(ordered - lse), axis=-1, exclusive=True)
    # The largest logit always stays, even if rounding left the sums short of a p close to 1.
    return tf.minimum(_nucleus_floor(tf, ordered, tf.where(ordered > -np.inf, before, np.float32(np.inf)), p), top)


def _top_p(tf, logits, p: float, fast_k: int = NUCLEUS_FAST_K):
    """Keep the smallest set of most likely tokens whose probability reaches p (nucleus).

    When the `fast_k` most likely tokens of every row already hold probability p, the nucleus lies
    among them and a partial top-k orders them; otherwise (a flat distribution, such as an
    untrained model's) _bucketed_floor finds where it ends without sorting the vocabulary. Both
    keep the same tokens as a full sort would (up to float rounding of the sums at the boundary).
    """
    if p <= 0.0 or p >= 1.0:
        return logits
    lse = tf.reduce_logsumexp(logits, axis=-1, keepdims=True)
    n_vocab = logits.shape[-1]
    if n_vocab is None or n_vocab <= fast_k:
        floor = _sorted_floor(tf, tf.sort(logits, direction="DESCENDING", axis=-1), lse, p)
    else:
        top = tf.math.top_k(logits, k=fast_k).values
        mass = tf.reduce_sum(tf.exp(top - lse), axis=-1)
        floor = tf.cond(tf.reduce_all(mass >= p), lambda: _sorted_floor(tf, top, lse, p),
                        lambda: _bucketed_floor(tf, logits, lse, p))
    return tf.where(logits < floor, tf.fill(tf.shape(logits), -1e10), logits)


class Sampler:
    """One TensorFlow graph and session for a whole generation job.

    model_path: a folder with hparams.json, encoder.json, vocab.bpe and a checkpoint
    (gpt-2-simple's `checkpoint_dir/run_name`, or a base model folder); enc: its encoder when the
    caller has read it already (the keyword guidance needs it too).
    """

    def __init__(self, model_path: Path, settings: SamplingSettings, hook: LogitsHook | None = None,
                 threads: int = 0, enc=None):
        import tensorflow as tf
        from gpt_2_simple.src import encoder

        from pipeline.core.copy_head import Sections, head_spec, head_variables
        from pipeline.train import load_hparams, session_config

        self.model_path = Path(model_path)
        ckpt = tf.train.latest_checkpoint(str(self.model_path))
        if ckpt is None:
            raise InputError(f"no checkpoint in {self.model_path} (run the train stage first)")
        self.enc = enc if enc is not None else encoder.get_encoder(str(self.model_path))
        self.hparams = load_hparams(self.model_path)
        self.tail = end_tail(self.enc)
        self.opener, self.rest = marker_rest(self.enc, self.hparams.n_vocab)
        self.sections_opened = section_openers(self.enc, self.hparams.n_vocab)
        self.bytes = byte_tables(self.enc, self.hparams.n_vocab)
        self.hook = hook
        # A model trained with the copy head samples from its mixed distribution (pipeline.core.copy_head).
        self.head = head_spec(self.model_path)
        self.sections = Sections(self.enc, self.hparams.n_vocab) if self.head else None
        self.graph = tf.Graph()
        with self.graph.as_default():
            self._build(tf, settings)
            saver = tf.compat.v1.train.Saver(var_list=head_variables(tf))
            self.sess = tf.compat.v1.Session(graph=self.graph, config=session_config(tf, threads))
            saver.restore(self.sess, ckpt)
        self.graph.finalize()  # a later accidental op would rebuild per batch; fail loudly instead

    def _build(self, tf, settings: SamplingSettings) -> None:
        from pipeline.core.copy_head import PromptInputs, step_logits
        from pipeline.core.transformer import forward

        hp = self.hparams
        self.context = tf.compat.v1.placeholder(tf.int32, [None, None], name="context")
        self.max_new = tf.compat.v1.placeholder(tf.int32, [], name="max_new")
        self.seed = tf.compat.v1.placeholder(tf.int32, [], name="seed")
        batch = tf.shape(self.context)[0]
        tail = tf.constant(self.tail, dtype=tf.int32)
        k = len(self.tail)
        special_end = self.enc.encoder.get(END_TOKEN, -1)

        def run_model(tokens, cache=None):
            out = forward(hp, tokens, cache=cache)
            return out["logits"][:, -1, : hp.n_vocab], out["cache"], out["hidden"]

        opener, rest = tf.constant(self.opener), self.rest
        # Left padding, so the look-back below never runs off a short prompt: a token that neither
        # begins nor continues a marker.
        pad = next(i for i in range(len(self.opener)) if not self.opener[i] and i not in rest)

        inside, ends, begins = (tf.constant(m[:hp.n_vocab]) for m in self.sections_opened)

        def no_section(logits, tokens):
            """`logits` without the tokens that would open a section here: a weak model often breaks
            a title off with '~@' and begins another, and decode keeps only the first."""
            banned = inside[tf.newaxis, :] | (tf.gather(ends, tokens[:, -1])[:, tf.newaxis] & begins[tf.newaxis, :])
            return tf.where(banned, tf.fill(tf.shape(logits), -1e10), logits)

        def finish_marker(logits, tokens):
            """`logits` with only the end marker's next token allowed in rows that have begun it."""
            if not rest:
                return logits
            back = tf.concat([tf.fill([batch, len(rest)], pad), tokens[:, -len(rest):]], axis=1)
            forced = tf.fill([batch], -1)
            for j in range(len(rest)):  # j tokens of the rest already written after the opener
                ok = tf.gather(opener, back[:, -(j + 1)])
                if j:
                    ok &= tf.reduce_all(tf.equal(back[:, -j:], tf.constant(rest[:j])[tf.newaxis, :]), axis=1)
                forced = tf.where(ok, rest[j], forced)
            keep = tf.one_hot(tf.maximum(forced, 0), hp.n_vocab, on_value=True, off_value=False)
            drop = tf.logical_and((forced >= 0)[:, tf.newaxis], tf.logical_not(keep))
            return tf.where(drop, tf.fill(tf.shape(logits), -1e10), logits)

        # The prompt minus its last token fills the cache; the loop feeds one token per step.
        _, cache0, h_prompt = run_model(self.context[:, :-1])
        state0 = tuple(self.hook.initial_state(batch)) if self.hook else ()
        # The copy head's inputs: the keyword tokens of the prompt minus its last token and their
        # alternates, fed per batch; `written` (loop state) marks the candidates the title holds already.
        written0 = tf.zeros([batch, 2, 0], dtype=tf.bool)
        if self.head:
            self.keywords = tf.compat.v1.placeholder(tf.bool, [None, None], name="prompt_keywords")
            self.alternates = tf.compat.v1.placeholder(tf.int32, [None, None], name="prompt_alternates")
            self.closed = tf.compat.v1.placeholder(tf.bool, [None, 2, None], name="prompt_closed")
            self.continues = tf.compat.v1.placeholder(tf.bool, [None, None], name="prompt_continues")
            self.phrase = tf.compat.v1.placeholder(tf.bool, [None, None], name="prompt_phrase")
            candidates = tf.stack([self.context[:, :-1], self.alternates], axis=1)
            prompt = PromptInputs(candidates, self.keywords, self.closed, self.continues, self.sections.stops,
                                  self.phrase)
            written0 = self.closed

        def body(step, cache, prev, tokens, done, logp, state, written):
            logits, cache, hidden = run_model(prev[:, tf.newaxis], cache)
            if self.head:
                logits = step_logits(tf, hidden[:, -1], logits, h_prompt, prompt, written, prev, self.head)
            # Fluency is scored with the model's own distribution: before any hook, temperature or truncation
            # (the head's mixture is log-probabilities already).
            own = logits if self.head else tf.nn.log_softmax(logits)
            if self.hook is not None:
                logits, state = self.hook.step(logits, state, tokens, done)
            logits = complete_characters(tf, finish_marker(no_section(logits, tokens), tokens), tokens, self.bytes)
            logits = logits / tf.cast(settings.temperature, tf.float32)
            logits = _top_p(tf, _top_k(tf, logits, settings.top_k), settings.top_p)
            token = tf.random.stateless_categorical(
                logits, 1, seed=tf.stack([self.seed, step]), dtype=tf.int32)[:, 0]
            tokens = tf.concat([tokens, token[:, tf.newaxis]], axis=1)
            live = tf.logical_not(done)  # tokens up to and including the end marker count
            logp = logp + tf.stack([tf.where(live, tf.gather(own, token, batch_dims=1), 0.0),
                                    tf.cast(live, tf.float32)], axis=1)
            ended = tf.reduce_all(tf.equal(tokens[:, -k:], tail[tf.newaxis, :]), axis=1)
            done = done | ended | tf.equal(token, special_end)
            if self.head:
                written = written | tf.equal(candidates, token[:, tf.newaxis, tf.newaxis])
            return step + 1, cache, token, tokens, done, logp, state, written

        def cond(step, cache, prev, tokens, done, logp, state, written):
            return tf.logical_and(step < self.max_new, tf.logical_not(tf.reduce_all(done)))

        layer_shape = tf.TensorShape([None, hp.n_head, None, hp.n_embd // hp.n_head])
        cache_shape = tuple((layer_shape, layer_shape) for _ in range(hp.n_layer))
        state_shapes = tuple(self.hook.state_shapes()) if self.hook else ()
        steps, _, _, tokens, done, logp, _, _ = tf.while_loop(
            cond, body,
            loop_vars=(tf.constant(0), cache0, self.context[:, -1], self.context,
                       tf.zeros([batch], dtype=tf.bool), tf.zeros([batch, 2]), state0, written0),
            shape_invariants=(tf.TensorShape([]), cache_shape, tf.TensorShape([None]),
                              tf.TensorShape([None, None]), tf.TensorShape([None]), tf.TensorShape([None, 2]),
                              state_shapes, tf.TensorShape([None, 2, None])),
        )
        self.out_tokens, self.out_steps = tokens, steps
        # (sum of log-probs, tokens counted) -> mean per token
        self.out_logprob = logp[:, 0] / tf.maximum(logp[:, 1], 1.0)

    def encode(self, text: str) -> list[int]:
        return self.enc.encode(text)

    def decode(self, tokens: Sequence[int]) -> str:
        return self.enc.decode([int(t) for t in tokens])

    def max_new_tokens(self, prompt_len: int, length: int) -> int:
        """`length` capped so prompt plus sample fit in the model's context window."""
        return max(0, min(length, self.hparams.n_ctx - prompt_len))

    def sample(self, prompts: list[list[int]], length: int, seed: int, feed: dict | None = None,
               phrases: bool = False) -> SamplerOutput:
        """Sample one batch: `prompts` are token lists of one length (>= 2 tokens each).

        length: at most this many new tokens; seed: this batch's seed; feed: values for the
        hook's placeholders (e.g. KeywordGuidance.feed); phrases: with the copy head, a keyword
        phrase's later words are copied only right after the word before them (Sections.prompt).
        """
        if len({len(p) for p in prompts}) != 1 or len(prompts[0]) < 2:
            raise ValueError("a batch needs prompts of one length, at least 2 tokens each")
        inputs = {self.context: np.asarray(prompts, dtype=np.int32),
                  self.max_new: self.max_new_tokens(len(prompts[0]), length), self.seed: int(seed), **(feed or {})}
        if self.head:
            fed = zip(*(self.sections.prompt(p, phrases) for p in prompts))  # each prompt minus its last token is fed
            for placeholder, parts in zip((self.keywords, self.alternates, self.closed, self.continues, self.phrase),
                                          fed):
                inputs[placeholder] = np.stack([part[..., :-1] for part in parts])
        tokens, steps, logprob = self.sess.run((self.out_tokens, self.out_steps, self.out_logprob), feed_dict=inputs)
        return SamplerOutput(tokens=tokens, steps=int(steps), logprob=logprob)

    def close(self) -> None:
        self.sess.close()

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
