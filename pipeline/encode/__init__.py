"""Stage 1, encode: a titles CSV -> keyword-tagged training text, on Ray.

    python keyword_encode.py --config configs/default.yaml     (or python -m pipeline.encode)

Modules, in the order data flows: rows (the input CSV in chunks, bad rows counted), keywords
(spaCy keyword rules and the per-row keyword subsets), stage (`run`: Ray workers -> encoded.txt).
"""
from pipeline.encode.keywords import extract_keywords, keyword_subsets, straighten_quotes
from pipeline.encode.stage import EncodeConfig, encode, run

__all__ = ["EncodeConfig", "encode", "extract_keywords", "keyword_subsets", "run", "straighten_quotes"]
