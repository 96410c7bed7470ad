"""Stage 4, decode: raw generated samples -> clean, de-duplicated CSV with per-title measures.

    python keyword_decode.py --config configs/default.yaml [decode.keep_unfinished=true ...]

Sections are cut out of the first document of each sample with the regexes of
pipeline/core/format.py. Samples are streamed in chunks of `batch_size`: decoded, checked
for keyword coverage and novelty (pipeline.core.measures), and added to an on-disk
de-duplicating store (pipeline.decode.dedupe), so memory does not grow with the number of
samples. The CSV is written from the store at the end, atomically, with a stats JSON.
"""
from __future__ import annotations

import contextlib
import csv
import itertools
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, NamedTuple, Sequence

from pipeline.core.errors import ConfigError
from pipeline.core.format import CONTROL_CHARS, END_TOKEN, KEYWORD_SEP, SECTION_ORDER, clean_text, parse
from pipeline.core.io import atomic_path, write_json
from pipeline.core.measures import Lemmatiser, coverage, needs_lemmas, novelty_key, training_titles, words
from pipeline.core.paths import RunPaths
from pipeline.decode.dedupe import DedupeStore
from pipeline.decode.keyword_filter import FilterRule, FilterTally, KeywordFilter
from pipeline.decode.samples import read_records

# Record fields copied to the CSV when the generate stage writes them; the report compares their groups.
GROUP_FIELDS = ("guided",)
MEASURE_COLUMNS = ("n_keywords", "keyword_coverage", "all_keywords_present", "missing_keywords", "novel")
# The longest title kept: encode's default max_field_chars, so never longer than a training title
# can be. A sample that rambles on without a section marker is no title (and once made a 250,000-
# character CSV field that the csv module refuses to read back).
MAX_TITLE_CHARS = 2000
_CONTROL = re.compile(CONTROL_CHARS)


@dataclass(frozen=True)
class DecodeConfig:
    """Options of the decode stage (the `decode:` section)."""

    sections: tuple[str, ...] = ("title",)  # CSV always has category and keywords too; 'body' adds a column
    keep_unfinished: bool = False  # keep samples that never produced the end token (their text runs to the end)
    spacy_model: str = "en_core_web_sm"  # lemmas for keyword coverage
    batch_size: int = 1000  # samples decoded (and titles lemmatised) at a time
    keyword_filter: FilterRule = "off"  # 'all' / 'at_least': keep only titles with the requested keywords
    keyword_filter_min: int = 1  # for 'at_least': this many keywords (or all, when fewer were requested)

    def __post_init__(self) -> None:
        unknown = [s for s in self.sections if s not in SECTION_ORDER]
        if unknown:
            raise ConfigError(f"sections: {unknown[0]!r} is not one of {', '.join(SECTION_ORDER)}")
        if len(set(self.sections)) != len(self.sections):
            raise ConfigError("sections: a section is listed twice")
        if "title" not in self.sections:
            raise ConfigError("sections: must include 'title' (the CSV and the report are about titles)")
        for key in ("batch_size", "keyword_filter_min"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}: must be at least 1")


class Decoded(NamedTuple):
    """The requested sections of one sample's first document, and whether it reached the end token."""

    values: dict[str, str]
    finished: bool
    fields_cleaned: int = 0  # requested sections that had control characters removed
    cut_at_broken_marker: bool = False  # the title was cut at a broken-off end marker (format.parse)


def canonical_sections(sections: Iterable[str]) -> tuple[str, ...]:
    """`sections` in the format's order; ValueError naming an unknown one."""
    sections = list(sections)
    for s in sections:
        if s not in SECTION_ORDER:
            raise ValueError(f"sections: {s!r} is not one of {', '.join(SECTION_ORDER)}")
    return tuple(s for s in SECTION_ORDER if s in sections)


def _tidy(section: str, raw: str | tuple[str, ...] | None) -> str:
    if raw is None:
        return ""
    if section == "keywords":
        return KEYWORD_SEP.join(raw)
    if section == "category":
        return raw.strip()
    # Training titles went through clean_text, so generated ones are compared in the same form.
    return clean_text(raw)


def extract(text: str, sections: Sequence[str]) -> Decoded:
    """The `sections` of the first document in `text` ('' for an absent one), tidied (pipeline.core.format.parse)."""
    doc, finished, cut = parse(text)
    values = {section: _tidy(section, getattr(doc, section)) for section in sections}
    return Decoded(values, finished, cut_at_broken_marker=cut and "title" in sections)


def decode_sample(text: str, sections: Sequence[str], keep_unfinished: bool,
                  finished: bool | None = None) -> tuple[Decoded, str | None]:
    """One raw sample decoded, and why it is dropped (None when kept): the rule every decoder follows.

    finished: the generator's own flag, when it wrote one. A generator that cut the end token off
    the text says so in its flag; when the token is in the text, the text decides (a new start
    token before it means the first document never ended).
    """
    # Control characters (NUL, escape...) never belong in a title; a byte-level model can make them.
    clean = _CONTROL.sub("", text)
    sample = extract(clean, sections)
    if clean != text:
        raw = extract(text, sections).values
        sample = sample._replace(fields_cleaned=sum(raw[s] != sample.values[s] for s in sections))
    if finished is True and END_TOKEN not in text:
        sample = sample._replace(finished=True)
    if not sample.finished and sample.values.get("title", "").endswith(END_TOKEN[0]):
        # The length limit cut the end marker after its first character: that '<' is no part of the title.
        values = {**sample.values, "title": sample.values["title"][:-1].rstrip()}
        sample = sample._replace(values=values)
    return sample, drop_reason(sample, keep_unfinished)


def finished_title(text: str, finished: bool) -> tuple[str, str | None]:
    """The title decode makes of one generated sample, and why decode drops the sample (None: kept).

    The decode stage's rule for one sample at a time: titles on demand (pipeline.serve) use it, so a
    served title is cleaned exactly as a bulk one. finished: the generator's own flag.
    """
    sample, reason = decode_sample(text, ("title",), keep_unfinished=False, finished=finished)
    return sample.values["title"], reason


def drop_reason(sample: Decoded, keep_unfinished: bool) -> str | None:
    """Why `sample` is dropped ('unfinished', 'empty_title', 'too_long'), or None when it is kept."""
    if not sample.finished and not keep_unfinished:
        return "unfinished"
    if "title" in sample.values and not sample.values["title"]:
        return "empty_title"
    if len(sample.values.get("title", "")) > MAX_TITLE_CHARS:
        return "too_long"
    return None


class _Tally:
    """Samples and valid samples counted per value of each group dimension."""

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))

    def add(self, group: dict[str, str], valid: bool, logprob: float | None) -> None:
        """Count a sample; `logprob` (the generator's mean log-prob per token) is summed for valid ones."""
        for dim, value in group.items():
            counts = self.groups[dim][value]
            counts["samples"] += 1
            counts["valid"] += int(valid)
            if valid and logprob is not None:
                counts["logprob_sum"] += logprob
                counts["logprob_n"] += 1

    def as_dict(self) -> dict:
        """{dim: {value: {samples, valid, mean_logprob}}}."""
        return {dim: {v: _counts(c) for v, c in sorted(vals.items())} for dim, vals in self.groups.items()}


def _counts(c: Counter) -> dict:
    n = c.get("logprob_n", 0)
    return {"samples": c["samples"], "valid": c["valid"],
            "mean_logprob": round(c["logprob_sum"] / n, 4) if n else None}


def _measure_rows(chunk: list[tuple[dict, dict[str, str]]], group_fields: tuple[str, ...], known: set[str],
                  lemmatiser: Lemmatiser) -> list[tuple[str, ...]]:
    """Store rows (key columns then MEASURE_COLUMNS) for a chunk of (record, decoded sections)."""
    titles = [values["title"] for _, values in chunk]
    keywords = [values["keywords"].split() for _, values in chunk]
    found = [words(t) for t in titles]
    todo = [i for i in range(len(chunk)) if needs_lemmas(keywords[i], found[i])]
    lemmatiser.add_lemmas([titles[i] for i in todo], [found[i] for i in todo])
    rows = []
    for (record, values), kws, title_words in zip(chunk, keywords, found):
        cov = coverage(kws, title_words)
        key = tuple(values.values()) + tuple(_field(record, f) for f in group_fields)
        ratio = "" if cov.ratio is None else f"{cov.ratio:.4f}"
        rows.append(key + (str(len(kws)), ratio, _flag(not cov.missing), KEYWORD_SEP.join(cov.missing),
                           _flag(novelty_key(values["title"]) not in known)))
    return rows


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _field(record: dict, name: str) -> str:
    value = record.get(name)
    if value is None:
        return ""
    return _flag(value) if isinstance(value, bool) else str(value)


def _decode_record(record: dict, sections: tuple[str, ...], group_fields: tuple[str, ...],
                   keep_unfinished: bool) -> tuple[Decoded, str | None, dict[str, str]]:
    """One record's decoded sections, why it is dropped (or None), and its value in each group dimension."""
    sample, reason = decode_sample(record["text"], sections, keep_unfinished, record.get("finished"))
    group = {"category": sample.values["category"], "n_keywords": str(len(sample.values["keywords"].split()))}
    group.update({f: _field(record, f) for f in group_fields})
    return sample, reason, group


def decode(dcfg: DecodeConfig, generated: Path, encoded: Path, out_csv: Path, rejected_csv: Path,
           stats_path: Path) -> dict:
    """Decode the JSON Lines samples in `generated` into `out_csv`; novelty is checked against `encoded`.

    Titles the keyword filter turns away go to `rejected_csv` (removed when the filter is off).
    Returns the stats also written to `stats_path`: samples read, valid, dropped per
    reason, unique rows, and samples/valid per category, keyword count and group field.
    The stats are written before the CSV is renamed into place, so a finished CSV always has them.
    """
    started = time.perf_counter()
    sections = canonical_sections(set(dcfg.sections) | {"category", "keywords"})
    known = training_titles(encoded)
    lemmatiser = Lemmatiser(dcfg.spacy_model, dcfg.batch_size)
    records = read_records(generated)
    first = next(records, None)
    group_fields = tuple(f for f in GROUP_FIELDS if isinstance(first, dict) and f in first)
    dropped: Counter = Counter()
    tally = _Tally()
    samples = kept_unfinished = fields_cleaned = cut_at_broken_marker = 0
    with DedupeStore(out_csv, sections + group_fields, MEASURE_COLUMNS) as store:
        stream = itertools.chain([first] if first is not None else [], records)
        while batch := list(itertools.islice(stream, dcfg.batch_size)):
            chunk = []
            for record in batch:
                samples += 1
                if isinstance(record, str):
                    dropped[record] += 1
                    continue
                sample, reason, group = _decode_record(record, sections, group_fields, dcfg.keep_unfinished)
                tally.add({**group, "all": ""}, reason is None, record.get("logprob"))
                fields_cleaned += sample.fields_cleaned
                cut_at_broken_marker += sample.cut_at_broken_marker
                if reason:
                    dropped[reason] += 1
                    continue
                kept_unfinished += int(not sample.finished)
                chunk.append((record, sample.values))
            store.add_many(_measure_rows(chunk, group_fields, known, lemmatiser))
        valid, unique = samples - sum(dropped.values()), len(store)
        groups = tally.as_dict()
        overall = groups.pop("all", {}).get("", {})
        stats = {
            "input": str(generated), "output": str(out_csv), "training_text": str(encoded),
            "samples": samples, "valid": valid, "kept_unfinished": kept_unfinished, "fields_cleaned": fields_cleaned,
            "cut_at_broken_marker": cut_at_broken_marker,
            "dropped": dict(sorted(dropped.items())), "unique_rows": unique, "duplicates": valid - unique,
            "training_titles": len(known), "titles_lemmatised": lemmatiser.titles_lemmatised,
            "mean_logprob": overall.get("mean_logprob"), "groups": groups,
        }
        kfilter = KeywordFilter(dcfg.keyword_filter, dcfg.keyword_filter_min)
        with atomic_path(out_csv) as tmp:
            filtered = _write_csvs(store, tmp, rejected_csv, kfilter)
            if filtered is not None:
                stats["keyword_filter"] = filtered
            seconds = time.perf_counter() - started
            stats["seconds"] = round(seconds, 3)
            stats["samples_per_second"] = round(samples / seconds, 1) if seconds else None
            write_json(stats_path, stats)
    return stats


def _write_csvs(store: DedupeStore, out_tmp: Path, rejected: Path, kfilter: KeywordFilter) -> dict | None:
    """Write the store's rows to `out_tmp`, or, with an active filter, those it rejects to `rejected`.

    Returns the filter's counts and yield (None when it is off; a stale rejected file is removed).
    """
    columns = store.columns + ("count",)
    n_kw, missing = columns.index("n_keywords"), columns.index("missing_keywords")
    group = columns.index(GROUP_FIELDS[0]) if GROUP_FIELDS[0] in columns else None
    tally = FilterTally()
    with contextlib.ExitStack() as stack:
        out = csv.writer(stack.enter_context(out_tmp.open("w", encoding="utf-8", newline="")))
        out.writerow(columns)
        rejects = None
        if kfilter.active:
            rejected_tmp = stack.enter_context(atomic_path(rejected))
            rejects = csv.writer(stack.enter_context(rejected_tmp.open("w", encoding="utf-8", newline="")))
            rejects.writerow(columns)
        else:
            rejected.unlink(missing_ok=True)
        for row, count in store.rows():
            kept = kfilter.passes(int(row[n_kw]), row[missing])
            (out if kept else rejects).writerow(row + (count,))
            if kfilter.active:
                keys = ("all",) if group is None else ("all", f"{GROUP_FIELDS[0]}={row[group]}")
                tally.add(keys, kept, count)
    return tally.as_dict(kfilter) if kfilter.active else None


def run(dcfg: DecodeConfig, seed: int, paths: RunPaths) -> str:
    """The stage: `paths.generated` (novelty against `paths.encoded`) -> `paths.decoded`,
    `paths.decoded_rejected` and `paths.decode_stats`. Returns the line the command prints."""
    stats = decode(dcfg, paths.generated, paths.encoded, paths.decoded, paths.decoded_rejected, paths.decode_stats)
    return (f"decode: {stats['samples']} samples, {stats['valid']} valid, {stats['unique_rows']} unique rows -> "
            f"{stats['output']} ({stats['samples_per_second']} samples/s); dropped: {stats['dropped'] or 'none'}")
