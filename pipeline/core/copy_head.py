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
the gate is 0 and the loss is the language model's alone. The head's variables live under
`copy/`, so the trunk's names are gpt-2-simple's and a checkpoint without the head still loads.

    sections = Sections(enc, n_vocab)         # the vocabulary's bytes and spaced twins
    mask = sections.copy_mask(ids)            # [T-1, T]: position t may copy token j
    alt = sections.alternates(ids)            # [T]: the second id each token offers
    logp = target_logprob(tf, hidden, logits, tokens, mask, alt, dim)   # in a tf.compat.v1 graph
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from pipeline.core.format import END_TOKEN, MARKER, SECTIONS

HEAD_FILE = "copy_head.json"  # beside a checkpoint trained with the head: {"dim": ...}
DIM = 64  # width of the head's query and keys
_KEYWORDS = (MARKER + SECTIONS["keywords"]).encode()
_TITLE = (MARKER + SECTIONS["title"]).encode()
_END = END_TOKEN.encode()
_DOC = re.compile(re.escape(_KEYWORDS) + b"(.*?)" + re.escape(_TITLE) + b"(.*?)(?=" + re.escape(_END)
                  + b"|" + re.escape(_KEYWORDS) + b"|$)", re.S)


def head_dim(model_path: Path) -> int | None:
    """The copy head's width recorded beside the checkpoint in `model_path`, or None (no head)."""
    import json

    path = Path(model_path) / HEAD_FILE
    return json.loads(path.read_text(encoding="utf-8"))["dim"] if path.is_file() else None


class Sections:
    """Where each token of a tokenised text sits in the format, for gpt-2-simple's encoder `enc`."""

    def __init__(self, enc, n_vocab: int):
        self.enc = enc
        size = max(n_vocab, len(enc.decoder))
        self.bytes = [b""] * size
        for idx, text in enc.decoder.items():
            self.bytes[idx] = bytes(enc.byte_decoder[c] for c in text)
        self.lengths = np.array([len(b) for b in self.bytes], dtype=np.int64)
        # The token of " " + a token's text, where the vocabulary has one; else the token itself.
        self.twins = np.arange(size, dtype=np.int32)
        for idx, text in enc.decoder.items():
            twin = enc.encoder.get(enc.byte_encoder[32] + text)
            if twin is not None and twin < size:
                self.twins[idx] = twin

    def documents(self, ids) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each document of `ids` whose keyword section and title marker are inside: (positions of
        its keyword tokens, the positions that may copy them). A keyword token lies wholly inside the
        keyword section. The copying positions are the ones a sampler writes the title from: from the
        token that ends the title marker up to the one before the end marker's last token (or the
        window's end), so whether a position copies never depends on the token it predicts."""
        ids = np.asarray(ids)
        ends = np.cumsum(self.lengths[ids])
        starts = ends - self.lengths[ids]
        text = b"".join(self.bytes[i] for i in ids)
        docs = []
        for m in _DOC.finditer(text):
            (k0, k1), (t0, t1) = m.span(1), m.span(2)
            keywords = np.flatnonzero((starts >= k0) & (ends <= k1))
            first = int(np.searchsorted(ends, t0))  # the token holding the marker's last byte
            ended = text.startswith(_END, t1)
            last = int(np.searchsorted(ends, t1 + len(_END))) if ended else len(ids)
            if len(keywords):
                docs.append((keywords, np.arange(first, last)))
        return docs

    def copy_mask(self, ids) -> np.ndarray:
        """[T-1, T] bool: each copying position (it predicts the next token) and the keyword tokens of
        its document it may copy."""
        mask = np.zeros((len(ids) - 1, len(ids)), dtype=bool)
        for keywords, positions in self.documents(ids):
            mask[np.ix_(positions[positions < len(ids) - 1], keywords)] = True
        return mask

    def alternates(self, ids) -> np.ndarray:
        """[T] int32: the second id each token offers the copy head (see the module doc)."""
        ids = np.asarray(ids)
        out = self.twins[ids].astype(np.int32)
        for keywords, _ in self.documents(ids):
            for n, j in enumerate(keywords):
                if self.bytes[ids[j]][:1] == b" " or (n and keywords[n - 1] == j - 1 and
                                                       self.bytes[ids[j - 1]][-1:] != b" "):
                    continue  # spaced already, or inside a word
                word, prev = bytearray(), j - 1
                for k in keywords[n:]:  # the word: contiguous keyword tokens up to the next space
                    piece = self.bytes[ids[k]]
                    if k != prev + 1 or (word and piece[:1] == b" "):
                        break
                    word, prev = word + piece, k
                first = self.enc.encode(" " + word.decode("utf-8", "replace"))[:1]
                if first and first[0] < len(self.twins):
                    out[j] = first[0]
        return out

    def prompt_keywords(self, ids) -> np.ndarray:
        """[T] bool: the keyword tokens of a prompt that ends where its title begins."""
        out = np.zeros(len(ids), dtype=bool)
        for keywords, _ in self.documents(ids):
            out[keywords] = True
        return out


def _variables(tf, n_embd: int, dim: int):
    with tf.compat.v1.variable_scope("copy", reuse=tf.compat.v1.AUTO_REUSE):
        init = tf.compat.v1.random_normal_initializer(stddev=0.02)
        wq = tf.compat.v1.get_variable("wq", [n_embd, dim], initializer=init)
        wk = tf.compat.v1.get_variable("wk", [2, n_embd, dim], initializer=init)  # as written, spaced twin
        wg = tf.compat.v1.get_variable("wg", [n_embd, 1], initializer=init)
        # Starts mostly closed: the head begins as a small change to the language model.
        bg = tf.compat.v1.get_variable("bg", [1], initializer=tf.compat.v1.constant_initializer(-2.0))
    return wq, wk, wg, bg


def _pointer(tf, h_query, h_keys, allowed, dim: int):
    """Gate [B, Q] and attention [B, Q, 2, K] of queries h_query [B, Q, n] over keys h_keys [B, K, n]
    where `allowed` [B, Q, K] (float32 in, float32 out; rows with nothing allowed get gate 0)."""
    n_embd = h_query.shape[-1]
    wq, wk, wg, bg = _variables(tf, n_embd, dim)
    q = tf.einsum("bqn,nd->bqd", h_query, wq) / np.float32(np.sqrt(dim))
    k = tf.einsum("bkn,cnd->bckd", h_keys, wk)
    scores = tf.einsum("bqd,bckd->bqck", q, k)
    scores = tf.where(allowed[:, :, tf.newaxis, :], scores, tf.fill(tf.shape(scores), np.float32(-1e9)))
    shape = tf.shape(scores)
    attn = tf.reshape(tf.nn.softmax(tf.reshape(scores, [shape[0], shape[1], -1])), shape)
    has = tf.reduce_any(allowed, axis=-1)
    gate = tf.where(has, tf.sigmoid(tf.einsum("bqn,no->bqo", h_query, wg)[..., 0] + bg), tf.zeros_like(has, tf.float32))
    return gate, attn


def target_logprob(tf, hidden, logits, tokens, mask, alt, dim: int):
    """log p(next token) [B, T-1] under the mixture, for `tokens` [B, T], the trunk's `hidden` [B, T, n]
    and `logits` [B, T-1, V] (targets only), `mask` [B, T-1, T] bool and the alternates `alt` [B, T]."""
    hidden = tf.cast(hidden, tf.float32)
    targets = tokens[:, 1:]
    lm = -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    gate, attn = _pointer(tf, hidden[:, :-1], hidden, mask, dim)
    ids = tf.stack([tokens, alt], axis=1)  # [B, 2, T]
    hit = tf.cast(tf.equal(ids[:, tf.newaxis], targets[:, :, tf.newaxis, tf.newaxis]), tf.float32)  # [B, T-1, 2, T]
    copied = tf.reduce_sum(attn * hit, axis=[2, 3])
    mixed = tf.math.log((1.0 - gate) * tf.exp(lm) + gate * copied + np.float32(1e-30))
    return tf.where(tf.reduce_any(mask, axis=-1), mixed, lm)


def step_logits(tf, h_step, logits, h_prompt, prompt_ids, prompt_alt, keywords, dim: int):
    """The mixture's log-probabilities [B, V] for one sampling step: h_step [B, n] (the step's hidden
    state), logits [B, V], the prompt's hidden states h_prompt [B, P, n], ids and alternates [B, P]
    and keyword positions `keywords` [B, P] bool. Rows whose prompt has no keyword get the
    language model's log-probabilities."""
    h_step = tf.cast(h_step, tf.float32)[:, tf.newaxis]
    gate, attn = _pointer(tf, h_step, tf.cast(h_prompt, tf.float32), keywords[:, tf.newaxis], dim)
    gate, attn = gate[:, 0], attn[:, 0]  # [B], [B, 2, P]
    ids = tf.stack([prompt_ids, prompt_alt], axis=1)  # [B, 2, P]
    batch, n_vocab = tf.shape(logits)[0], tf.shape(logits)[1]
    rows = tf.broadcast_to(tf.range(batch)[:, tf.newaxis, tf.newaxis], tf.shape(ids))
    copied = tf.scatter_nd(tf.stack([tf.reshape(rows, [-1]), tf.reshape(ids, [-1])], axis=1),
                           tf.reshape(attn, [-1]), tf.stack([batch, n_vocab]))
    mixed = (1.0 - gate)[:, tf.newaxis] * tf.nn.softmax(logits) + gate[:, tf.newaxis] * copied
    return tf.math.log(mixed + np.float32(1e-30))


def token_logprob(tf, hparams, tokens, precision, *, head_dim: int | None = None, alt=None, mask=None,
                  recompute: bool = False, devices: tuple[str, ...] = ()):
    """log p of each next token of `tokens` [B, T]: [B, T-1], the language model's, or with `head_dim`
    the copy head's mixture (`alt` [B, T] from Sections.alternates, `mask` [B, T-1, T] from copy_mask)."""
    from pipeline.core.transformer import forward

    out = forward(hparams, tokens, precision, recompute=recompute, targets_only=True, devices=devices)
    if head_dim is None:
        return -tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tokens[:, 1:], logits=out["logits"])
    return target_logprob(tf, out["hidden"], out["logits"], tokens, mask, alt, head_dim)


def head_variables(tf) -> list:
    """The trainable variables a checkpoint holds: the trunk's (`model/`) and the copy head's (`copy/`)."""
    return [v for v in tf.compat.v1.trainable_variables() if v.name.startswith(("model/", "copy/"))]
