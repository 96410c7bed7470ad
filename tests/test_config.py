"""Typed config: defaults, overrides, and errors that name the key."""
import pytest

from pipeline.config import ConfigError, load_config
from pipeline.stages import make_deps


def write(tmp_path, text, name="run.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_default_config_loads_and_is_frozen():
    cfg = load_config("configs/default.yaml")
    assert cfg.name == "default"
    assert str(cfg.paths.encoded) == "data/runs/default/encoded.txt"
    with pytest.raises(Exception):
        cfg.seed = 1  # frozen


def test_overrides_are_typed(tmp_path):
    cfg = load_config(write(tmp_path, "encode:\n  repeat: 2\n"), ["encode.repeat=5", "seed=7", "encode.ray_address="])
    assert (cfg.encode.repeat, cfg.seed, cfg.encode.ray_address) == (5, 7, None)


@pytest.mark.parametrize("text, overrides, message", [
    ("encode:\n  repaet: 2\n", [], "encode.repaet: unknown key"),
    ("encoder:\n  repeat: 2\n", [], "encoder: unknown key"),
    ("encode:\n  repeat: two\n", [], "encode.repeat: expected an integer"),
    ("encode:\n  repeat: 0\n", [], "encode.repeat: must be at least 1"),
    ("encode:\n  keyword_gen: summary\n", [], "encode.keyword_gen: 'summary' is not one of"),
    ("", ["encode.min_keywords=4"], "encode.min_keywords: 4 is more than max_keywords"),
    ("", ["encode.workers"], "encode.workers: an override looks like"),
    ("name: x\n", [], "name: the run name is the config file's name"),
])
def test_bad_config_names_the_key(tmp_path, text, overrides, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.").replace("(", r"\(")):
        load_config(write(tmp_path, text), overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")


def test_stage_slices_change_only_with_their_sections(tmp_path):
    path = write(tmp_path, f"data_dir: {tmp_path}/data\n")
    make_deps(load_config(path))
    slices = load_config(path).paths.section_dir
    before = {p.name: p.stat().st_mtime_ns for p in slices.glob("*.json")}
    make_deps(load_config(path, ["encode.repeat=9"]))
    after = {p.name: p.stat().st_mtime_ns for p in slices.glob("*.json")}
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"encode.json"}


BAD_CONFIGS = __import__("pathlib").Path(__file__).parent / "bad_input" / "configs"


@pytest.mark.parametrize("name, message", [
    ("unclosed_list.yaml", "unclosed_list.yaml: line 4 column 10: expected ',' or ']', but got ':' "
                           "(while parsing a flow sequence)"),
    ("tab_indent.yaml", "tab_indent.yaml: line 2 column 1: found character '\\t' that cannot start any token "
                        "(while scanning for the next token)"),
])
def test_a_broken_config_file_is_a_one_line_error_with_its_position(name, message, capsys):
    from pipeline import stages

    assert stages.main(["encode", "--config", str(BAD_CONFIGS / name)]) == 2
    err = capsys.readouterr().err
    assert err == f"encode: error: {BAD_CONFIGS / message}\n"


def test_a_broken_override_is_a_one_line_error(capsys):
    from pipeline import stages

    assert stages.main(["generate", "--config", "configs/default.yaml", "generate.categories=[a"]) == 2
    assert capsys.readouterr().err == ("generate: error: override 'generate.categories=[a': line 1 column 3: "
                                       "expected ',' or ']', but got '<stream end>' (while parsing a flow sequence)\n")


def test_a_config_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / "latin.yaml"
    path.write_bytes(b"seed: 1\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin\.yaml: not UTF-8 text \(at byte offset 13\)"):
        load_config(path)
