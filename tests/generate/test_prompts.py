"""Generation prompts files (pipeline.generate.prompts) on the bad-input corpus in tests/bad_input/prompts/."""
from pathlib import Path

import pytest

from pipeline.core.errors import InputError
from pipeline.core.format import build_prefix
from pipeline.generate import GenerateConfig
from pipeline.generate.prompts import Prompt, load_prompts, load_prompts_file

CORPUS = Path(__file__).parents[1] / "bad_input" / "prompts"


@pytest.mark.parametrize("name, message", [
    ("unclosed.yaml", "line 1 column 43: expected ',' or ']', but got '}' (while parsing a flow sequence)"),
    ("bad_indent.yaml", "line 3 column 4: expected <block end>, but found '<block mapping start>' "
                        "(while parsing a block collection)"),
])
def test_a_broken_prompts_file_is_one_line_naming_the_file_and_position(name, message):
    with pytest.raises(InputError) as info:
        load_prompts_file(CORPUS / name, 1)
    assert str(info.value) == f"{CORPUS / name}: {message}"


def test_prompts_from_yaml_csv_and_cross_product(tmp_path):
    yml = tmp_path / "p.yaml"
    yml.write_text("prompts:\n  - {category: Ask Reddit, keywords: [Big Bird, '[dog'], count: 2}\n"
                   "  - {category: null, keywords: 'cat, coffee'}\n")
    prompts = load_prompts_file(yml, default_count=5)
    assert prompts == [Prompt("ask-reddit", ("Big-Bird", "dog"), 2), Prompt(None, ("cat", "coffee"), 5)]
    assert prompts[0].prefix == build_prefix("Ask Reddit", ["Big Bird", "[dog"]) == \
        "<|startoftext|>~`ask-reddit~^Big-Bird dog~@"

    csv_path = tmp_path / "p.csv"
    csv_path.write_text('category,keywords,count\naww,"dog, cat",3\nscience,,\n')
    assert load_prompts_file(csv_path, 1) == [Prompt("aww", ("dog", "cat"), 3), Prompt("science", (), 1)]

    cross = GenerateConfig(prompts_file=None, categories=("aww", "gaming"), keyword_sets=(("dog",), ("cat", "car")),
                           count=4)
    assert [(p.category, p.keywords, p.count) for p in load_prompts(cross)] == [
        ("aww", ("dog",), 4), ("aww", ("cat", "car"), 4), ("gaming", ("dog",), 4), ("gaming", ("cat", "car"), 4)]


@pytest.mark.parametrize("text, problem", [("- {category: aww, keywords: [dog], count: 0}\n", "prompt 1: count"),
                                           ("- {category: aww, keyword: [dog]}\n", "prompt 1: unknown key 'keyword'"),
                                           ("- {category: aww}\n- just text\n", "prompt 2: expected a mapping"),
                                           ("category: aww\n", "expected a list of prompts")])
def test_bad_prompts_file_names_the_row(tmp_path, text, problem):
    path = tmp_path / "prompts.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        load_prompts_file(path, 1)
