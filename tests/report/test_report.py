"""Quality measures and the report, on hand-made generated samples with answers worked out by hand."""
import json

import pytest

from pipeline import stages
from pipeline.core.format import END_TOKEN as E, START_TOKEN as S
from pipeline.report.stage import Measures, measure_rows


def test_measures_compare_groups_side_by_side():
    rows = [
        {"title": "a b", "keyword_coverage": "1.0000", "all_keywords_present": "true", "novel": "true", "guided": "true"},
        {"title": "a c", "keyword_coverage": "0.5000", "all_keywords_present": "false", "novel": "true",
         "guided": "false"},
        {"title": "d", "keyword_coverage": "0.0000", "all_keywords_present": "false", "novel": "false",
         "guided": "false"},
    ]
    overall, groups = measure_rows(rows, ["guided"])
    on = groups["guided"]["true"].result(samples=2, valid=1)
    off = groups["guided"]["false"].result(samples=2, valid=2)
    assert (on["valid_pct"], on["mean_keyword_coverage_pct"], on["all_keywords_present_pct"]) == (50.0, 100.0, 100.0)
    assert (off["valid_pct"], off["mean_keyword_coverage_pct"], off["novel_pct"]) == (100.0, 25.0, 50.0)
    assert overall.result()["rows"] == 3 and overall.result()["valid_pct"] is None
    assert Measures().result()["mean_keyword_coverage_pct"] is None


TRAINING = ["Golden hour at the lake", "What did your dog eat?"]
# (category, keywords, title, finished): the worked answers below follow from these.
SAMPLES = [
    ("pics", ["sunset"], "Sunsets over the sea", True),  # 1/1 by lemma, novel
    ("pics", ["sunset"], "Sunsets over the sea", True),  # duplicate of the row above
    ("pics", ["sunset", "lake"], "Golden hour at the lake", True),  # 1/2, a training copy
    ("askreddit", ["dog"], "what did your DOG eat?", True),  # 1/1, a copy (case ignored)
    ("askreddit", ["run", "cat food"], "I ran out of cat food", True),  # 2/2 (ran -> run), novel
    ("askreddit", ["cat", "pizza"], "My cat hates mondays", True),  # 1/2, novel
    ("askreddit", [], "Anything goes at the lake", True),  # no keywords, novel
    ("askreddit", ["run"], "Never finished", False),  # dropped: unfinished
    ("pics", ["sunset"], "  ", True),  # dropped: empty title
]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Both command lines run on the hand-made samples; returns the run folder."""
    root = tmp_path_factory.mktemp("report")
    (root / "hand.yaml").write_text(f"seed: 1\ndata_dir: {root / 'data'}\n", encoding="utf-8")
    run_dir = root / "data" / "runs" / "hand"
    run_dir.mkdir(parents=True)
    (run_dir / "encoded.txt").write_text(
        "".join(f"{S}~`x~^y~@{t}{E}\n" for t in TRAINING), encoding="utf-8")
    lines = [json.dumps({"index": i, "category": c, "keywords": k, "seed": 1, "finished": done,
                         "text": f"{S}~`{c}~^{' '.join(w.replace(' ', '-') for w in k)}~@{t}" + (E if done else "")})
             for i, (c, k, t, done) in enumerate(SAMPLES)]
    (run_dir / "generated.jsonl").write_text("\n".join(lines) + '\n{"index": 9, "te\n', encoding="utf-8")
    config = str(root / "hand.yaml")
    assert stages.main(["decode", "--config", config, "decode.batch_size=3"]) == 0
    assert stages.main(["report", "--config", config]) == 0
    return run_dir


def test_report_overall_numbers(run):
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    o = report["overall"]
    assert report["dropped"] == {"bad_json": 1, "empty_title": 1, "unfinished": 1}
    assert report["duplicates"] == 1
    assert (o["samples"], o["valid"], o["valid_pct"], o["rows"], o["rows_with_keywords"]) == (10, 7, 70.0, 6, 5)
    # coverage 1, 1/2, 1, 1, 1/2 -> mean 0.8; all present in 3 of 5; 4 of 6 rows novel.
    assert (o["mean_keyword_coverage_pct"], o["all_keywords_present_pct"]) == (80.0, 60.0)
    assert (o["novel_pct"], o["training_copies"]) == (66.67, 2)
    # 29 words, "the" x3, "at" x2, "lake" x2, "cat" x2 -> 24 distinct; 23 bigrams, "at the"
    # and "the lake" twice each -> 21 distinct.
    assert (o["distinct_1"], o["distinct_2"]) == (round(24 / 29, 4), round(21 / 23, 4))
    assert "by_guided" not in report


def test_report_per_category_and_keyword_count(run):
    report = json.loads((run / "report.json").read_text(encoding="utf-8"))
    pics, ask = report["by_category"]["pics"], report["by_category"]["askreddit"]
    assert list(report["by_category"]) == ["askreddit", "pics"]  # most samples first
    assert (pics["samples"], pics["valid_pct"], pics["rows"], pics["mean_keyword_coverage_pct"],
            pics["all_keywords_present_pct"], pics["novel_pct"]) == (4, 75.0, 2, 75.0, 50.0, 50.0)
    assert (ask["samples"], ask["valid_pct"], ask["rows"], ask["mean_keyword_coverage_pct"],
            ask["all_keywords_present_pct"], ask["novel_pct"]) == (5, 80.0, 4, 83.33, 66.67, 75.0)
    by_n = report["by_n_keywords"]
    assert list(by_n) == ["0", "1", "2"]
    assert (by_n["0"]["samples"], by_n["0"]["rows"], by_n["0"]["mean_keyword_coverage_pct"]) == (1, 1, None)
    assert (by_n["1"]["samples"], by_n["1"]["valid"], by_n["1"]["mean_keyword_coverage_pct"]) == (5, 3, 100.0)
    assert (by_n["2"]["mean_keyword_coverage_pct"], by_n["2"]["all_keywords_present_pct"]) == (66.67, 33.33)


def test_markdown_and_plot_come_from_the_same_numbers(run):
    import matplotlib.image

    md = (run / "report.md").read_text(encoding="utf-8")
    assert "10 samples generated, 7 valid (70 %)" in md
    assert "| mean keyword coverage % | 80 |" in md
    assert "| askreddit | 5 | 80 | 4 | 83.33 | 66.67 | 75 |" in md
    image = matplotlib.image.imread(run / "report.png")
    assert image.shape[0] > 300 and image.shape[1] > 600
    # Sanity: not a blank canvas.
    assert image[..., :3].min() < 0.5
    assert not [p.name for p in run.iterdir() if ".tmp-" in p.name or p.suffix == ".sqlite"]


def test_the_report_says_when_the_model_began_as_random_weights(run, tmp_path):
    # The marker pipeline.train.released writes, which train copies beside the checkpoint (issue 22).
    from pipeline.core.paths import UNTRAINED_MARKER
    from pipeline.report.stage import ReportConfig, write_report

    assert json.loads((run / "report.json").read_text())["base_untrained"] is False
    assert "UNTRAINED" not in (run / "report.md").read_text(encoding="utf-8")
    marker = tmp_path / UNTRAINED_MARKER
    marker.write_text("random weights", encoding="utf-8")
    report = write_report(ReportConfig(), "hand", run / "decoded.csv", run / "decoded.rejected.csv",
                          run / "decode_stats.json", tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.png",
                          untrained_marker=marker)
    assert report["base_untrained"] is True and json.loads((tmp_path / "r.json").read_text())["base_untrained"]
    # Right under the heading, before any number.
    assert (tmp_path / "r.md").read_text(encoding="utf-8").split("\n\n")[1].startswith("**UNTRAINED MODEL")


def test_report_names_a_missing_input(tmp_path, capsys):
    (tmp_path / "r.yaml").write_text(f"data_dir: {tmp_path}\n", encoding="utf-8")
    assert stages.main(["report", "--config", str(tmp_path / "r.yaml")]) == 2
    assert "decode_stats.json do not exist; run `make decode` first" in capsys.readouterr().err


def test_the_report_reads_long_fields_that_decode_wrote(tmp_path):
    # A 250,000-character title is dropped as too_long; a body that long is kept, and the report
    # must still read the CSV (the csv module refuses fields over 128 KiB by default).
    (tmp_path / "long.yaml").write_text(f"seed: 1\ndata_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    run_dir = tmp_path / "data" / "runs" / "long"
    run_dir.mkdir(parents=True)
    (run_dir / "encoded.txt").write_text(f"{S}~`x~^y~@A title{E}\n", encoding="utf-8")
    texts = [f"{S}~`pics~^dog~@{'dog ' * 62_500}{E}", f"{S}~`pics~^dog~@A dog~}}{'woof ' * 50_000}{E}"]
    (run_dir / "generated.jsonl").write_text(
        "".join(json.dumps({"index": i, "text": t, "finished": True, "logprob": -1.0}) + "\n"
                for i, t in enumerate(texts)), encoding="utf-8")
    config = str(tmp_path / "long.yaml")
    assert stages.main(["decode", "--config", config, "decode.sections=[title, body]"]) == 0
    assert stages.main(["report", "--config", config]) == 0
    report = json.loads((run_dir / "report.json").read_text(encoding="utf-8"))
    assert report["dropped"] == {"too_long": 1} and report["overall"]["rows"] == 1


def test_the_loss_curve_has_the_training_average_and_every_validation_loss(tmp_path):
    from pipeline.report.stage import loss_curve

    log = tmp_path / "loss.csv"
    log.write_text("step,seconds,loss,avg,val_loss\n" + "".join(
        f"{s},{s / 10},{3 - s / 100},{3 - s / 200},{2.5 if s % 50 == 0 else ''}\n" for s in range(1, 401)))
    curve = loss_curve(log, points=100)
    assert curve["step"][:2] == [1, 5] and len(curve["step"]) == 100 and curve["avg"][0] == 2.995
    assert curve["val_step"] == list(range(50, 401, 50)) and set(curve["val_loss"]) == {2.5}
    assert loss_curve(tmp_path / "missing.csv") is None
