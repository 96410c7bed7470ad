"""The one-shot title command and the TitleGenerator API, on the tiny model trained in the tests (conftest `trained`)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.core.errors import InputError
from pipeline.generate import SamplingLoop, make_prompt
from pipeline.serve import TitleGenerator
from pipeline.serve.titles import main
from tests.conftest import write_run_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


@pytest.fixture(scope="module")
def tiny_yaml(trained, tmp_path_factory):
    return write_run_config(trained, tmp_path_factory.mktemp("cfg"))


@pytest.fixture(scope="module")
def gen(tiny_yaml):
    with TitleGenerator.from_config(tiny_yaml) as g:
        yield g


def run_listing(cfg) -> dict:
    return {str(p): p.stat().st_mtime_ns for p in cfg.paths.run_dir.rglob("*")}


def test_titles_are_typed_records_with_keyword_hits(gen):
    records = gen.titles("Science!", "dog, Big Bird", n=4, seed=3)
    assert len(records) == 4
    for r in records:
        assert r.keywords == ("dog", "Big-Bird")  # normalised as encode does
        assert set(r.keywords_present) | set(r.keywords_missing) == {"dog", "Big-Bird"}
        assert r.logprob < 0 and isinstance(r.finished, bool)
        assert "~" not in r.title and "<|" not in r.title
    # Guidance (strength 8) makes the tiny model write the keywords it learned.
    assert sum("dog" in r.keywords_present for r in records) >= 3


def test_same_seed_same_titles_whatever_else_is_drawn(gen):
    alone = gen.titles("aww", ["cat"], n=3, seed=11)
    assert gen.titles("aww", ["cat"], n=3, seed=11) == alone
    mixed = gen.run([gen.request("science", ["robot"], 2), gen.request("aww", ["cat"], 3, seed=11),
                     gen.request("aww", ["pizza"], 5)])
    assert mixed[1] == alone
    assert [len(r) for r in mixed] == [2, 3, 5]
    assert all(r.keywords == ("pizza",) for r in mixed[2])


def test_default_temperature_samples_exactly_as_the_plain_loop(trained, gen):
    cfg, _ = trained
    prompts = [make_prompt("aww", ["dog"], 1, "test")] * 3
    with SamplingLoop(cfg.paths.checkpoint, cfg.generate.sampling, cfg.generate.length,
                      gen.loop.hook.inner.gcfg) as plain:
        expected, _ = plain.draw(prompts, seed=9)
    gen.loop.hook.scale = 1.0
    assert gen.loop.draw(prompts, seed=9)[0] == expected
    same = gen.titles("aww", ["dog"], n=3, seed=9, temperature=cfg.generate.temperature)
    assert [r.title for r in same] == [gen._record(prompts[0], d).title for d in expected]
    hot = gen.titles("aww", ["dog"], n=3, seed=9, temperature=1.5)
    assert [r.title for r in hot] != [r.title for r in same]


def test_unknown_category_warning_names_the_closest(gen):
    assert "aww" in gen.categories and "science" in gen.categories
    assert gen.categories["aww"] > 0
    assert gen.category_warning("aww") is None
    warning = gen.category_warning("scienc")
    assert warning.startswith("category 'scienc' is not in the training text") and "science" in warning


def test_bad_requests_raise_input_errors(gen):
    for kwargs, text in (({"n": 0}, "n: must be an integer from 1 to"), ({"seed": -1}, "seed: must be"),
                         ({"temperature": 0.01}, "temperature: must be a number from 0.05 to")):
        with pytest.raises(InputError, match=text):
            gen.request("aww", ["dog"], **{"n": 2, **kwargs})
    with pytest.raises(InputError, match="category: '!!!' has no letters or digits"):
        gen.request("!!!", ["dog"], 2)


def test_command_prints_json_records_and_leaves_the_run_alone(trained, tiny_yaml, capsys):
    cfg, _ = trained
    before = run_listing(cfg)
    code = main(["--config", str(tiny_yaml), "--category", "scienc", "--keywords", "robot, [planet",
                 "-n", "3", "--json", "--seed", "7"])
    out, err = capsys.readouterr()
    assert code == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) == 3
    assert {tuple(r["keywords"]) for r in records} == {("robot", "planet")}
    assert {"title", "keywords_present", "logprob", "finished"} <= set(records[0])
    assert "closest trained categories: science" in err
    assert run_listing(cfg) == before
    assert main(["--config", str(tiny_yaml), "--category", "aww", "-n", "2", "--no-guidance", "--seed", "7"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_untrained_run_is_a_one_line_error_naming_the_train_command(tmp_path):
    config = tmp_path / "fresh.yaml"
    config.write_text(f"data_dir: {tmp_path / 'data'}\n", encoding="utf-8")
    result = subprocess.run([sys.executable, "-m", "pipeline.serve.titles", "--config", str(config), "--category", "aww"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"titles: error: run 'fresh' is not trained yet ({tmp_path / 'data'}/runs/fresh/train.done is missing); "
        f"train it with `make encode train CONFIG={config}`"]


def test_the_documented_api_example_runs(tiny_yaml, capsys):
    text = DOCS.read_text(encoding="utf-8")
    code = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.DOTALL).group(1)
    exec(compile(code.replace("configs/default.yaml", str(tiny_yaml)), str(DOCS), "exec"), {})
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 6 and all(re.match(r"\s*-\d+\.\d\d \| .+ \| ", line) for line in lines[:5])
    assert lines[5] == "trained categories: aww, science"


def test_a_title_stops_at_a_broken_off_end_marker_or_a_lone_angle_bracket():
    from pipeline.core.format import build_prefix
    from pipeline.generate import make_prompt
    from pipeline.generate.sampling import Draw
    from pipeline.serve import TitleGenerator

    prompt = make_prompt("aww", ["cat"], 1, "test")
    # The lone '<' is what the length limit leaves of an end marker: that sample is unfinished.
    for tail, finished, title in (("My cat<|<|endoftext|>", True, "My cat"), ("My cat <", False, "My cat"),
                                  ("My cat<|end", False, "My cat")):
        record = TitleGenerator._record(prompt, Draw(build_prefix("aww", ["cat"]) + tail, finished, -1.0))
        assert record.title == title and record.keywords_present == ("cat",)


def test_a_served_title_is_cleaned_as_decode_cleans_it():
    # Seen on a weak model: a newline and control characters inside a title made the one-shot command
    # print 17 lines for 16 titles. Served titles go through decode's own rule.
    from pipeline.core.format import build_prefix
    from pipeline.decode import decode_sample, finished_title
    from pipeline.generate import make_prompt
    from pipeline.generate.sampling import Draw
    from pipeline.serve import TitleGenerator

    prompt = make_prompt("gaming", ["budget"], 1, "test")
    text = build_prefix("gaming", ["budget"]) + "Rrarain-V\n 3 to\x1b budget\t now<|endoftext|>"
    record = TitleGenerator._record(prompt, Draw(text, True, -1.0))
    assert record.title == "Rrarain-V 3 to budget now" and record.keywords_present == ("budget",)
    assert record.title == finished_title(text, True)[0] == decode_sample(text, ("title",), False)[0].values["title"]
    # The end marker's tail written without its start ends the title there, as decode reads it.
    ended = build_prefix("gaming", ["budget"]) + "My budget rig|>\n and more<|endoftext|>"
    assert TitleGenerator._record(prompt, Draw(ended, True, -1.0)).title == "My budget rig"
