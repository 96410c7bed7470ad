"""The decode stage: raw generated samples -> de-duplicated CSV with measures, stats and keyword filter."""
import csv
import json

import pytest

from pipeline.config import load_config
from pipeline.core.errors import ConfigError, InputError
from pipeline.core.format import END_TOKEN as E, START_TOKEN as S
from pipeline.decode import DecodeConfig, decode
from pipeline.report.plot import plot_report
from pipeline.report.stage import build_report, markdown


def test_config_rejects_bad_sections(tmp_path):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("seed: 1\n", encoding="utf-8")
    assert load_config(cfg, ["decode.sections=[title, body]"]).decode.sections == ("title", "body")
    with pytest.raises(ConfigError, match=r"decode\.sections: 'summary' is not one of"):
        load_config(cfg, ["decode.sections=[title, summary]"])
    with pytest.raises(ConfigError, match=r"decode\.sections: must include 'title'"):
        load_config(cfg, ["decode.sections=[keywords]"])
    with pytest.raises(ConfigError, match=r"decode\.batch_size: must be at least 1"):
        load_config(cfg, ["decode.batch_size=0"])


def _record(category, keywords, title, end=True, **extra):
    text = f"{S}~`{category}~^{' '.join(keywords)}~@{title}" + (E if end else "")
    return {"index": 0, "category": category, "keywords": keywords, "seed": 1, "text": text,
            "finished": end, **extra}


def _run_stage(tmp_path, records, **decode_options):
    encoded = tmp_path / "encoded.txt"
    encoded.write_text(f"{S}~`pics~^lake~@Golden hour at the lake{E}\n", encoding="utf-8")
    generated = tmp_path / "generated.jsonl"
    generated.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    dcfg = DecodeConfig(batch_size=2, **decode_options)
    out, stats_path = tmp_path / "decoded.csv", tmp_path / "decode_stats.json"
    stats = decode(dcfg, generated, encoded, out, tmp_path / "decoded.rejected.csv", stats_path)
    assert json.loads(stats_path.read_text(encoding="utf-8")) == stats
    with out.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f)), stats


def test_stage_writes_a_deduplicated_csv_with_measures(tmp_path):
    records = [
        _record("pics", ["sunset"], "Sunsets over the sea"),
        _record("pics", ["sunset", "boat"], "golden hour AT the lake"),
        _record("pics", ["sunset"], "Sunsets over the sea"),
        _record("pics", ["sunset"], "Never finished", end=False),
        _record("pics", ["boat"], "Sunsets over the sea"),
        # The generator found an end token, but only after a new document had started.
        _record("pics", ["sunset"], f"Ran on{S}~`pics~^x~@Next"),
    ]
    rows, stats = _run_stage(tmp_path, records)
    assert [(r["category"], r["keywords"], r["title"], r["count"]) for r in rows] == [
        ("pics", "sunset", "Sunsets over the sea", "2"),
        ("pics", "sunset boat", "golden hour AT the lake", "1"),
        ("pics", "boat", "Sunsets over the sea", "1"),
    ]
    assert [(r["keyword_coverage"], r["all_keywords_present"], r["missing_keywords"], r["novel"]) for r in rows] == [
        ("1.0000", "true", "", "true"), ("0.0000", "false", "sunset boat", "false"), ("0.0000", "false", "boat", "true")]
    assert stats["samples"] == 6 and stats["valid"] == 4 and stats["unique_rows"] == 3 and stats["duplicates"] == 1
    assert stats["dropped"] == {"unfinished": 2}
    assert stats["groups"]["n_keywords"] == {"1": {"samples": 5, "valid": 3, "mean_logprob": None},
                                             "2": {"samples": 1, "valid": 1, "mean_logprob": None}}
    # The on-disk de-duplicating store and temporary files are gone.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decode_stats.json", "decoded.csv", "encoded.txt",
                                                          "generated.jsonl"]


def test_stage_options_body_unfinished_and_group_fields(tmp_path):
    body = _record("pics", ["dog"], "A dog")
    body["text"] = body["text"].replace(E, f"~}}It sat{E}")
    # The generator cut the text at the end token; its `finished` flag says it got there.
    cut = _record("pics", ["dog"], "Cut at the end token", guided=False, logprob=-2.0)
    cut["text"] = cut["text"].removesuffix(E)
    records = [dict(body, guided=True, logprob=-1.0), cut,
               _record("pics", ["dog"], "No end", end=False, guided=True, logprob=-4.0)]
    rows, stats = _run_stage(tmp_path, records, sections=("title", "body"), keep_unfinished=True)
    assert [(r["title"], r["body"], r["guided"]) for r in rows] == [
        ("A dog", "It sat", "true"), ("Cut at the end token", "", "false"), ("No end", "", "true")]
    assert stats["kept_unfinished"] == 1 and stats["dropped"] == {}
    assert stats["groups"]["guided"] == {"false": {"samples": 1, "valid": 1, "mean_logprob": -2.0},
                                         "true": {"samples": 2, "valid": 2, "mean_logprob": -2.5}}
    assert stats["mean_logprob"] == pytest.approx(-7 / 3, abs=1e-4)


def test_stage_names_missing_inputs(tmp_path):
    cfg, rejected = DecodeConfig(), tmp_path / "r.csv"
    (tmp_path / "generated.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="encoded.txt does not exist"):
        decode(cfg, tmp_path / "generated.jsonl", tmp_path / "encoded.txt", tmp_path / "d.csv", rejected,
               tmp_path / "s.json")
    (tmp_path / "encoded.txt").write_text("", encoding="utf-8")
    with pytest.raises(InputError, match="nope.jsonl do not exist"):
        decode(cfg, tmp_path / "nope.jsonl", tmp_path / "encoded.txt", tmp_path / "d.csv", rejected,
               tmp_path / "s.json")
    assert not (tmp_path / "d.csv").exists()


def test_keyword_filter_keeps_matching_titles_and_sets_the_rest_aside(tmp_path):
    records = [
        _record("pics", ["dog", "cat"], "A dog and a cat", guided=True, logprob=-1.0),
        _record("pics", ["dog", "cat"], "A dog and a cat", guided=True, logprob=-1.0),
        _record("pics", ["dog", "cat"], "Only a dog", guided=True, logprob=-2.0),
        _record("pics", ["dog", "cat"], "Nothing here", guided=False, logprob=-3.0),
        _record("pics", ["dog", "cat"], "Never ends", end=False, guided=False),
    ]
    rows, stats = _run_stage(tmp_path, records, keyword_filter="all")
    assert [(r["title"], r["count"]) for r in rows] == [("A dog and a cat", "2")]
    with (tmp_path / "decoded.rejected.csv").open(newline="", encoding="utf-8") as f:
        assert [r["title"] for r in csv.DictReader(f)] == ["Only a dog", "Nothing here"]
    kf = stats["keyword_filter"]
    assert kf["all"] == {"rows_kept": 1, "rows_rejected": 2, "samples_kept": 2, "samples_rejected": 2,
                         "yield_pct": 50.0}
    assert kf["guided=true"]["yield_pct"] == pytest.approx(66.67) and kf["guided=false"]["samples_kept"] == 0
    # The report measures every valid title, kept or set aside, and shows the yield apart.
    report = build_report(tmp_path / "decoded.csv", tmp_path / "decoded.rejected.csv", stats)
    assert report["overall"]["rows"] == 3 and report["keyword_filter"] == kf
    assert report["by_guided"]["true"]["mean_logprob"] == pytest.approx(-4 / 3, abs=1e-4)
    assert "## Keyword filter: titles with every requested keyword" in markdown(report, "t", 5)
    # The picture gets a guidance on/off panel beside the two breakdowns that mix both.
    import matplotlib.image

    plot_report(report, 5, tmp_path / "with.png")
    plot_report({k: v for k, v in report.items() if k != "by_guided"}, 5, tmp_path / "without.png")
    widths = [matplotlib.image.imread(tmp_path / f"{n}.png").shape[1] for n in ("with", "without")]
    assert widths[0] == widths[1] * 3 // 2

    rows, stats = _run_stage(tmp_path, records, keyword_filter="at_least", keyword_filter_min=1)
    assert [r["title"] for r in rows] == ["A dog and a cat", "Only a dog"]
    # Turning the filter off removes the stale side file, so the report does not read it.
    rows, stats = _run_stage(tmp_path, records)
    assert len(rows) == 3 and "keyword_filter" not in stats
    assert not (tmp_path / "decoded.rejected.csv").exists()


BAD_GENERATED = __import__("pathlib").Path(__file__).parents[1] / "bad_input" / "generated" / "records.jsonl"


def _strict_json(path):
    """The JSON in `path`; fails on NaN or Infinity, which are not JSON."""
    def refuse(name):
        raise AssertionError(f"{path.name}: {name} is not JSON")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def test_bad_records_are_counted_and_the_stats_stay_strict_json(tmp_path):
    from pipeline.decode import read_records

    reasons = [r if isinstance(r, str) else "ok" for r in read_records(BAD_GENERATED)]
    # logprob "abc", NaN, Infinity, -Infinity, true; guided "yes", 1; text 5; two good ones; a cut line.
    assert reasons == ["bad_record"] * 8 + ["ok", "ok", "bad_json"]
    records = [json.loads(line) for line in BAD_GENERATED.read_text(encoding="utf-8").splitlines()[:-1]]
    records.append(_record("pics", ["dog"], "dog " * 62_500))  # a 250,000-character title
    rows, stats = _run_stage(tmp_path, records)
    assert stats["samples"] == 11 and stats["valid"] == 2
    assert stats["dropped"] == {"bad_record": 8, "too_long": 1}
    # Control characters are removed from the title (and counted), not kept in the CSV.
    assert [r["title"] for r in rows] == ["A dog on a log", "A cat nap"] and stats["fields_cleaned"] == 1
    assert stats["mean_logprob"] == -2.0
    assert _strict_json(tmp_path / "decode_stats.json") == stats


def test_the_longest_title_kept_is_documented_and_enforced(tmp_path):
    from pipeline.decode.stage import MAX_TITLE_CHARS

    records = [_record("pics", ["dog"], "x" * MAX_TITLE_CHARS), _record("pics", ["dog"], "y" * (MAX_TITLE_CHARS + 1))]
    rows, stats = _run_stage(tmp_path, records)
    assert [len(r["title"]) for r in rows] == [MAX_TITLE_CHARS] and stats["dropped"] == {"too_long": 1}


def test_no_scratch_file_is_left_and_a_killed_run_s_leftovers_are_replaced(tmp_path):
    # A killed decode leaves its scratch database and temporary CSV under fixed names; the next run
    # reuses and removes them.
    (tmp_path / "decoded.csv.dedupe.sqlite").write_bytes(b"left by a killed run")
    (tmp_path / "decoded.csv.tmp").write_text("half a CSV", encoding="utf-8")
    _run_stage(tmp_path, [_record("pics", ["dog"], "A dog")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decode_stats.json", "decoded.csv", "encoded.txt",
                                                          "generated.jsonl"]
