"""Monthly Reddit submission dumps: streaming them in as Arrow batches, and writing them.

Two formats: zstandard-compressed NDJSON (`RS_2019-08.zst`; plain `.ndjson`/`.jsonl`
too) and Parquet. Pushshift-style `.zst` dumps are written with a 2 GiB window
(`zstd --long=31`), which DuckDB's own zstd reader and zstandard's default decoder both
refuse, so the NDJSON is decompressed here with `max_window_size=2**31` and parsed a
block at a time by pyarrow. Only the six fields the export uses are kept, and nothing
ever holds the whole file: memory is one block plus the decoder's window.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Iterator

from pipeline.core.errors import InputError
from pipeline.core.io import atomic_path

if TYPE_CHECKING:
    import pyarrow as pa

# The fields the export reads, with their Arrow types; everything else in a record is ignored.
FIELDS: tuple[tuple[str, str], ...] = (
    ("subreddit", "string"), ("title", "string"), ("score", "int64"),
    ("author", "string"), ("over_18", "bool"), ("created_utc", "float64"),
)
# A Parquet dump must have these; created_utc (only a tie-breaker) may be absent.
REQUIRED_COLUMNS = ("subreddit", "title", "score", "author", "over_18")
JSON_SUFFIXES = (".zst", ".ndjson", ".jsonl")
PARQUET_SUFFIXES = (".parquet",)
MAX_WINDOW = 2**31
# Compressed bytes fed to the decoder at a time: small, because the decoder returns all the
# output of what it is fed, and NDJSON dumps expand about tenfold.
_COMPRESSED_READ = 1 << 17
_INT = re.compile(r"-?[0-9]+")
_INT64_MAX = 2**63 - 1


def schema() -> pa.Schema:
    """The Arrow schema of the batches `iter_submissions` yields."""
    import pyarrow as pa

    return pa.schema([(name, pa.type_for_alias(alias)) for name, alias in FIELDS])


def _decompressed(path: Path, on_progress: Callable[[int], None]) -> Iterator[bytes]:
    """The decompressed bytes of a .zst file, frame after frame; InputError if cut short."""
    import zstandard

    dctx = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW)
    dobj, in_frame = dctx.decompressobj(), False
    with open(path, "rb") as fh:
        while chunk := fh.read(_COMPRESSED_READ):
            on_progress(len(chunk))
            while chunk:
                try:
                    out = dobj.decompress(chunk)
                except zstandard.ZstdError as exc:
                    raise InputError(f"{path}: not a readable zstandard file ({exc})") from None
                in_frame = True
                if out:
                    yield out
                # A dump may hold several frames: start a new decoder on what follows this one.
                chunk = dobj.unused_data if dobj.eof else b""
                if dobj.eof:
                    dobj, in_frame = dctx.decompressobj(), False
    if in_frame:
        raise InputError(f"{path}: the zstandard stream ends in the middle of a frame (file truncated?)")


def _plain(path: Path, on_progress: Callable[[int], None]) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(_COMPRESSED_READ):
            on_progress(len(chunk))
            yield chunk


def _blocks(chunks: Iterable[bytes], block_bytes: int) -> Iterator[bytes]:
    """Whole lines, regrouped into blocks of about `block_bytes` (a longer line is a block of its
    own; the last block may lack its newline)."""
    pending: list[bytes] = []
    size = 0
    for chunk in chunks:
        pending.append(chunk)
        size += len(chunk)
        if size < block_bytes:
            continue
        data, start = b"".join(pending), 0
        while len(data) - start >= block_bytes:
            cut = data.rfind(b"\n", start, start + block_bytes) + 1
            if cut <= start:
                cut = data.find(b"\n", start + block_bytes) + 1
                if not cut:
                    break
            yield data[start:cut]
            start = cut
        pending, size = [data[start:]], len(data) - start
    tail = b"".join(pending)
    if tail.strip():
        yield tail


def _coerce(record: dict) -> tuple | None:
    """The six fields of one parsed record, or None when a field has a type no dump uses.

    More lenient than pyarrow's typed parse (numbers written as strings, integral floats
    for the score), because old dumps do that; everything else is rejected.
    """
    out = []
    for name, alias in FIELDS:
        value = record.get(name)
        if value is None:
            out.append(None)
        elif alias == "string":
            if not isinstance(value, str):
                return None
            out.append(value)
        elif alias == "bool":
            if not isinstance(value, bool):
                return None
            out.append(value)
        elif alias == "int64":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            elif isinstance(value, str) and _INT.fullmatch(value.strip()):
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > _INT64_MAX:
                return None
            out.append(value)
        else:  # float64: the creation time, a number or a number written as a string
            if isinstance(value, bool):
                return None
            try:
                out.append(float(value))
            except (TypeError, ValueError):
                return None
    return tuple(out)


def _parse_lines(block: bytes, skipped: Counter) -> pa.RecordBatch:
    """The slow path for a block pyarrow rejected: line by line, bad lines skipped and counted."""
    import pyarrow as pa

    rows = []
    for line in block.split(b"\n"):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            skipped["invalid_utf8"] += 1
            continue
        except ValueError:
            skipped["malformed_json"] += 1
            continue
        if not isinstance(record, dict):
            skipped["malformed_json"] += 1
            continue
        row = _coerce(record)
        if row is None:
            skipped["bad_field_type"] += 1
        else:
            rows.append(row)
    columns = list(zip(*rows)) if rows else [()] * len(FIELDS)
    sch = schema()
    return pa.record_batch([pa.array(list(col), type=f.type) for col, f in zip(columns, sch)], schema=sch)


def _json_batches(path: Path, block_bytes: int, skipped: Counter,
                  on_progress: Callable[[int], None]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.json as pj

    chunks = _decompressed(path, on_progress) if path.suffix == ".zst" else _plain(path, on_progress)
    options = pj.ParseOptions(explicit_schema=schema(), unexpected_field_behavior="ignore")
    # pyarrow parses a block in parallel pieces of block_size; a line must fit in one piece.
    read = pj.ReadOptions(block_size=max(block_bytes // 4, 1 << 20))
    for block in _blocks(chunks, block_bytes):
        try:
            table = pj.read_json(pa.BufferReader(block), read_options=read, parse_options=options)
        except ValueError:  # ArrowInvalid and UnicodeDecodeError: some line in the block is bad
            yield _parse_lines(block, skipped)
            continue
        yield from table.to_batches()


def _parquet_batches(path: Path, batch_rows: int,
                     on_progress: Callable[[int], None]) -> Iterator[pa.RecordBatch]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise InputError(f"{path}: not a readable Parquet file ({exc})") from None
    present = set(pf.schema_arrow.names)
    missing = [c for c in REQUIRED_COLUMNS if c not in present]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}; columns present: "
                         f"{', '.join(pf.schema_arrow.names)}")
    sch = schema()
    wanted = [f.name for f in sch if f.name in present]
    for batch in pf.iter_batches(batch_size=batch_rows, columns=wanted):
        arrays = []
        for f in sch:
            if f.name not in present:
                arrays.append(pa.nulls(batch.num_rows, f.type))
                continue
            try:
                arrays.append(batch.column(f.name).cast(f.type))
            except pa.ArrowException as exc:
                raise InputError(f"{path}: column {f.name} cannot be read as {f.type} ({exc})") from None
        on_progress(batch.nbytes)
        yield pa.record_batch(arrays, schema=sch)


def iter_submissions(path: str | Path, block_bytes: int, skipped: Counter,
                     on_progress: Callable[[int], None] = lambda n: None) -> Iterator[pa.RecordBatch]:
    """Arrow batches of the six export fields of every submission in the dump at `path`.

    Takes the dump (format from its suffix), about how many decompressed bytes to parse at
    a time, a Counter that receives the lines skipped by reason, and a callback told how
    many input bytes were consumed. A field missing from a record is null.
    """
    path = Path(path)
    if check_dump(path) == "ndjson":
        return _json_batches(path, block_bytes, skipped, on_progress)
    return _parquet_batches(path, 65_536, on_progress)


def check_dump(path: Path) -> str:
    """The format of the dump at `path` ("ndjson" or "parquet"); InputError if missing or unknown."""
    if not path.is_file():
        raise InputError(f"{path}: input dump does not exist")
    if path.suffix in JSON_SUFFIXES:
        return "ndjson"
    if path.suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(f"{path}: unknown dump format; expected one of "
                     f"{', '.join(JSON_SUFFIXES + PARQUET_SUFFIXES)}")


def write_zst_ndjson(path: str | Path, records: Iterable[dict], level: int = 3) -> int:
    """Write `records` as NDJSON compressed like the Pushshift dumps (2 GiB window, long-distance
    matching), atomically; returns the number of records."""
    import zstandard

    params = zstandard.ZstdCompressionParameters.from_level(level, window_log=31, enable_ldm=True)
    count = 0
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        # No size is pledged, so the frame header declares the full 2 GiB window as real dumps do.
        with zstandard.ZstdCompressor(compression_params=params).stream_writer(fh, closefd=False) as out:
            lines: list[str] = []
            for record in records:
                lines.append(json.dumps(record, ensure_ascii=False))
                count += 1
                if len(lines) == 10_000:
                    out.write(("\n".join(lines) + "\n").encode("utf-8"))
                    lines = []
            if lines:
                out.write(("\n".join(lines) + "\n").encode("utf-8"))
    return count


def write_parquet(path: str | Path, records: Iterable[dict], batch_rows: int = 100_000) -> int:
    """Write the export fields of `records` as a Parquet dump, atomically; returns the record count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sch = schema()
    count = 0
    with atomic_path(path) as tmp:
        with pq.ParquetWriter(tmp, sch) as writer:
            batch: list[dict] = []
            for record in records:
                batch.append(record)
                count += 1
                if len(batch) == batch_rows:
                    writer.write_table(pa.Table.from_pylist(batch, schema=sch))
                    batch = []
            if batch or not count:
                writer.write_table(pa.Table.from_pylist(batch, schema=sch))
    return count
