"""Stage 1, encode: a titles CSV -> keyword-tagged training text, in parallel on Ray.

    python keyword_encode.py --config configs/default.yaml [encode.repeat=5 ...]

The driver reads and validates the CSV in chunks (pipeline.encode.rows) and hands batches
of rows to Ray actors that each load spaCy once and run `nlp.pipe`; on a local Ray the
driver is one of the `workers` and encodes batches itself between dispatches (pool_shape).
Documents come back per batch and are written in batch order, then shuffled with the
run's seed, so the output is byte-identical whatever the number of workers.
"""
from __future__ import annotations

import random
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Literal, NamedTuple

from pipeline.core import actor_pool
from pipeline.core.errors import ConfigError
from pipeline.core.format import Document, build_document, clean_text, normalise_category, normalise_keyword
from pipeline.core.io import atomic_path, write_json
from pipeline.core.nlp import load_spacy
from pipeline.core.paths import RunPaths
from pipeline.encode.keywords import dedupe, extract_keywords, keyword_subsets, straighten_quotes
from pipeline.encode.rows import Row, iter_rows


@dataclass(frozen=True)
class EncodeConfig:
    """Options of the encode stage (the `encode:` section)."""

    input: str = "data/sample_titles.csv"
    category_field: str | None = "subreddit"
    title_field: str | None = "title"
    body_field: str | None = None
    keywords_field: str | None = None
    keyword_gen: Literal["title", "body", "both"] = "title"
    keyword_sep: str = ","
    repeat: int = 3
    min_keywords: int = 1
    max_keywords: int = 3
    keyword_length_max: int = 20
    max_field_chars: int = 2000
    spacy_model: str = "en_core_web_sm"
    workers: int = 2
    batch_rows: int = 1000
    csv_chunk_rows: int = 50_000
    ray_address: str | None = None

    def __post_init__(self) -> None:
        for key in ("repeat", "min_keywords", "max_keywords", "keyword_length_max", "max_field_chars",
                    "workers", "batch_rows", "csv_chunk_rows"):
            if getattr(self, key) < (0 if key == "min_keywords" else 1):
                raise ConfigError(f"{key}: must be at least {0 if key == 'min_keywords' else 1}")
        if self.min_keywords > self.max_keywords:
            raise ConfigError(f"min_keywords: {self.min_keywords} is more than max_keywords {self.max_keywords}")
        if self.title_field is None and self.body_field is None:
            raise ConfigError("title_field: a title or a body column is needed")
        if not self.keyword_sep:
            raise ConfigError("keyword_sep: must not be empty")


class BatchResult(NamedTuple):
    """What encoding one batch of rows gives back to the driver."""

    documents: list[str]
    keyword_counts: list[int]  # keywords in each document
    cleaned_fields: int  # fields whose text had tokens, fake markers, newlines or control characters removed
    rows_without_keywords: int


def _row_keywords(row: Row, ecfg: EncodeConfig, doc) -> list[str]:
    """User-supplied keywords when the config names a keywords column, else those spaCy finds in `doc`."""
    if ecfg.keywords_field:
        return dedupe(normalise_keyword(k) for k in (row.keywords or "").split(ecfg.keyword_sep))
    return extract_keywords(doc, ecfg.keyword_length_max)


def _keyword_text(row: Row, ecfg: EncodeConfig) -> str:
    parts = {"title": [row.title], "body": [row.body], "both": [row.title, row.body]}[ecfg.keyword_gen]
    return straighten_quotes(". ".join(p for p in parts if p))


def encode_rows(nlp, ecfg: EncodeConfig, seed: int, rows: list[Row]) -> BatchResult:
    """Documents for `rows`: keywords by the spec's rules, `repeat` augmented variants per row.

    Each row draws its subsets from its own RNG seeded by (seed, row index), so the
    result does not depend on how rows were split into batches or workers.
    """
    if ecfg.keywords_field:
        docs = [None] * len(rows)
    else:
        docs = nlp.pipe((_keyword_text(r, ecfg) for r in rows), batch_size=256)
    out = BatchResult([], [], 0, 0)
    cleaned = 0
    for row, doc in zip(rows, docs):
        keywords = _row_keywords(row, ecfg, doc)
        fields = {}
        # pipeline.encode.rows already removed control characters; each field changed counts once.
        cleaned += sum(name not in ("title", "body") for name in row.controls_removed)
        for name in ("title", "body"):
            raw = getattr(row, name)
            if raw is not None:
                fields[name] = clean_text(raw)
                cleaned += fields[name] != " ".join(raw.split()) or name in row.controls_removed
        category = normalise_category(row.category) if row.category is not None else None
        rng = random.Random(f"{seed}:{row.index}")
        subsets = keyword_subsets(keywords, ecfg.repeat, ecfg.min_keywords, ecfg.max_keywords, rng)
        for subset in subsets:
            out.documents.append(build_document(Document(category, subset, fields.get("title"), fields.get("body"))))
            out.keyword_counts.append(len(subset))
        out = out._replace(rows_without_keywords=out.rows_without_keywords + (not keywords))
    return out._replace(cleaned_fields=cleaned)


class EncodeWorker:
    """A Ray actor (or the driver's own worker): loads spaCy once, then encodes batch after batch."""

    def __init__(self, ecfg: EncodeConfig, seed: int):
        self.ecfg, self.seed = ecfg, seed
        self.nlp = None if ecfg.keywords_field else load_spacy(ecfg.spacy_model)

    def encode(self, rows: list[Row]) -> BatchResult:
        return encode_rows(self.nlp, self.ecfg, self.seed, rows)


def pool_shape(ecfg: EncodeConfig) -> tuple[int, bool]:
    """(Ray actors, whether the driver encodes too) for `ecfg.workers` workers.

    On a private local Ray the driver is one of the workers: it loads spaCy while the actors
    start and encodes batches between dispatches, so `workers - 1` actors are started and
    `workers: 1` encodes in the driver without Ray. On a cluster (`ray_address` set) every worker
    is an actor: the driver's machine need not be one the cluster may load, and it reads the input.
    """
    if ecfg.ray_address:
        return ecfg.workers, False
    return ecfg.workers - 1, True


def _in_flight(ecfg: EncodeConfig) -> int:
    # An actor's queue must outlast a batch the driver encodes before it dispatches again.
    return 3 if pool_shape(ecfg)[1] else 2


def _batches(path: Path, ecfg: EncodeConfig, skipped: Counter) -> Iterator[list[Row]]:
    """Batches of `batch_rows` rows in file order, but the last `2 * batch_rows * workers` rows in
    quarter batches, so that at the end no worker still has long batches queued while the others
    idle. The first CSV chunk is only as large as the first dispatch needs, so work starts at once.
    The split into batches does not change the output (each row has its own RNG)."""
    actors, driver = pool_shape(ecfg)
    tail, small = 2 * ecfg.batch_rows * ecfg.workers, max(1, ecfg.batch_rows // 4)
    first = tail + ecfg.batch_rows * (actors * _in_flight(ecfg) + driver)
    held: list[Row] = []
    for chunk in iter_rows(path, ecfg, skipped, first_chunk_rows=first):
        rows = held + chunk
        cut = max(0, (len(rows) - tail) // ecfg.batch_rows * ecfg.batch_rows)
        for i in range(0, cut, ecfg.batch_rows):
            yield rows[i:i + ecfg.batch_rows]
        held = rows[cut:]  # held back until it is known whether more rows follow
    for i in range(0, len(held), small):
        yield held[i:i + small]


def start_ray(ecfg: EncodeConfig) -> None:
    """Start (or join) Ray for `ecfg.workers` workers (pipeline.core.actor_pool.start_ray; ConfigError when it cannot).

    A local Ray is sized to `workers` CPUs, one of them the driver's (pool_shape).
    """
    actor_pool.start_ray(ecfg.workers, ecfg.ray_address, section="encode", actors=pool_shape(ecfg)[0])


def run_batches(ecfg: EncodeConfig, seed: int, batches: Iterator[list[Row]],
                on_done: Callable[[int, BatchResult], None]) -> None:
    """Encode `batches` on `workers` workers (pool_shape: Ray actors from pipeline.core.actor_pool, and on a
    local Ray the driver too); `on_done(batch_no, result)` in batch order."""
    actors, driver = pool_shape(ecfg)
    if actors:
        start_ray(ecfg)
    in_driver = (lambda: EncodeWorker(ecfg, seed).encode) if driver else None
    for batch_no, result in actor_pool.run_pool(actor_pool.ActorSpec(EncodeWorker, (ecfg, seed)), "encode",
                                                ((b,) for b in batches), actors, in_flight=_in_flight(ecfg),
                                                ordered=True, in_driver=in_driver):
        on_done(batch_no, result)


def encode(ecfg: EncodeConfig, seed: int, out_path: Path, stats_path: Path) -> dict:
    """Encode `ecfg.input` into `out_path` (shuffled with `seed`) and the stats JSON at `stats_path`.

    Returns the stats. Both files are written atomically, the stats last.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    skipped: Counter = Counter()
    results: dict[int, BatchResult] = {}
    batch_rows: dict[int, int] = {}
    with tqdm(desc="encode", unit="rows", disable=None) as bar:
        def counted(batches: Iterator[list[Row]]) -> Iterator[list[Row]]:
            for no, batch in enumerate(batches):
                batch_rows[no] = len(batch)
                yield batch

        def on_done(batch_no: int, result: BatchResult) -> None:
            results[batch_no] = result
            bar.update(batch_rows[batch_no])

        run_batches(ecfg, seed, counted(_batches(Path(ecfg.input), ecfg, skipped)), on_done)
    rows_done = sum(batch_rows.values())
    documents = [d for no in sorted(results) for d in results[no].documents]
    # A seeded global shuffle spreads a title's variants over the whole file.
    random.Random(seed).shuffle(documents)
    with atomic_path(out_path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.writelines(d + "\n" for d in documents)
    seconds = time.perf_counter() - started
    counts = [c for r in results.values() for c in r.keyword_counts]
    stats = {
        "input": str(ecfg.input),
        "output": str(out_path),
        "rows_read": rows_done + sum(skipped.values()),
        "rows_encoded": rows_done,
        "rows_skipped": dict(sorted((k, v) for k, v in skipped.items() if v)),
        "rows_without_keywords": sum(r.rows_without_keywords for r in results.values()),
        "fields_cleaned": sum(r.cleaned_fields for r in results.values()),
        "documents_written": len(documents),
        "keywords_per_document": {
            "mean": round(sum(counts) / len(counts), 3) if counts else 0.0,
            "histogram": {str(k): v for k, v in sorted(Counter(counts).items())},
        },
        "workers": ecfg.workers,
        "seed": seed,
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows_done / seconds, 1) if seconds else None,
    }
    write_json(stats_path, stats)
    return stats


def run(ecfg: EncodeConfig, seed: int, paths: RunPaths) -> str:
    """The stage: `ecfg.input` -> `paths.encoded` and `paths.encode_stats`. Returns the line the command prints."""
    stats = encode(ecfg, seed, paths.encoded, paths.encode_stats)
    return (f"encode: {stats['rows_encoded']} rows -> {stats['documents_written']} documents in "
            f"{stats['output']} ({stats['rows_per_second']} rows/s); skipped: {stats['rows_skipped'] or 'none'}")
