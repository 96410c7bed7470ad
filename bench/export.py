"""Export throughput and peak memory on a generated Pushshift-style dump of 1,000,000 submissions.

    make bench-export        (python -m bench.export [--rows 1000000] [--seed 0])

The dump (NDJSON, zstd with the 2 GiB window, as real dumps) is generated once into
bench/out/. Each job then runs in a fresh process, so its peak RSS is its own:
  (a) export: pipeline.export.stage.export with the DuckDB engine, the CSV written;
  (b) decompress: only zstd-decompress the dump and count its lines (the floor any reader pays);
  (c) pandas: the obvious alternative, every line json.loads-ed into one DataFrame in memory
      and the same semantics computed with pandas.
  (d) export-w21: (a) on the same NDJSON recompressed with zstd's ordinary 2 MiB window and
      with DuckDB's memory_limit at 256MB: the memory of the stage itself, apart from the
      decoder's window (a 2 GiB-window decoder keeps up to 2 GiB of recent output, however
      the reader is written, so (a) and (b) grow with the dump up to that much).
DuckDB's own read_json on the dump is also tried (it cannot open the 2 GiB window).
Prints rows/s and peak RSS of each, and a's rows/s as ratios against b and c.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

OUT = Path("bench/out")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def job_export(dump: Path, memory_limit: str = "2GB") -> dict:
    from pipeline.export.stage import DuckDBConfig, ExportConfig, export

    out = OUT / "export-bench.csv"
    ecfg = ExportConfig(inputs=(str(dump),), output=str(out), duckdb=DuckDBConfig(memory_limit=memory_limit))
    stats = export(ecfg, (dump,), out)
    return {"rows": stats["rows_read"], "written": stats["rows_written"]}


def job_export_small_window(dump: Path) -> dict:
    return job_export(dump, memory_limit="256MB")


def _lines(dump: Path):
    import zstandard

    with open(dump, "rb") as fh:
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(fh)
        pending = b""
        while chunk := reader.read(1 << 24):
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()
            yield from lines
        if pending:
            yield pending


def job_decompress(dump: Path) -> dict:
    rows = size = 0
    for line in _lines(dump):
        rows += 1
        size += len(line) + 1
    return {"rows": rows, "decompressed_mb": round(size / 1e6, 1)}


def job_pandas(dump: Path) -> dict:
    import pandas as pd

    from pipeline.export import ExportConfig

    ecfg = ExportConfig()
    fields = ("subreddit", "title", "score", "author", "over_18", "created_utc")
    records = []
    for line in _lines(dump):
        record = json.loads(line)
        records.append(tuple(record.get(f) for f in fields))
    df = pd.DataFrame.from_records(records, columns=fields)
    del records
    df = df[df.over_18.eq(False) & df.subreddit.notna() & df.title.notna() & df.score.notna()
            & ~df.subreddit.str.lower().isin(ecfg.exclude)]
    authors = df[df.score >= ecfg.min_score].groupby("subreddit")["author"].nunique()
    top = authors.reset_index().sort_values(["author", "subreddit"], ascending=[False, True]).head(ecfg.top_subreddits)
    kept = df[df.subreddit.isin(top.subreddit)].sort_values(
        ["subreddit", "score", "created_utc", "title"], ascending=[True, False, True, True])
    result = kept.groupby("subreddit").head(ecfg.top_posts)
    return {"written": len(result)}


JOBS = {"export": job_export, "decompress": job_decompress, "pandas": job_pandas,
        "export-w21": job_export_small_window}


def recompress(src: Path, dst: Path) -> None:
    """Write the NDJSON of `src` again with zstd level 3's ordinary window (2 MiB)."""
    import zstandard

    from pipeline.core.io import atomic_path

    with open(src, "rb") as fin, atomic_path(dst) as tmp, open(tmp, "wb") as fout:
        reader = zstandard.ZstdDecompressor(max_window_size=2**31).stream_reader(fin)
        zstandard.ZstdCompressor(level=3).copy_stream(reader, fout)


def run_job(name: str, dump: Path) -> dict:
    """Run one job in a fresh interpreter; returns its result with seconds and peak RSS."""
    proc = subprocess.run([sys.executable, "-m", "bench.export", "--job", name, "--dump", str(dump)],
                          capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"job {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def duckdb_native(dump: Path) -> str:
    """What DuckDB's own NDJSON reader says about the long-window dump."""
    import duckdb

    try:
        duckdb.sql(f"SELECT count(*) FROM read_json('{dump}', format='newline_delimited', "
                   f"compression='zstd')").fetchall()
        return "read it"
    except duckdb.Error as exc:
        return f"failed: {str(exc).splitlines()[0]}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--job", choices=sorted(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--dump", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.job:
        started = time.perf_counter()
        result = JOBS[args.job](args.dump)
        result.update(seconds=time.perf_counter() - started, peak_rss_mb=_peak_rss_mb())
        print(json.dumps(result))
        return 0

    from pipeline.export.dumpgen import write_dump

    dump = OUT / f"RS_2019-08.{args.rows}.{args.seed}.zst"
    if not dump.exists():
        started = time.perf_counter()
        write_dump(dump, args.rows, args.seed)
        print(f"generated {dump} ({dump.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s")
    small_window = dump.with_name(dump.name.replace(".zst", ".w21.zst"))
    if not small_window.exists():
        recompress(dump, small_window)
    results = {name: run_job(name, dump) for name in ("decompress", "export", "pandas")}
    results["export-w21"] = run_job("export-w21", small_window)
    rows = results["decompress"]["rows"]
    print(f"\ndump: {rows:,} submissions, {dump.stat().st_size / 1e6:.1f} MB compressed, "
          f"{results['decompress']['decompressed_mb']:,} MB of NDJSON")
    print(f"DuckDB read_json on the dump: {duckdb_native(dump)}")
    print(f"\n{'job':<12}{'seconds':>10}{'rows/s':>14}{'peak RSS MB':>14}")
    for name, r in results.items():
        print(f"{name:<12}{r['seconds']:>10.2f}{rows / r['seconds']:>14,.0f}{r['peak_rss_mb']:>14,.0f}")
    export_rate = rows / results["export"]["seconds"]
    print(f"\nexport rows/s vs decompress-only: {export_rate / (rows / results['decompress']['seconds']):.2f}x")
    print(f"export rows/s vs pandas in memory: {export_rate / (rows / results['pandas']['seconds']):.2f}x")
    print(f"export peak RSS vs pandas: {results['export']['peak_rss_mb'] / results['pandas']['peak_rss_mb']:.2f}x")
    print(f"rows written: export {results['export']['written']}, pandas {results['pandas']['written']}, "
          f"export-w21 {results['export-w21']['written']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
