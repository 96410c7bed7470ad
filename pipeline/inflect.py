"""Regular English inflections of a keyword, and the way back from a title word to its base forms.

The encoder gives a verb, adjective or adverb keyword as its lemma ('turn' from 'turning'), and
a keyword counts as present when a title word has it as text or as lemma (SPEC, decode). So
guidance may write 'turning' for 'turn' (`inflections`), and the in-process checks that have no
spaCy at hand (best-of-n's score, the title server) accept it through `base_forms`, a rule-based
inverse of the same suffix rules.

    inflections("turn")   -> ['turns', 'turned', 'turning']
    base_forms("turning") -> {'turning', 'turn', 'turne'}   (non-words among them do no harm)
"""
from __future__ import annotations

_VOWELS = set("aeiou")


def _doubles(word: str) -> bool:
    """Whether a suffix doubles the last consonant ('stop' -> 'stopped'): a short word ending
    consonant-vowel-consonant, not w, x or y."""
    return (len(word) <= 4 and len(word) >= 3 and word[-1] not in _VOWELS | set("wxy")
            and word[-2] in _VOWELS and word[-3] not in _VOWELS)


def inflections(word: str) -> list[str]:
    """The regular -s, -ed and -ing forms of a lower-case alphabetic `word` of 3+ letters
    (none otherwise). They are candidates: the caller keeps those real titles use."""
    if len(word) < 3 or not (word.isalpha() and word.islower()):
        return []
    if word.endswith("e"):
        return [word + "s", word + "d", word[:-1] + "ing"]
    if word.endswith("y") and word[-2] not in _VOWELS:
        return [word[:-1] + "ies", word[:-1] + "ied", word + "ing"]
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return [word + "es", word + "ed", word + "ing"]
    if _doubles(word):
        return [word + "s", word + word[-1] + "ed", word + word[-1] + "ing"]
    return [word + "s", word + "ed", word + "ing"]


def base_forms(word: str) -> set[str]:
    """`word` and every word whose `inflections` could give it (lower case)."""
    word = word.lower()
    out = {word}
    for suffix in ("s", "es", "d", "ed", "ing"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            stem = word[: -len(suffix)]
            out |= {stem, stem + "e"}
            if len(stem) >= 4 and stem[-1] == stem[-2]:
                out.add(stem[:-1])
    for suffix in ("ies", "ied"):
        if word.endswith(suffix) and len(word) > 4:
            out.add(word[:-3] + "y")
    return {w for w in out if word in inflections(w) or w == word}


def with_base_forms(title_words: set[str]) -> set[str]:
    """`title_words` plus the base forms of each (what a keyword check without spaCy accepts)."""
    return set().union(title_words, *(base_forms(w) for w in title_words))
