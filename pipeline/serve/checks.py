"""One check of a title request, shared by the Python API, the one-shot command and the HTTP API.

A bad value raises InputError whose message starts with the field it is about
(`n: must be an integer from 1 to 16, got '2'`), in the same words whichever door the request
came through. Types are strict: a string is not a number, a number is not a flag. A value is
echoed only as a short ASCII repr, so nothing a client sent can break the answer that refuses it.
"""
from __future__ import annotations

import math

from pipeline.config import ServeConfig
from pipeline.core.errors import InputError
from pipeline.core.format import normalise_category, normalise_keyword
from pipeline.generate import Prompt

# Seeds the user may give: the sampler feeds them as int32.
MAX_SEED = 2**31 - 1
# Below this the logits scale (config temperature / requested) gets large enough to overflow float32.
MIN_TEMPERATURE = 0.05
# How much of a refused value an error message shows.
_SHOWN_CHARS = 40


def shown(value: object) -> str:
    """`value` as a short, printable, ASCII-only repr."""
    text = ascii(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _text(field: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str):
        raise InputError(f"{field}: must be text, got {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{field}: is not valid Unicode text (it holds a lone surrogate)") from None
    if len(value) > max_chars:
        raise InputError(f"{field}: at most {max_chars} characters, got {len(value)}")
    return value


def _integer(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{field}: must be an integer from {low} to {high}, got {shown(value)}")
    return value


def check_request(limits: ServeConfig, category: object, keywords: object, n: object, seed: object = None,
                  guided: object = True, temperature: object = None) -> tuple[Prompt, int | None, bool, float | None]:
    """(prompt, seed, guided, temperature) of a request, normalised as encode normalises training text.

    limits: the `serve:` section whose request limits (max_n, max_keywords, ...) apply.
    category: text, or None for no category; keywords: a list of texts, one comma-separated text,
    or None; n: titles wanted; seed: None or an integer; guided: a flag; temperature: None (the
    run's) or a number. Raises InputError naming the first bad field.
    """
    cat = None
    if category is not None:
        cat = normalise_category(_text("category", category, limits.max_category_chars))
        if not cat.strip("-"):
            raise InputError(f"category: {shown(category)} has no letters or digits")
    if keywords is None:
        keywords = []
    elif isinstance(keywords, str):
        keywords = [k for k in keywords.split(",") if k.strip()]
    if not isinstance(keywords, (list, tuple)):
        raise InputError(f"keywords: must be a list of texts or one comma-separated text, got {_kind(keywords)}")
    if len(keywords) > limits.max_keywords:
        raise InputError(f"keywords: at most {limits.max_keywords}, got {len(keywords)}")
    kws = []
    for i, keyword in enumerate(keywords):
        normal = normalise_keyword(_text(f"keywords[{i}]", keyword, limits.max_keyword_chars))
        if not normal:
            raise InputError(f"keywords[{i}]: {shown(keyword)} has no letters or digits")
        kws.append(normal)
    count = _integer("n", n, 1, limits.max_n)
    if seed is not None:
        seed = _integer("seed", seed, 0, MAX_SEED)
    if not isinstance(guided, bool):
        raise InputError(f"guidance: must be true or false, got {shown(guided)}")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not math.isfinite(temperature) \
                or not MIN_TEMPERATURE <= temperature <= limits.max_temperature:
            raise InputError(f"temperature: must be a number from {MIN_TEMPERATURE} to {limits.max_temperature}, "
                             f"got {shown(temperature)}")
        temperature = float(temperature)
    return Prompt(category=cat, keywords=tuple(kws), count=count), seed, guided, temperature
