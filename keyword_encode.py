"""Stage 1 entry point: encode a titles CSV into keyword-tagged training text.

    python keyword_encode.py --config configs/default.yaml [section.key=value ...]

Also keeps the original scripts' Python API, `encode_keywords(...)`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from pipeline.core.format import END_TOKEN, START_TOKEN, check_tokens
from pipeline.encode import EncodeConfig, encode


def encode_keywords(csv_path: str, out_path: str = "csv_encoded.txt", category_field: str | None = None,
                    title_field: str | None = None, body_field: str | None = None,
                    keywords_field: str | None = None, keyword_gen: str = "title", keyword_sep: str = ",",
                    repeat: int = 3, max_keywords: int = 3, keyword_length_max: int = 20,
                    start_token: str = START_TOKEN, end_token: str = END_TOKEN, seed: int = 42,
                    workers: int = 2) -> dict:
    """Encode `csv_path` into `out_path` as the original `encode_keywords` did; returns the stats.

    The stats JSON is written beside the output (`<out_path>.stats.json`). The tokens are fixed by
    pipeline/core/format.py (every stage must agree on them), so other values are rejected.
    """
    check_tokens(start_token, end_token)
    ecfg = EncodeConfig(input=csv_path, category_field=category_field, title_field=title_field,
                        body_field=body_field, keywords_field=keywords_field, keyword_gen=keyword_gen,
                        keyword_sep=keyword_sep, repeat=repeat, max_keywords=max_keywords,
                        min_keywords=min(1, max_keywords), keyword_length_max=keyword_length_max,
                        workers=workers)
    return encode(ecfg, seed, Path(out_path), Path(f"{out_path}.stats.json"))


if __name__ == "__main__":
    from pipeline.stages import main

    raise SystemExit(main(["encode", *sys.argv[1:]]))
