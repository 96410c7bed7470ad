"""Export stage: the shared SQL on DuckDB against an independent pandas computation, dump
reading (2 GiB zstd window, Parquet, bad lines), and the BigQuery job set-up offline."""
from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError, InputError
from pipeline.export.dumpgen import generate_records, month_bounds
from pipeline.export.dumps import FIELDS, iter_submissions, write_parquet, write_zst_ndjson
from pipeline.export.stage import BigQueryConfig, ExportConfig, export, stats_path

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [name for name, _ in FIELDS]


def _post(sub, title, score, author, nsfw=False, created=1_564_700_000, **extra):
    return {"subreddit": sub, "title": title, "score": score, "author": author,
            "over_18": nsfw, "created_utc": created, "id": f"{sub}/{title}", **extra}


def _edge_posts() -> list[dict]:
    """Hand-made posts for each rule, in subreddits whose names start with `edge`."""
    posts = []
    # Many authors but every post NSFW: an NSFW subreddit, never ranked.
    posts += [_post("edgeNSFW", f"nsfw {i}", 100 + i, f"n{i}", nsfw=True) for i in range(30)]
    # An excluded subreddit, written in another case than the exclusion list.
    posts += [_post("ME_IRL", f"meme {i}", 500 + i, f"m{i}") for i in range(30)]
    posts += [_post("cursedimages", f"cursed {i}", 50, f"c{i}") for i in range(25)]
    # A popular SFW subreddit with stray NSFW posts scoring highest, HTML entities, U+FFFD
    # and ties: equal scores, broken by time, then equal times broken by title.
    posts += [_post("edgeBig", f"big {i}", 10 + i % 5, f"b{i}") for i in range(20)]
    posts += [_post("edgeBig", "nsfw winner", 10_000, "b0", nsfw=True)]
    posts += [_post("edgeBig", "Fish &amp; chips &lt;3 &amp;lt;b&amp;gt; -&gt; done", 900, "b1"),
              _post("edgeBig", "bro\ufffdken text\ufffd", 899, "b2"),
              _post("edgeBig", "tie later", 800, "b3", created=1_564_700_500),
              _post("edgeBig", "tie earlier", 800, "b4", created=1_564_700_100),
              _post("edgeBig", "tie b same time", 700, "b5"),
              _post("edgeBig", "tie a same time", 700, "b6"),
              _post("edgeBig", "tie no time", 700, "b7", created=None)]
    # Fewer posts than K; one scores below the threshold but is still a top post.
    posts += [_post("edgeSmall", "small one", 7, "s1"), _post("edgeSmall", "small two", 6, "s2"),
              _post("edgeSmall", "small low", 1, "s3")]
    # Authors only count at score >= min_score: 12 low-score authors, 1 that counts.
    posts += [_post("edgeLowScores", f"low {i}", 2, f"l{i}") for i in range(12)]
    posts += [_post("edgeLowScores", "counted", 5, "l0")]
    # Two subreddits tied on authors (6 each): the name breaks the tie at the N boundary.
    for sub in ("edgeTieA", "edgeTieB"):
        posts += [_post(sub, f"{sub} post {i}", 5 + i, f"{sub}{i % 6}") for i in range(9)]
    # No post reaches the threshold: no author counts, never ranked.
    posts += [_post("edgeNoneCount", f"none {i}", 4, f"z{i}") for i in range(8)]
    # Repeated author: one distinct author for many posts.
    posts += [_post("edgeOneAuthor", f"solo {i}", 40, "solo") for i in range(10)]
    # A null author is not an author; the post can still be picked.
    posts += [_post("edgeOneAuthor", "anonymous", 41, None)]
    return posts


def _safe(posts: list[dict], exclude) -> pd.DataFrame:
    df = pd.DataFrame([{c: p.get(c) for c in COLUMNS} for p in posts], columns=COLUMNS)
    excluded = {e.lower() for e in exclude}
    keep = (df.over_18.eq(False) & df.subreddit.notna() & df.title.notna() & df.score.notna()
            & ~df.subreddit.str.lower().isin(excluded))
    return df[keep]


def _ranking(posts: list[dict], min_score: int, exclude) -> list[str]:
    """Every rankable subreddit, best first (pandas, straight from the records)."""
    safe = _safe(posts, exclude)
    authors = safe[safe.score >= min_score].groupby("subreddit")["author"].nunique().rename("authors")
    return list(authors.reset_index().sort_values(["authors", "subreddit"], ascending=[False, True]).subreddit)


def _reference(posts: list[dict], n: int, k: int, min_score: int, exclude) -> list[tuple[str, str]]:
    """The export semantics computed directly with pandas on the records (no dump reading, no SQL)."""
    safe = _safe(posts, exclude)
    kept = safe[safe.subreddit.isin(_ranking(posts, min_score, exclude)[:n])]
    kept = kept.sort_values(["subreddit", "score", "created_utc", "title"],
                            ascending=[True, False, True, True], na_position="last", kind="stable")
    top = kept.groupby("subreddit").head(k)
    titles = (top.title.str.replace("&lt;", "<", regex=False).str.replace("&gt;", ">", regex=False)
              .str.replace("&amp;", "&", regex=False).str.replace("\ufffd", "", regex=False))
    return list(zip(top.subreddit, titles))


def _read_csv(path: Path) -> list[tuple[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["subreddit", "title"]
    return [tuple(r) for r in rows[1:]]


@pytest.fixture(scope="module")
def two_months(tmp_path_factory):
    """July as Parquet, August as a long-window .zst: generated posts plus the hand-made ones."""
    folder = tmp_path_factory.mktemp("dumps")
    july, august = folder / "RS_2019-07.parquet", folder / "RS_2019-08.zst"
    posts_july = list(generate_records(2500, 1, *month_bounds(july)))
    posts_aug = list(generate_records(2500, 2, *month_bounds(august))) + _edge_posts()
    write_parquet(july, posts_july)
    write_zst_ndjson(august, posts_aug)
    return (july, august), posts_july + posts_aug


def test_dump_has_the_two_gib_window_and_is_read_in_blocks(tmp_path):
    import zstandard

    posts = _edge_posts() * 20
    path = tmp_path / "RS_2019-08.zst"
    assert write_zst_ndjson(path, posts) == len(posts)
    blob = path.read_bytes()
    assert zstandard.get_frame_parameters(blob).window_size == 2**31
    with pytest.raises(zstandard.ZstdError, match="too much memory"):
        zstandard.ZstdDecompressor().stream_reader(io.BytesIO(blob)).read()
    skipped: Counter = Counter()
    batches = list(iter_submissions(path, 16 << 10, skipped))
    assert len(batches) > 3  # many small blocks, never the whole file at once
    rows = [r for b in batches for r in b.to_pylist()]
    assert rows == [{c: p.get(c) for c in COLUMNS} for p in posts]
    assert not skipped
    # Concatenated frames are one valid zstd stream: both are read.
    path.write_bytes(blob + blob)
    assert sum(b.num_rows for b in iter_submissions(path, 16 << 10, skipped)) == 2 * len(posts)


@pytest.mark.parametrize("n,k,min_score,exclude", [
    (None, 4, 5, ExportConfig().exclude),  # N cuts between edgeTieA and edgeTieB (same author count)
    (1000, 18, 1, ()),  # nothing excluded, a lower threshold, every subreddit kept
])
def test_duckdb_export_equals_pandas_reference(tmp_path, two_months, n, k, min_score, exclude):
    inputs, posts = two_months
    ranking = _ranking(posts, min_score, exclude)
    if n is None:
        n = ranking.index("edgeTieA") + 1
        assert ranking[n] == "edgeTieB"
    ecfg = ExportConfig(inputs=tuple(map(str, inputs)), output=str(tmp_path / "t.csv"), top_subreddits=n,
                        top_posts=k, min_score=min_score, exclude=exclude)
    stats = export(ecfg, inputs, tmp_path / "t.csv")
    got = _read_csv(tmp_path / "t.csv")
    expected = _reference(posts, n, k, min_score, exclude)
    assert got == expected
    assert stats["rows_read"] == len(posts) and stats["rows_written"] == len(expected)
    assert stats["nsfw_posts"] == sum(p["over_18"] for p in posts)
    assert stats["subreddits_written"] == min(n, len(ranking))
    by_sub = {}
    for sub, title in got:
        by_sub.setdefault(sub, []).append(title)
    assert "edgeNSFW" not in by_sub and "nsfw winner" not in by_sub.get("edgeBig", [])
    if n < 1000:
        assert "edgeTieA" in by_sub and "edgeTieB" not in by_sub
    if exclude:
        assert not {"ME_IRL", "cursedimages"} & set(by_sub)
    else:
        assert "ME_IRL" in by_sub
    if "edgeBig" in by_sub:
        assert by_sub["edgeBig"][:2] == ["Fish & chips <3 &lt;b&gt; -> done", "broken text"][:k]
        assert by_sub["edgeBig"][2:7] == ["tie earlier", "tie later", "tie a same time", "tie b same time",
                                          "tie no time"][:max(0, k - 2)]
    assert all(len(titles) <= k for titles in by_sub.values())


def test_small_subreddit_and_threshold_rules(tmp_path, two_months):
    inputs, posts = two_months
    out = tmp_path / "t.csv"
    export(ExportConfig(top_subreddits=1000, top_posts=18), inputs, out)
    by_sub = {}
    for sub, title in _read_csv(out):
        by_sub.setdefault(sub, []).append(title)
    assert by_sub["edgeSmall"] == ["small one", "small two", "small low"]  # fewer than K: all kept
    assert by_sub["edgeOneAuthor"][0] == "anonymous"
    assert by_sub["edgeLowScores"][0] == "counted" and "edgeNoneCount" not in by_sub
    names = list(by_sub)
    assert names == sorted(names)


def test_bad_lines_are_skipped_and_counted(tmp_path):
    good = [_post("edgeA", f"good {i}", 10 + i, f"a{i}") for i in range(5)]
    lines = [json.dumps(p).encode() for p in good]
    lines += [b'{"subreddit": "edgeA", "title": "broken', b"[1, 2]",
              b'{"subreddit": "edgeA", "title": "bad \xff byte", "score": 99, "author": "z", "over_18": false}',
              b'{"subreddit": "edgeA", "title": "score text", "score": "lots", "author": "y", "over_18": false}',
              b'{"subreddit": "edgeA", "title": "nsfw text", "score": 5, "author": "y", "over_18": "no"}',
              b'{"title": "no subreddit", "score": 500, "author": "x", "over_18": false}',
              b'{"subreddit": "edgeA", "title": "old style", "score": "12", "author": "w", "over_18": false,'
              b' "created_utc": "1564617600"}', b""]
    path = tmp_path / "RS_2019-08.ndjson"
    path.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "t.csv"
    stats = export(ExportConfig(top_posts=3), (path,), out)
    assert stats["rows_skipped"] == {"malformed_json": 2, "invalid_utf8": 1, "bad_field_type": 2,
                                     "missing_field": 1}
    assert stats["rows_read"] == 7 + 5  # parsed, and lines that failed to parse
    assert _read_csv(out) == [("edgeA", "good 4"), ("edgeA", "good 3"), ("edgeA", "old style")]


def test_unusable_inputs_fail_clearly_and_write_nothing(tmp_path):
    out = tmp_path / "t.csv"
    full = tmp_path / "RS_2019-08.zst"
    write_zst_ndjson(full, generate_records(3000, 3, *month_bounds(full)))
    cut = tmp_path / "RS_2019-09.zst"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    not_zstd = tmp_path / "RS_2019-10.zst"
    not_zstd.write_bytes(b'{"subreddit": "a"}\n')
    no_columns = tmp_path / "RS_2019-11.parquet"
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"subreddit": ["a"], "body": ["b"]}), no_columns)
    nsfw_only = tmp_path / "RS_2019-12.zst"
    write_zst_ndjson(nsfw_only, [_post("x", "t", 9, "a", nsfw=True)])
    cases = [(cut, "truncated"), (not_zstd, "not a readable zstandard"),
             (no_columns, "missing column.*title, score, author, over_18; columns present: subreddit, body"),
             (tmp_path / "missing.zst", "does not exist"), (tmp_path / "RS.csv", "unknown dump format"),
             (nsfw_only, "no submission passed the filters")]
    (tmp_path / "RS.csv").write_text("subreddit,title\n")
    for path, message in cases:
        with pytest.raises(InputError, match=message):
            export(ExportConfig(), (path,), out)
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["RS_2019-08.zst", "RS_2019-09.zst", "RS_2019-10.zst", "RS_2019-11.parquet", "RS_2019-12.zst", "RS.csv"])


def test_cli_output_is_what_encode_reads(tmp_path):
    from pipeline.encode.rows import iter_rows

    dump = tmp_path / "RS_2019-08.zst"
    gen = subprocess.run([sys.executable, "-m", "pipeline.export.dumpgen", str(dump), "--rows", "4000"],
                         cwd=ROOT, capture_output=True, text=True)
    assert gen.returncode == 0, gen.stderr
    out = tmp_path / "export" / "titles.csv"
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"export:\n  inputs: [{dump}]\n  output: {out}\n  top_subreddits: 20\n"
                   f"encode:\n  input: {out}\n", encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pipeline.export", "--config", str(cfg), "export.top_posts=5"],
                         cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "100 titles from 20 subreddits" in run.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["titles.csv", "titles.stats.json"]
    skipped: Counter = Counter()
    ecfg = load_config(cfg).encode
    rows = [r for chunk in iter_rows(Path(ecfg.input), ecfg, skipped) for r in chunk]
    assert [(r.category, r.title) for r in rows] == _read_csv(out)
    assert sum(skipped.values()) == 0
    assert stats_path(out).is_file()
    bad = subprocess.run([sys.executable, "-m", "pipeline.export", "--config", str(cfg),
                          "export.duckdb.memory_limit=lots"], cwd=ROOT, capture_output=True, text=True)
    assert bad.returncode == 2 and "export.duckdb.memory_limit" in bad.stderr


def test_config_rejects_bad_values(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("export:\n  engine: bigquery\n", encoding="utf-8")
    for override, key in [("export.bigquery.table=x.y.z; DROP TABLE t", "export.bigquery.table"),
                          ("export.bigquery.months=[2019-13]", "export.bigquery.months"),
                          ("export.top_posts=0", "export.top_posts"),
                          ("export.engine=spark", "export.engine"),
                          (f"export.inputs=[{tmp_path}/a.zst]", "export.output")]:
        extra = [f"export.output={tmp_path}/a.zst"] if key == "export.output" else []
        with pytest.raises(ConfigError, match=re.escape(key)):
            load_config(cfg, [override, *extra])


def test_bigquery_job_carries_every_user_value_as_a_typed_parameter():
    from pipeline.export.bigquery import job_config
    from pipeline.export.sql import bigquery_query, duckdb_query

    ecfg = ExportConfig(engine="bigquery", top_subreddits=321, top_posts=7, min_score=11,
                        exclude=("ZZexcludedZZ", "me_irl"), bigquery=BigQueryConfig(months=("2019-07", "2019-08")))
    dry, real = job_config(ecfg, dry_run=True), job_config(ecfg, dry_run=False)
    assert dry.dry_run is True and dry.use_query_cache is False and not real.dry_run
    params = {p["name"]: p for p in dry.to_api_repr()["query"]["queryParameters"]}
    assert params["top_subreddits"]["parameterType"] == {"type": "INT64"}
    assert params["top_subreddits"]["parameterValue"] == {"value": "321"}
    assert params["top_posts"]["parameterValue"] == {"value": "7"}
    assert params["min_score"]["parameterValue"] == {"value": "11"}
    assert params["exclude"]["parameterType"] == {"type": "ARRAY", "arrayType": {"type": "STRING"}}
    assert [v["value"] for v in params["exclude"]["parameterValue"]["arrayValues"]] == ["me_irl", "zzexcludedzz"]
    assert [v["value"] for v in params["months"]["parameterValue"]["arrayValues"]] == ["2019_07", "2019_08"]
    sql = bigquery_query(ecfg.bigquery.table)
    code = re.sub(r"--[^\n]*", "", sql)  # the comments name the parameters too
    assert set(re.findall(r"@(\w+)", code)) == set(params)
    assert "zzexcluded" not in sql.lower() and "321" not in sql and "2019" not in sql
    assert "`fh-bigquery.reddit_posts.*`" in sql and "_TABLE_SUFFIX IN UNNEST(@months)" in sql
    # Written once: past the source and the parameter marker, both engines run the same text.
    core = duckdb_query().replace("$", "@")
    head, tail = core.split("FROM submissions", 1)
    assert sql.startswith(head) and sql.endswith(tail)


def test_bigquery_without_credentials_fails_clearly(tmp_path, monkeypatch):
    from pipeline.export.bigquery import BigQueryError

    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_CLOUD_PROJECT", "GCLOUD_PROJECT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    monkeypatch.setenv("NO_GCE_CHECK", "True")  # not on Google Cloud: skip the metadata-server probe
    out = tmp_path / "t.csv"
    with pytest.raises(BigQueryError, match="no Google Cloud credentials found.*application-default login"):
        export(ExportConfig(engine="bigquery"), (), out)
    assert not out.exists() and not stats_path(out).exists()
