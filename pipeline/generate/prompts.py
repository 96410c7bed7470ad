"""Generation prompts: (category, keywords, count) rows from a YAML or CSV file, or a cross product.

YAML: a list (or a mapping with a `prompts:` list) of rows such as
`{category: askreddit, keywords: [dog, cat food], count: 10}`; `keywords` may also be
one comma-separated string, `category` may be null (a model trained without
categories), `count` defaults to `generate.count`.
CSV: a header with `category`, `keywords` (comma-separated inside the field) and
optionally `count`.
Categories and keywords are normalised exactly as encode normalises them.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from pipeline.core.errors import InputError, yaml_error
from pipeline.core.format import build_prefix, normalise_category, normalise_keyword


class GenerateConfig(Protocol):
    """What prompts are read from in the `generate:` section (pipeline.generate.stage.GenerateConfig owns it)."""

    prompts_file: str | None
    categories: tuple[str, ...]
    keyword_sets: tuple[tuple[str, ...], ...]
    count: int

_KEYS = {"category", "keywords", "count"}
# Keywords in one field or string are separated by commas (a keyword itself may have spaces).
KEYWORD_SEP = ","


@dataclass(frozen=True)
class Prompt:
    """One prompt row, normalised; `prefix` is the text the model continues."""

    category: str | None
    keywords: tuple[str, ...]
    count: int

    @property
    def prefix(self) -> str:
        return build_prefix(self.category, self.keywords)


def make_prompt(category: object, keywords: object, count: object, where: str) -> Prompt:
    """A Prompt from raw values; `where` names the row in error messages."""
    if category is not None and not isinstance(category, str):
        raise InputError(f"{where}: category must be text or null, got {category!r}")
    if isinstance(keywords, str):
        keywords = keywords.split(KEYWORD_SEP)
    if keywords is None:
        keywords = []
    if not isinstance(keywords, (list, tuple)) or not all(isinstance(k, (str, int, float)) for k in keywords):
        raise InputError(f"{where}: keywords must be a list of words or a comma-separated string, got {keywords!r}")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InputError(f"{where}: count must be a positive integer, got {count!r}")
    cat = normalise_category(category) if category is not None else None
    if cat is not None and not cat.strip("-"):
        raise InputError(f"{where}: category {category!r} normalises to nothing")
    kws = tuple(k for k in (normalise_keyword(str(k)) for k in keywords) if k)
    return Prompt(category=cat, keywords=kws, count=count)


def _yaml_rows(path: Path) -> list[dict]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (at byte offset {exc.start})") from None
    except yaml.YAMLError as exc:
        raise InputError(yaml_error(path, exc)) from None
    if isinstance(data, dict) and set(data) == {"prompts"}:
        data = data["prompts"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of prompts (or a mapping with a 'prompts' list)")
    return data


def _csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        columns = set(reader.fieldnames or ())
        if not {"category", "keywords"} <= columns:
            raise InputError(f"{path}: needs columns category and keywords (optionally count); "
                             f"found {', '.join(sorted(columns)) or 'none'}")
        rows = []
        for row in reader:
            row = {k: v for k, v in row.items() if k in _KEYS}
            if row.get("category", "") == "":
                row["category"] = None
            if "count" in row:
                text = (row["count"] or "").strip()
                if text.isdigit():
                    row["count"] = int(text)
                elif text == "":
                    del row["count"]
            rows.append(row)
        return rows


def load_prompts_file(path: Path, default_count: int) -> list[Prompt]:
    """The prompts in YAML or CSV file `path` (chosen by its suffix)."""
    if not path.is_file():
        raise InputError(f"prompts file {path} does not exist")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        rows = _yaml_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise InputError(f"{path}: a prompts file is .yaml, .yml or .csv")
    prompts = []
    for i, row in enumerate(rows, start=1):
        where = f"{path}: prompt {i}"
        if not isinstance(row, dict):
            raise InputError(f"{where}: expected a mapping with category, keywords, count; got {row!r}")
        unknown = sorted(set(row) - _KEYS)
        if unknown:
            raise InputError(f"{where}: unknown key {unknown[0]!r} (known: category, keywords, count)")
        prompts.append(make_prompt(row.get("category"), row.get("keywords"), row.get("count", default_count), where))
    if not prompts:
        raise InputError(f"{path}: no prompts")
    return prompts


def load_prompts(gcfg: GenerateConfig) -> list[Prompt]:
    """The job's prompts: from `gcfg.prompts_file`, else the cross product of categories and keyword sets."""
    if gcfg.prompts_file:
        return load_prompts_file(Path(gcfg.prompts_file), gcfg.count)
    categories: tuple[str | None, ...] = gcfg.categories or (None,)
    keyword_sets: tuple[tuple[str, ...], ...] = gcfg.keyword_sets or ((),)
    return [make_prompt(c, list(k), gcfg.count, f"generate.categories x keyword_sets ({c!r}, {list(k)!r})")
            for c in categories for k in keyword_sets]


def split_by_budget(prompts: list[Prompt], checkpoint: Path, length: int) -> tuple[list[Prompt], list[Prompt], int]:
    """(prompts that fit, prompts that do not, the budget): a prompt fits when its tokens leave the
    model's context room for `length` new tokens. A longer one cannot be sampled at all (its positions
    run past the model's) or only cut short, so the generate stage skips and counts it."""
    from gpt_2_simple.src import encoder

    from pipeline.train import load_hparams

    if not (checkpoint / "encoder.json").is_file():
        raise InputError(f"no checkpoint in {checkpoint} (run the train stage first)")
    budget = load_hparams(checkpoint).n_ctx - length
    enc = encoder.get_encoder(str(checkpoint))
    fits = [len(enc.encode(p.prefix)) <= budget for p in prompts]
    return [p for p, ok in zip(prompts, fits) if ok], [p for p, ok in zip(prompts, fits) if not ok], budget
