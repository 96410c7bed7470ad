"""The training text format: the one contract every stage shares.

One document per line:

    <|startoftext|>~`askreddit~^dog cat-food~@What is the weirdest thing your dog ate?<|endoftext|>

Start/end tokens, the section marker, the section characters and their order are
defined here and nowhere else; encode builds documents with `build_document`,
generate builds its prompt with `build_prefix`, decode parses with
`parse` (the one parser: decode, keyword_decode.py and the measures use it).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, NamedTuple

START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"
MARKER = "~"
# Canonical order: a document always lists its sections in this order.
SECTIONS: dict[str, str] = {"category": "`", "keywords": "^", "title": "@", "body": "}"}
SECTION_ORDER: tuple[str, ...] = tuple(SECTIONS)
KEYWORD_SEP = " "

# Control characters that are not whitespace (NUL, backspace, escape, DEL, C1 controls): they
# have no place in a title and are removed. Whitespace controls (tab, newline, \x1c-\x1f, \x85)
# are left to clean_text, which turns each run into one space.
CONTROL_CHARS = "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]"

_SECTION_CHARS = re.escape("".join(SECTIONS.values()))
# A run of markers right before a section character would open a section; removing
# only the markers keeps every other character a user typed ("~500 hours", "@home").
_FAKE_MARKER = re.compile(re.escape(MARKER) + "+(?=[" + _SECTION_CHARS + "])")
_TOKENS = re.compile(re.escape(START_TOKEN) + "|" + re.escape(END_TOKEN))
# The shortest beginning of the end marker that counts as one: a title never holds it (clean_text
# disarms it), so in a generated title it is the model starting to end and breaking off.
BROKEN_MARKER = END_TOKEN[:2]
_BROKEN_MARKER_RUN = re.compile(re.escape(BROKEN_MARKER[0]) + re.escape(BROKEN_MARKER[1]) + "+")
# The marker's last two characters: a model that writes the end without its '<|' ('Paris visit|>',
# 'a movieendoftext|>') also meant to end. Disarmed in training text as '<|' is.
BROKEN_END = END_TOKEN[-2:]
_BROKEN_END_RUN = re.compile(re.escape(BROKEN_END[0]) + "+" + re.escape(BROKEN_END[1]))
_MARKER_NAME = END_TOKEN[2:-2]  # 'endoftext', dropped when written right before a broken end
_MARKER_NAMES = (START_TOKEN[2:-2], _MARKER_NAME)
# What joins a keyword's words in the keyword section ('Big Bird' -> 'Big-Bird'); a title writes a space.
KEYWORD_JOIN = "-"
_WORD = re.compile(r"\w")
_SPACE_RUN = re.compile(r"\s+")
_NON_WORD_RUN = re.compile(r"[^\w]+")
_EDGE_PUNCT = re.compile(r"^[^\w]+|[^\w]+$")


def closes_title(piece: str) -> bool:
    """Whether a piece of generated text (a token's), written inside a title, would end the title for
    `parse` or begin what does: the end marker's first character, the section marker, the marker's
    end ('|>', or a '|' that a '>' would complete) or a marker's name ('endoftext' written without
    its '<|', which a model held off '<|' writes instead)."""
    return (END_TOKEN[0] in piece or MARKER in piece or BROKEN_END in piece or piece.endswith(BROKEN_END[0])
            or any(name in piece for name in _MARKER_NAMES))


def marker(section: str) -> str:
    """The two characters that open `section` (e.g. '~@' for the title)."""
    return MARKER + SECTIONS[section]


def clean_text(text: str) -> str:
    """Free text (title, body) made safe for the format.

    Start/end tokens are removed, a marker that would open a section is removed
    (the section character itself is kept), the '|' of a '<|' or a '|>' is removed (parse cuts
    a title there), and every whitespace run, newlines included, becomes one space.
    Everything else is kept as typed.
    """
    text = _TOKENS.sub(" ", text)
    text = _BROKEN_MARKER_RUN.sub(BROKEN_MARKER[0], text)
    text = _BROKEN_END_RUN.sub(BROKEN_END[1], text)
    text = _FAKE_MARKER.sub("", text)
    return _SPACE_RUN.sub(" ", text).strip()


def normalise_category(text: str) -> str:
    """Lower-cased, stripped, every run of non-word characters turned into '-'."""
    return _NON_WORD_RUN.sub("-", text.strip().lower())


def normalise_keyword(text: str) -> str:
    """Edge punctuation stripped, inner whitespace/punctuation runs turned into '-', case kept.

    'Big Bird' -> 'Big-Bird', '[Suggestion' -> 'Suggestion'; returns '' for pure punctuation.
    """
    return _NON_WORD_RUN.sub(KEYWORD_JOIN, _EDGE_PUNCT.sub("", text.strip()))


@dataclass(frozen=True)
class Document:
    """One document's sections; None means the section is absent (its column was not given)."""

    category: str | None = None
    keywords: tuple[str, ...] | None = None
    title: str | None = None
    body: str | None = None


def _section_text(doc: Document, section: str) -> str | None:
    value = getattr(doc, section)
    if value is None:
        return None
    if section == "keywords":
        return KEYWORD_SEP.join(value)
    return value


def build_document(doc: Document) -> str:
    """The document line (without newline). Fields must already be cleaned/normalised."""
    parts = [START_TOKEN]
    for section in SECTION_ORDER:
        text = _section_text(doc, section)
        if text is not None:
            parts.append(marker(section) + text)
    parts.append(END_TOKEN)
    return "".join(parts)


def build_prefix(category: str | None, keywords: list[str] | tuple[str, ...]) -> str:
    """The generation prompt: start token, category and keywords normalised as encode does, title marker.

    A category of None leaves the category section out (for models trained without one).
    """
    parts = [START_TOKEN]
    if category is not None:
        parts.append(marker("category") + normalise_category(category))
    kws = [k for k in (normalise_keyword(k) for k in keywords) if k]
    parts.append(marker("keywords") + KEYWORD_SEP.join(kws))
    parts.append(marker("title"))
    return "".join(parts)


def section_regex(section: str) -> re.Pattern[str]:
    """A regex whose group 1 captures `section`'s text within one document.

    The capture stops at the next section marker of *any* section or at the end
    token, so asking for one section never runs into the next one.
    """
    stop = "|".join(
        [re.escape(marker(s)) for s in SECTION_ORDER] + [re.escape(END_TOKEN), re.escape(START_TOKEN)]
    )
    return re.compile(re.escape(marker(section)) + r"(.*?)(?=" + stop + r"|\Z)", re.DOTALL)


_SECTION_RES = {s: section_regex(s) for s in SECTION_ORDER}


def first_document(text: str) -> tuple[str, bool]:
    """The first document in `text` (from its start token, or from the beginning).

    Returns (document text without tokens, whether it reached the end token).
    """
    start = text.find(START_TOKEN)
    body = text[start + len(START_TOKEN):] if start >= 0 else text
    end = body.find(END_TOKEN)
    next_start = body.find(START_TOKEN)
    if end >= 0 and (next_start < 0 or end < next_start):
        return body[:end], True
    if next_start >= 0:
        return body[:next_start], False
    return body, False


class Parsed(NamedTuple):
    """The first document of a text: its sections (raw text, as written) and whether it ended."""

    document: Document
    finished: bool
    cut_at_broken_marker: bool = False  # the title was cut at a broken-off end marker ('<|')


def parse(text: str) -> Parsed:
    """The sections of the first document in `text` (absent ones None) and whether it reached the end token.

    Each section's text stops at the next section marker or token, so a section never runs into
    the next one; keywords are split on whitespace. A title holding a broken-off end marker
    (BROKEN_MARKER, '<|', as in 'Why?<|endoftext more') is cut there: the model meant to end; so is
    one holding the marker's end (BROKEN_END, '|>', with the 'endoftext' written before it). A
    cut title with no word character left is '' (dropped as empty); `cut_at_broken_marker` says so.
    The cut does not make an unfinished document finished.
    """
    doc_text, finished = first_document(text)
    values: dict[str, object] = {}
    for section in SECTION_ORDER:
        m = _SECTION_RES[section].search(doc_text)
        if m is None:
            continue
        value = m.group(1)
        values[section] = tuple(value.split()) if section == "keywords" else value
    title = values.get("title")
    cut = -1
    if isinstance(title, str):
        found = [i for i in (title.find(BROKEN_MARKER), title.find(BROKEN_END)) if i >= 0]
        cut = min(found, default=-1)
    if cut >= 0:
        head = title[:cut].removesuffix(_MARKER_NAME) if title.startswith(BROKEN_END, cut) else title[:cut]
        values["title"] = head if _WORD.search(head) else ""
    return Parsed(Document(**values), finished, cut >= 0)


def read_documents(path: Path) -> Iterator[Document]:
    """The document of each line of a training text file (encode's output), streamed.

    Bytes that are not UTF-8 are replaced rather than fatal: the file is our own output, and a
    damaged line should cost that line's title only.
    """
    with Path(path).open(encoding="utf-8", errors="replace") as f:
        for line in f:
            yield parse(line).document


def check_tokens(start_token: str, end_token: str) -> None:
    """ValueError unless the tokens are the format's (the legacy APIs still take them as arguments)."""
    if (start_token, end_token) != (START_TOKEN, END_TOKEN):
        raise ValueError(f"start/end tokens are fixed by pipeline/core/format.py: {START_TOKEN!r}, {END_TOKEN!r}")
