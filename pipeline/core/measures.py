"""Per-title quality measures: keyword coverage, novelty, distinct-n.

Keyword coverage follows CommonGen's concept coverage: a keyword is present when
each of its words appears in the title, either as written or as the lemma spaCy
gives a title token. Matching ignores case. A keyword's words are its runs of word
characters, so `cat-food` needs `cat` and `food`, which is exactly how encode
joined the words of a multi-word keyword.

Looking words up as written needs no model, so spaCy only runs on the titles where
that leaves some keyword word missing (`Lemmatiser`).
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from pipeline.core.errors import InputError
from pipeline.core.format import read_documents

_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    """The lower-cased runs of word characters in `text`."""
    return set(_WORD.findall(text.lower()))


def word_list(text: str) -> list[str]:
    """The lower-cased runs of word characters in `text`, in order: the words a keyword needs in a
    title (`Big-Bird` -> ['big', 'bird']) and the tokens distinct-n counts."""
    return _WORD.findall(text.lower())


def needs_lemmas(keywords: Sequence[str], title_words: set[str]) -> bool:
    """Whether some word of some keyword is missing from `title_words` (so lemmas could still find it)."""
    return any(w not in title_words for k in keywords for w in word_list(k))


class Coverage(NamedTuple):
    """Which requested keywords a title contains."""

    present: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def ratio(self) -> float | None:
        """Share of requested keywords present; None when none were requested."""
        total = len(self.present) + len(self.missing)
        return len(self.present) / total if total else None


def coverage(keywords: Sequence[str], title_words: set[str]) -> Coverage:
    """Split `keywords` into those whose every word is in `title_words` and the rest.

    A keyword with no word characters at all cannot be checked and counts as missing.
    """
    present, missing = [], []
    for keyword in keywords:
        kw_words = word_list(keyword)
        (present if kw_words and all(w in title_words for w in kw_words) else missing).append(keyword)
    return Coverage(tuple(present), tuple(missing))


class Lemmatiser:
    """Adds spaCy's lemmas to title word sets; loads the model on first use only.

    Only the components lemmas need run (the parser and NER are disabled).
    """

    def __init__(self, model_name: str, batch_size: int) -> None:
        self.model_name = model_name
        self.batch_size = batch_size
        self._nlp = None
        self.titles_lemmatised = 0

    def add_lemmas(self, titles: Sequence[str], title_words: list[set[str]]) -> None:
        """Extend `title_words[i]` in place with the token texts and lemmas of `titles[i]`."""
        if not titles:
            return
        if self._nlp is None:
            from pipeline.core.nlp import load_spacy

            self._nlp = load_spacy(self.model_name, disable=("parser", "ner", "senter"), key="decode.spacy_model")
        for doc, found in zip(self._nlp.pipe(titles, batch_size=self.batch_size), title_words):
            for token in doc:
                # A token's lemma may hold several words ("n't" -> "not", "e-mail"), so split it too.
                found.update(words(token.lemma_))
                found.update(words(token.text))
        self.titles_lemmatised += len(titles)


def novelty_key(title: str) -> str:
    """What two titles must share to count as the same title: the text, ignoring case."""
    return title.casefold()


def training_titles(encoded_path: Path) -> set[str]:
    """The novelty keys of every title in the encoded training text at `encoded_path`."""
    if not encoded_path.is_file():
        raise InputError(f"training text {encoded_path} does not exist; run `make encode` first "
                         f"(decode needs it to mark titles copied from the training data)")
    return {novelty_key(doc.title.strip()) for doc in read_documents(encoded_path) if doc.title and doc.title.strip()}


def ngrams(tokens: Sequence[str], n: int) -> Iterable[tuple[str, ...]]:
    """The n-grams of `tokens`, in order."""
    return zip(*(tokens[i:] for i in range(n)))


class DistinctCounter:
    """distinct-n (Li et al., 2016): distinct n-grams / all n-grams over a set of titles."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.total = 0
        self.seen: set[tuple[str, ...]] = set()

    def add(self, title: str) -> None:
        grams = list(ngrams(word_list(title), self.n))
        self.total += len(grams)
        self.seen.update(grams)

    @property
    def value(self) -> float | None:
        """The ratio, or None when the titles had no n-gram at all."""
        return len(self.seen) / self.total if self.total else None
