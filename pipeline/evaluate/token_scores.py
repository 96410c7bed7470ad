"""Where a sample's log-probability goes: the requested keywords' tokens against the rest.

    scorer = TokenScorer(checkpoint)               # the trained model, one scoring graph
    split = scorer.split(record["text"], record["keywords"])

The generated text is re-tokenised and run through the model once (teacher forcing); each token
after the prompt gets the model's own log-probability, and counts as a keyword token when its
characters overlap a requested keyword written as a whole word (any case, '-' as a space) in the
title. The rest is the title's other words and the end marker. This tells a guided title bent out
of shape (its other words unlikely) from one that only pays for the words it was asked to say.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from pipeline.core.format import BROKEN_MARKER, END_TOKEN, KEYWORD_JOIN, MARKER, SECTIONS


@dataclass
class Split:
    """Sums and counts of token log-probabilities: the keywords' tokens and all others."""

    keyword_sum: float = 0.0
    keyword_tokens: int = 0
    other_sum: float = 0.0
    other_tokens: int = 0

    def add(self, other: Split) -> None:
        self.keyword_sum += other.keyword_sum
        self.keyword_tokens += other.keyword_tokens
        self.other_sum += other.other_sum
        self.other_tokens += other.other_tokens

    def summary(self) -> dict:
        """Mean log-prob per keyword token and per other token, and keyword tokens' share of all, in %."""
        total = self.keyword_tokens + self.other_tokens
        return {
            "keyword_token_logprob": round(self.keyword_sum / self.keyword_tokens, 4) if self.keyword_tokens else None,
            "other_token_logprob": round(self.other_sum / self.other_tokens, 4) if self.other_tokens else None,
            "keyword_token_pct": round(100 * self.keyword_tokens / total, 2) if total else None,
        }


def keyword_spans(title: str, keywords: Iterable[str]) -> list[tuple[int, int]]:
    """Character spans of `title` where a keyword stands as a whole word or words (case-insensitive)."""
    spans = []
    for keyword in keywords:
        words = keyword.replace(KEYWORD_JOIN, " ").split()
        if words:
            pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)"
            spans += [m.span() for m in re.finditer(pattern, title, re.IGNORECASE)]
    return spans


class TokenScorer:
    """A trained model (gpt-2-simple checkpoint folder) loaded once for scoring texts token by token;
    a model trained with the copy head is scored by its mixed distribution (pipeline.core.copy_head)."""

    def __init__(self, model_path: Path):
        import tensorflow as tf
        from gpt_2_simple.src import encoder

        from pipeline.core.copy_head import HeadInputs, Sections, head_spec, head_variables, token_logprob
        from pipeline.core.transformer import Precision
        from pipeline.train import load_hparams, session_config

        self.enc = encoder.get_encoder(str(model_path))
        hp = load_hparams(model_path)
        spec = head_spec(model_path)
        self.graph = tf.Graph()
        with self.graph.as_default():
            self.tokens = tf.compat.v1.placeholder(tf.int32, [1, None])
            self.head = HeadInputs(tf, Sections(self.enc, hp.n_vocab), spec) if spec else None
            self.logprob = token_logprob(tf, hp, self.tokens, Precision(), head=self.head)[0]
            saver = tf.compat.v1.train.Saver(var_list=head_variables(tf))
            self.sess = tf.compat.v1.Session(graph=self.graph, config=session_config(tf))
            saver.restore(self.sess, tf.train.latest_checkpoint(str(model_path)))

    def logprobs(self, ids: list[int]) -> np.ndarray:
        """log p of each token of `ids` after the first, under the model."""
        feed = {self.tokens: [ids], **(self.head.feed([ids]) if self.head is not None else {})}
        return self.sess.run(self.logprob, feed)

    def split(self, text: str, keywords: Sequence[str]) -> Split:
        """The log-probabilities of what follows the prompt in `text` (a generated record's text: the
        prompt, the title and the end marker), split into keyword tokens and the rest."""
        start = text.index(MARKER + SECTIONS["title"]) + 2
        end = text.find(END_TOKEN, start)
        sample = text[start:] if end < 0 else text[start:end + len(END_TOKEN)]
        prompt_ids, sample_ids = self.enc.encode(text[:start]), self.enc.encode(sample)
        if not sample_ids:
            return Split()
        values = self.logprobs(prompt_ids + sample_ids)[len(prompt_ids) - 1:]
        spans = keyword_spans(sample.split(BROKEN_MARKER)[0], keywords)
        out, pos = Split(), 0
        for i, value in enumerate(values):
            # Decoding the prefix, not the token alone, keeps offsets right across multi-byte characters.
            left, pos = pos, len(self.enc.decode(sample_ids[: i + 1]))
            if any(left < b and pos > a for a, b in spans):
                out.keyword_sum += float(value)
                out.keyword_tokens += 1
            else:
                out.other_sum += float(value)
                out.other_tokens += 1
        return out

    def close(self) -> None:
        self.sess.close()


def split_records(model_path: Path, records: Iterable[dict]) -> dict[str, Split]:
    """{'guided'/'unguided'/'plain': Split} over generate `records` (those whose sample finished)."""
    scorer = TokenScorer(model_path)
    try:
        out: dict[str, Split] = {}
        for record in records:
            if record.get("finished"):
                name = {True: "guided", False: "unguided"}.get(record.get("guided"), "plain")
                out.setdefault(name, Split()).add(scorer.split(record["text"], record["keywords"]))
        return out
    finally:
        scorer.close()
