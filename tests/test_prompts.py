"""Generation prompts files (pipeline.prompts) on the bad-input corpus in tests/bad_input/prompts/."""
from pathlib import Path

import pytest

from pipeline.errors import InputError
from pipeline.prompts import load_prompts_file

CORPUS = Path(__file__).parent / "bad_input" / "prompts"


@pytest.mark.parametrize("name, message", [
    ("unclosed.yaml", "line 1 column 43: expected ',' or ']', but got '}' (while parsing a flow sequence)"),
    ("bad_indent.yaml", "line 3 column 4: expected <block end>, but found '<block mapping start>' "
                        "(while parsing a block collection)"),
])
def test_a_broken_prompts_file_is_one_line_naming_the_file_and_position(name, message):
    with pytest.raises(InputError) as info:
        load_prompts_file(CORPUS / name, 1)
    assert str(info.value) == f"{CORPUS / name}: {message}"
