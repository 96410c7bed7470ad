"""The copy head: a pointer from a title's position to its own keyword section (model.copy_head).

At a position whose next token lies in a document's title, a gate computed from the final hidden
state mixes the vocabulary distribution with an attention distribution over the tokens of that
document's keyword section (See et al., 2017, a pointer-generator):

    p(y) = (1 - g) * softmax(logits)[y] + g * sum_j a_j * [copy id of j == y]

Each keyword token j offers two ids to copy: itself, and an alternate: where a word begins without
a space (the first keyword, right after its marker: '~^harvest', tokenised 'h' 'ar' 'vest'), the
first token of " " + that word as a title spells it (' harvest'); elsewhere the token of " " + its
text, where the vocabulary has one. Each (j, id) pair has its own key. Everywhere else
(category, keyword section, end marker, a title whose keyword section is outside the window)
the gate is 0 and the loss is the language model's alone. A candidate whose id the title holds
already cannot be copied again (coverage: without it the head repeats a keyword, or a piece of one,
over and over); the language model may still repeat it. Follow (HeadSpec.follow): a keyword token
that continues a word (its piece before it in the same word) gets a learned bonus, in its score
and in the gate, where the title's last token is that piece before it; without it a small model
copies a rare word's pieces out of order ('snorkel' -> 'sn el ... ork'). Ending (HeadSpec.ending,
model.copy_ending, off by default): while a keyword word is not in the title yet, a learned
penalty on the tokens that end a title and a learned bonus in the gate. Phrases (sampling only,
`guidance.phrase_order`, guided draws): a later word of a hyphen-joined keyword is chained as a
continuing piece is, copied only right after the word before it. The head's variables live
under `copy/`, so the trunk's names are gpt-2-simple's and a checkpoint without the head still loads.

    sections = Sections(enc, n_vocab)         # the vocabulary's bytes and spaced twins
    mask, alt, written, continues, left = sections.features(ids)  # [T-1, T]: position t may copy
                        # token j; [T]: the second id each token offers; [T-1, 2, T]: closed (already
                        # in the title); [T]: token j continues the keyword word of token j - 1;
                        # [T-1]: a keyword word is still to be written
    head = HeadInputs(tf, sections, HeadSpec())  # placeholders for them in a tf.compat.v1 graph
    logp = token_logprob(tf, hparams, tokens, precision, head=head)   # feed head.feed(batch)
"""
from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipeline.core.format import END_TOKEN, KEYWORD_JOIN, MARKER, SECTIONS
from pipeline.core.gpt2 import token_bytes

HEAD_FILE = "copy_head.json"  # beside a checkpoint trained with the head: HeadSpec's fields
# The follow bonus's starting values (score, gate): Adam at the default learning rate moves a scalar
# by under 1 in a short run, so it starts where a continuing piece is already strongly preferred.
FOLLOW_INIT = (4.0, 2.0)
# The ending penalty's and gate bonus's starting values (see HeadSpec.ending), for the same reason.
ENDING_INIT = (3.0, 0.5)
_KEYWORDS = (MARKER + SECTIONS["keywords"]).encode()
_TITLE = (MARKER + SECTIONS["title"]).encode()
_JOIN = KEYWORD_JOIN.encode()
_END = END_TOKEN.encode()
_WORDLIKE = re.compile(rb"[0-9A-Za-z\x80-\xff]")
_DOC = re.compile(re.escape(_KEYWORDS) + b"(.*?)" + re.escape(_TITLE) + b"(.*?)(?=" + re.escape(_END)
                  + b"|" + re.escape(_KEYWORDS) + b"|$)", re.S)


@dataclass(frozen=True)
class HeadSpec:
    """The copy head's shape: the width of its query and keys, whether it has the follow bonus, whether
    it has the ending signal (where a keyword word is still to be written, a learned penalty on the
    tokens that end a title, Sections.stops, and a learned bonus in the gate), and whether a word's
    continuing pieces are copied only after the piece before them."""

    dim: int = 64
    follow: bool = True
    ending: bool = False  # model.copy_ending
    # With follow: a piece that continues a keyword word is copied only right after the piece before
    # it (or that piece's alternate); left open, 'pr' 'oud' gave "Whichoud brag".
    chain: bool = True

    def write(self, model_path: Path) -> None:
        from pipeline.core.io import write_json

        write_json(Path(model_path) / HEAD_FILE, asdict(self))


def head_spec(model_path: Path) -> HeadSpec | None:
    """The copy head recorded beside the checkpoint in `model_path`, or None (no head). A head
    recorded before the follow bonus, the ending signal or the chain rule existed has none of them."""
    path = Path(model_path) / HEAD_FILE
    if not path.is_file():
        return None
    saved = json.loads(path.read_text(encoding="utf-8"))
    return HeadSpec(dim=saved["dim"], follow=saved.get("follow", False), ending=saved.get("ending", False),
                    chain=saved.get("chain", False))


class Sections:
    """Where each token of a tokenised text sits in the format, for gpt-2-simple's encoder `enc`."""

    def __init__(self, enc, n_vocab: int):
        self.enc = enc
        size = max(n_vocab, len(enc.decoder))
        # A spelling that is not byte-level (none in GPT-2's vocabularies) counts as its UTF-8 text.
        self.bytes = [raw if raw is not None else enc.decoder.get(idx, "").encode("utf-8")
                      for idx, raw in enumerate(token_bytes(enc, size))]
        self.lengths = np.array([len(b) for b in self.bytes], dtype=np.int64)
        # Only tokens with a letter or digit are copied: the '-' that joins a keyword's words is a space
        # in a title, and a copied '-' glues words together.
        self.wordlike = np.array([bool(_WORDLIKE.search(b)) for b in self.bytes])
        # The token of " " + a token's text, where the vocabulary has one; else the token itself.
        self.twins = np.arange(size, dtype=np.int32)
        for idx, text in enc.decoder.items():
            twin = enc.encoder.get(enc.byte_encoder[32] + text)
            if twin is not None and twin < size:
                self.twins[idx] = twin

    def documents(self, ids) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each document of `ids` whose keyword section and title marker are inside: (positions of
        its keyword tokens, the positions that may copy them). A keyword token lies wholly inside the
        keyword section and holds a letter or digit. The copying positions are the ones a sampler writes the title from: from the
        token that ends the title marker up to the one before the end marker's last token (or the
        window's end), so whether a position copies never depends on the token it predicts."""
        ids = np.asarray(ids)
        ends = np.cumsum(self.lengths[ids])
        starts = ends - self.lengths[ids]
        text = b"".join(self.bytes[i] for i in ids)
        docs = []
        for m in _DOC.finditer(text):
            (k0, k1), (t0, t1) = m.span(1), m.span(2)
            keywords = np.flatnonzero((starts >= k0) & (ends <= k1) & self.wordlike[ids])
            first = int(np.searchsorted(ends, t0))  # the token holding the marker's last byte
            ended = text.startswith(_END, t1)
            last = int(np.searchsorted(ends, t1 + len(_END))) if ended else len(ids)
            if len(keywords):
                docs.append((keywords, np.arange(first, last)))
        return docs

    def features(self, ids) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The head's inputs for one window `ids` [T]: (copy_mask [T-1, T], alternates [T], written
        [T-1, 2, T]: at a copying position, whether keyword token j's id (0) or its alternate (1) is
        among the title's tokens so far, the position's own included; continues [T], see _continues;
        left [T-1]: at a copying position, a keyword word is not in the title yet, see words_left)."""
        ids = np.asarray(ids)
        docs = self.documents(ids)
        alt, closed = self._alternates(ids, docs)
        mask = np.zeros((len(ids) - 1, len(ids)), dtype=bool)
        written = np.zeros((len(ids) - 1, 2, len(ids)), dtype=bool)
        for keywords, positions in docs:
            candidates = np.stack([ids[keywords], alt[keywords]])  # [2, k]
            rows = positions[positions < len(ids) - 1]
            # The title so far at each copying position: its tokens after the first position (which
            # holds the title marker), the position's own included.
            title = np.where(rows == positions[0], -1, ids[rows])
            seen = np.logical_or.accumulate(title[:, None, None] == candidates[None], axis=0)  # [rows, 2, k]
            mask[np.ix_(rows, keywords)] = True
            written[np.ix_(rows, [0, 1], keywords)] = seen | closed[:, keywords]
        continues = self._continues(ids, docs)
        starts = mask & ~continues  # [T-1, T]: the words' first tokens a position may copy
        left = words_left(np, starts, written, closed[0])
        return mask, alt, written, continues, left

    def _continues(self, ids: np.ndarray, docs) -> np.ndarray:
        """[T] bool: keyword token j continues the word of keyword token j - 1 (no space between them)."""
        out = np.zeros(len(ids), dtype=bool)
        for keywords, _ in docs:
            inside = set(keywords.tolist())
            for j in keywords:
                out[j] = j - 1 in inside and self.bytes[ids[j]][:1] != b" " and self.bytes[ids[j - 1]][-1:] != b" "
        return out

    def _alternates(self, ids: np.ndarray, docs) -> tuple[np.ndarray, np.ndarray]:
        """The second id each token offers the copy head [T] int32 (see the module doc), and which
        candidates are closed from the start [2, T] bool: a keyword word's first token written without
        a space offers only its alternate (as written, it would glue the word to the one before), and
        the word's next pieces that the alternate spells already are closed both ways (' weird'
        holds 'we' 'ird': left open, 'ird' would be copied on its own later, "Aird weird life");
        they offer that alternate, so the piece after them follows it. docs: `documents(ids)`."""
        out = self.twins[ids].astype(np.int32)
        closed = np.zeros((2, len(ids)), dtype=bool)
        for keywords, _ in docs:
            for n, j in enumerate(keywords):
                if self.bytes[ids[j]][:1] == b" " or (n and keywords[n - 1] == j - 1 and
                                                       self.bytes[ids[j - 1]][-1:] != b" "):
                    continue  # spaced already, or inside a word
                word, prev, ends = bytearray(), j - 1, []
                for k in keywords[n:]:  # the word: contiguous keyword tokens up to the next space
                    piece = self.bytes[ids[k]]
                    if k != prev + 1 or (word and piece[:1] == b" "):
                        break
                    word, prev = word + piece, k
                    ends.append(len(word))
                first = self.enc.encode(" " + word.decode("utf-8", "replace"))[:1]
                if first and first[0] < len(self.twins):
                    out[j] = first[0]
                    closed[0, j] = True
                    spelt = len(self.bytes[first[0]]) - 1  # the word's bytes the alternate holds
                    for k, end in zip(range(j + 1, prev + 1), ends[1:]):
                        if end <= spelt:
                            out[k], closed[:, k] = first[0], True
        return out, closed

    def prompt(self, ids, phrases: bool = False) -> tuple[np.ndarray, ...]:
        """What the sampler feeds for a prompt that ends where its title begins: its keyword tokens
        [T] bool, the alternates [T], the candidates closed from the start [2, T], which tokens
        continue a keyword word [T], and which begin a later word of a keyword phrase [T] (all
        False unless `phrases`; see _phrase_words)."""
        ids = np.asarray(ids)
        docs = self.documents(ids)
        keywords = np.zeros(len(ids), dtype=bool)
        for positions, _ in docs:
            keywords[positions] = True
        alt, closed = self._alternates(ids, docs)
        phrase = np.zeros(len(ids), dtype=bool)
        if phrases:
            self._phrase_words(ids, docs, alt, closed, phrase)
        return keywords, alt, closed, self._continues(ids, docs), phrase

    def _phrase_words(self, ids: np.ndarray, docs, alt: np.ndarray, closed: np.ndarray, phrase: np.ndarray) -> None:
        """Marks in `phrase` [T] the first token of each later word of a hyphen-joined keyword
        ('question' of 'Electrical-question'), and makes the alternate of the '-' before it the token
        a title ends the word before with: the word's own alternate where that spells it whole
        (closed, see _alternates), else its last piece. The '-' is never copied itself (it holds no
        letter), so its alternate slot only serves the one-token look-back of _follows."""
        for positions, _ in docs:
            inside = set(positions.tolist())
            for j in positions:
                if j - 2 in inside and self.bytes[ids[j - 1]] == _JOIN and self.bytes[ids[j]][:1] != b" ":
                    phrase[j] = True
                    alt[j - 1] = alt[j - 2] if closed[1, j - 2] else ids[j - 2]

    @property
    def stops(self) -> np.ndarray:
        """[V] bool: the tokens that end a title: they begin the end marker or hold a format marker."""
        return np.array([b"<|" in b or MARKER.encode() in b for b in self.bytes])


def words_left(xp, starts, written, closed):
    """Whether a keyword word is not in the title yet [..., Q], for numpy or tensorflow `xp`: starts
    [..., Q, K] the first tokens of the keyword words, written [..., Q, 2, K] and closed [..., K]
    (the ids closed from the start, see Sections._alternates). A word counts as written once its
    first token is, as itself (unless closed: glued to the word before) or as its alternate."""
    as_is, alt = written[..., 0, :], written[..., 1, :]
    covered = xp.logical_or(xp.logical_and(as_is, xp.logical_not(closed[..., None, :])), alt)
    left = xp.logical_and(starts, xp.logical_not(covered))
    return left.any(axis=-1) if xp is np else xp.reduce_any(left, axis=-1)


def _variables(tf, n_embd: int, spec: HeadSpec):
    with tf.compat.v1.variable_scope("copy", reuse=tf.compat.v1.AUTO_REUSE):
        init = tf.compat.v1.random_normal_initializer(stddev=0.02)
        wq = tf.compat.v1.get_variable("wq", [n_embd, spec.dim], initializer=init)
        wk = tf.compat.v1.get_variable("wk", [2, n_embd, spec.dim], initializer=init)  # as written, alternate
        wg = tf.compat.v1.get_variable("wg", [n_embd, 1], initializer=init)
        # Starts mostly closed: the head begins as a small change to the language model.
        bg = tf.compat.v1.get_variable("bg", [1], initializer=tf.compat.v1.constant_initializer(-2.0))
        follow = (tf.compat.v1.get_variable("follow", [2], initializer=tf.compat.v1.constant_initializer(FOLLOW_INIT))
                  if spec.follow else None)
        ending = (tf.compat.v1.get_variable("ending", [2], initializer=tf.compat.v1.constant_initializer(ENDING_INIT))
                  if spec.ending else None)
    return wq, wk, wg, bg, follow, ending


def _pointer(tf, h_query, h_keys, allowed, written, spec: HeadSpec, follows=None, left=None, continues=None):
    """Gate [B, Q], attention [B, Q, 2, K] of queries h_query [B, Q, n] over keys h_keys [B, K, n], and
    whether a row may copy at all [B, Q]: candidates where `allowed` [B, Q, K] and not `written`
    [B, Q, 2, K] (the candidate's id is in the title already). Rows with nothing to copy get gate 0.
    follows [B, Q, K] (with spec.follow): key j continues the word whose previous piece the query's
    token is; it adds the learned bonus to j's scores and, where such a j is open, to the gate; with
    spec.chain, a key that continues a word (continues [B, K]) is open only where it follows.
    left [B, Q] (with spec.ending): a keyword word is still to be written; it adds a learned bonus to the gate."""
    n_embd = h_query.shape[-1]
    wq, wk, wg, bg, follow, ending = _variables(tf, n_embd, spec)
    q = tf.einsum("bqn,nd->bqd", h_query, wq) / np.float32(np.sqrt(spec.dim))
    k = tf.einsum("bkn,cnd->bckd", h_keys, wk)
    scores = tf.einsum("bqd,bckd->bqck", q, k)
    if spec.chain and follows is not None:
        allowed = tf.logical_and(allowed, tf.logical_or(tf.logical_not(continues[:, tf.newaxis, :]), follows))
    open_ = tf.logical_and(allowed[:, :, tf.newaxis, :], tf.logical_not(written))
    gate_logit = tf.einsum("bqn,no->bqo", h_query, wg)[..., 0] + bg
    if follow is not None:
        # The bonus goes to j as written only: its spaced alternate would break the word.
        on = tf.cast(follows, tf.float32)[:, :, tf.newaxis, :] * tf.constant([[1.0], [0.0]])  # [B, Q, 2, K]
        scores += follow[0] * on
        gate_logit += follow[1] * tf.cast(tf.reduce_any(tf.logical_and(open_, on > 0), axis=[2, 3]), tf.float32)
    if ending is not None:
        gate_logit += ending[1] * tf.cast(left, tf.float32)
    scores = tf.where(open_, scores, tf.fill(tf.shape(scores), np.float32(-1e9)))
    shape = tf.shape(scores)
    attn = tf.reshape(tf.nn.softmax(tf.reshape(scores, [shape[0], shape[1], -1])), shape)
    has = tf.reduce_any(open_, axis=[2, 3])
    gate = tf.where(has, tf.sigmoid(gate_logit), tf.zeros_like(has, tf.float32))
    return gate, attn, has


def _follows(tf, last, ids, alt, continues):
    """[B, Q, K]: key j continues a word (continues [B, K]) and the query's last token `last` [B, Q]
    is the piece before j (ids [B, K]) or that piece's alternate (alt [B, K])."""
    before = tf.pad(tf.stack([ids, alt], axis=1)[:, :, :-1], [[0, 0], [0, 0], [1, 0]], constant_values=-1)
    same = tf.reduce_any(tf.equal(last[:, tf.newaxis, :, tf.newaxis], before[:, :, tf.newaxis, :]), axis=1)
    return tf.logical_and(same, continues[:, tf.newaxis, :])


class HeadInputs:
    """The head's per-window inputs as placeholders of the current graph (mask [B, T-1, T], alt [B, T],
    written [B, T-1, 2, T], continues [B, T], left [B, T-1]), and `feed(batch)`: their values for a [B, T] batch,
    from `sections`; spec: the head's HeadSpec."""

    def __init__(self, tf, sections: Sections, spec: HeadSpec):
        self.sections, self.spec = sections, spec
        self.mask = tf.compat.v1.placeholder(tf.bool, [None, None, None], name="copy_mask")
        self.alt = tf.compat.v1.placeholder(tf.int32, [None, None], name="copy_alternates")
        self.written = tf.compat.v1.placeholder(tf.bool, [None, None, 2, None], name="copy_written")
        self.continues = tf.compat.v1.placeholder(tf.bool, [None, None], name="copy_continues")
        self.left = tf.compat.v1.placeholder(tf.bool, [None, None], name="copy_words_left")

    def feed(self, batch) -> dict:
        rows = [self.sections.features(ids) for ids in batch]
        return {self.mask: np.stack([r[0] for r in rows]), self.alt: np.stack([r[1] for r in rows]),
                self.written: np.stack([r[2] for r in rows]), self.continues: np.stack([r[3] for r in rows]),
                self.left: np.stack([r[4] for r in rows])}


def _stop_penalty(tf, logits, left, stops, weight):
    """`logits` [..., V] with `weight` taken from the tokens that end a title (`stops` [V]) where a
    keyword word is still to be written (`left` [...])."""
    return logits - weight * tf.cast(left, tf.float32)[..., tf.newaxis] * tf.cast(stops, tf.float32)


def target_logprob(tf, hidden, logits, tokens, head: HeadInputs):
    """log p(next token) [B, T-1] under the mixture, for `tokens` [B, T], the trunk's `hidden` [B, T, n]
    and `logits` [B, T-1, V] (targets only), with the head's inputs `head`."""
    spec = head.spec
    hidden = tf.cast(hidden, tf.float32)
    targets = tokens[:, 1:]
    if spec.ending:
        logits = _stop_penalty(tf, logits, head.left, head.sections.stops[:logits.shape[-1]],
                               _variables(tf, hidden.shape[-1], spec)[-1][0])
    lm = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    follows = _follows(tf, tokens[:, :-1], tokens, head.alt, head.continues) if spec.follow else None
    gate, attn, has = _pointer(tf, hidden[:, :-1], hidden, head.mask, head.written, spec, follows,
                               head.left if spec.ending else None, head.continues)
    ids = tf.stack([tokens, head.alt], axis=1)  # [B, 2, T]
    hit = tf.cast(tf.equal(ids[:, tf.newaxis], targets[:, :, tf.newaxis, tf.newaxis]), tf.float32)  # [B, T-1, 2, T]
    copied = tf.reduce_sum(attn * hit, axis=[2, 3])
    mixed = tf.math.log((1.0 - gate) * tf.exp(lm) + gate * copied + np.float32(1e-30))
    return tf.where(has, mixed, lm)


@dataclass(frozen=True)
class PromptInputs:
    """What a sampler holds of its prompts for the head (tensors of its graph): ids [B, 2, P] (each
    token and its alternate), keywords [B, P], closed [B, 2, P] (from the start), continues [B, P];
    stops [V] (Sections.stops); phrase [B, P]: the first tokens of a keyword phrase's later words,
    copied only right after the word before them, as a continuing piece is (None: no such rule)."""

    ids: object
    keywords: object
    closed: object
    continues: object
    stops: np.ndarray
    phrase: object = None


def step_logits(tf, h_step, logits, h_prompt, prompt: PromptInputs, written, last, spec: HeadSpec):
    """The mixture's log-probabilities [B, V] for one sampling step: h_step [B, n] (the step's hidden
    state), logits [B, V], the prompt's hidden states h_prompt [B, P, n], `prompt`, `written`
    [B, 2, P] (that id is in the title already) and the step's input token `last` [B]. Rows whose
    prompt has no keyword get the language model's log-probabilities."""
    h_step = tf.cast(h_step, tf.float32)[:, tf.newaxis]
    ids = prompt.ids
    # The chain rule's keys: a word's continuing pieces, and with `phrase` a phrase's later words.
    chained = prompt.continues if prompt.phrase is None else tf.logical_or(prompt.continues, prompt.phrase)
    follows = _follows(tf, last[:, tf.newaxis], ids[:, 0], ids[:, 1], chained) if spec.follow else None
    left = None
    if spec.ending:
        starts = tf.logical_and(prompt.keywords, tf.logical_not(prompt.continues))[:, tf.newaxis]
        left = words_left(tf, starts, written[:, tf.newaxis], prompt.closed[:, 0])  # [B, 1]
        logits = _stop_penalty(tf, logits, left[:, 0], prompt.stops[:logits.shape[-1]],
                               _variables(tf, h_step.shape[-1], spec)[-1][0])
    gate, attn, _ = _pointer(tf, h_step, tf.cast(h_prompt, tf.float32), prompt.keywords[:, tf.newaxis],
                             written[:, tf.newaxis], spec, follows, left, chained)
    gate, attn = gate[:, 0], attn[:, 0]  # [B], [B, 2, P]
    batch, n_vocab = tf.shape(logits)[0], tf.shape(logits)[1]
    rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis, tf.newaxis], tf.shape(ids))
    copied = tf.scatter_nd(tf.stack([tf.reshape(rows, [-1]), tf.reshape(ids, [-1])], axis=1),
                           tf.reshape(attn, [-1]), tf.stack([batch, n_vocab]))
    mixed = (1.0 - gate)[:, tf.newaxis] * tf.nn.softmax(logits) + gate[:, tf.newaxis] * copied
    return tf.math.log(mixed + np.float32(1e-30))


def token_logprob(tf, hparams, tokens, precision, *, head: HeadInputs | None = None, recompute: bool = False,
                  devices: tuple[str, ...] = ()):
    """log p of each next token of `tokens` [B, T]: [B, T-1], the language model's, or with `head` the
    copy head's mixture."""
    from pipeline.core.transformer import forward

    out = forward(hparams, tokens, precision, recompute=recompute, targets_only=True, devices=devices)
    if head is None:
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tokens[:, 1:], logits=out["logits"])
    return target_logprob(tf, out["hidden"], out["logits"], tokens, head)


def head_variables(tf) -> list:
    """The trainable variables a checkpoint holds: the trunk's (`model/`) and the copy head's (`copy/`)."""
    return [v for v in tf.compat.v1.trainable_variables() if v.name.startswith(("model/", "copy/"))]
