"""keyword_decode.py: the original scripts' Python API (`decode_texts`, `decode_file`), and its
agreement with the decode stage: both follow pipeline.decode.stage.decode_sample."""
import csv
import json
from collections import Counter

import pytest

import pipeline.decode.samples
from keyword_decode import decode_file, decode_texts
from pipeline.core.errors import InputError
from pipeline.core.format import Document, END_TOKEN as E, START_TOKEN as S, build_document, clean_text
from pipeline.decode import DecodeConfig, decode

FULL = f"{S}~`pics~^sunset lake~@Golden hour~}}Shot on a phone{E}"


def test_a_capture_stops_at_the_next_section():
    # The original's captures ran on into the following section when only some were asked for.
    assert decode_texts([FULL]) == ["Golden hour"]
    assert decode_texts([FULL], sections=["keywords"]) == ["sunset lake"]
    assert decode_texts([FULL], sections=["category"]) == ["pics"]
    assert decode_texts([FULL], sections=["body"]) == ["Shot on a phone"]


def test_several_sections_come_back_as_tuples_in_canonical_order():
    assert decode_texts([FULL], sections=["title", "category"]) == [("pics", "Golden hour")]
    assert decode_texts([FULL], sections=["body", "title", "keywords", "category"]) == [
        ("pics", "sunset lake", "Golden hour", "Shot on a phone")]
    assert decode_texts([f"{S}~^dog~@No body here{E}"], sections=["title", "body"]) == [("No body here", "")]


def test_only_the_first_document_of_a_sample_counts():
    two = f"{S}~`a~^x~@First{E}{S}~`b~^y~@Second{E}"
    assert decode_texts([two]) == ["First"]
    assert decode_texts([two], sections=["category", "keywords"]) == [("a", "x")]
    # The first document has no title but the second has one: it must not be borrowed.
    dropped = Counter()
    assert decode_texts([f"{S}~`a~^x{E}{S}~`b~^y~@Second{E}"], dropped=dropped) == []
    assert dropped == {"empty_title": 1}


def test_unfinished_samples_are_dropped_and_counted_unless_kept():
    texts = [f"{S}~`a~^x~@Never ended", f"{S}~`a~^x~@Ran into the next{S}~`b~@Other{E}", f"{S}~`a~^x~@Done{E}"]
    dropped = Counter()
    assert decode_texts(texts, dropped=dropped) == ["Done"]
    assert dropped == {"unfinished": 2}
    assert decode_texts(texts, keep_unfinished=True) == ["Never ended", "Ran into the next", "Done"]


def test_empty_titles_are_dropped_and_counted():
    dropped = Counter()
    texts = [f"{S}~`a~^x~@{E}", f"{S}~`a~^x~@   {E}", f"{S}~`a~^x{E}", f"{S}~`a~^x~@ ok {E}"]
    assert decode_texts(texts, dropped=dropped) == ["ok"]
    assert dropped == {"empty_title": 3}


def test_cleaned_titles_with_format_characters_decode_back_exactly():
    for raw in ["Meet me @ the park", "Played ~500 hours", "Rate my ~@home office", "2^10 = 1024 ~"]:
        title = clean_text(raw)
        line = build_document(Document("games", ("time",), title, None))
        assert decode_texts([line]) == [title]


def test_other_tokens_and_unknown_sections_are_rejected():
    with pytest.raises(ValueError, match="fixed by pipeline/core/format.py"):
        decode_texts([FULL], start_token="<s>")
    with pytest.raises(ValueError, match="'summary' is not one of"):
        decode_texts([FULL], sections=["summary"])


def test_decode_file_streams_gpt2_simple_output(tmp_path, monkeypatch):
    # A tiny read size makes samples and delimiters straddle reads.
    monkeypatch.setattr(pipeline.decode.samples, "_READ_CHARS", 7)
    delim = "=" * 20 + "\n"
    samples = [FULL, f"{S}~`a~^x~@Second, with a comma{E}", FULL, f"{S}~`a~^x~@cut off", f"{S}~`a~^x~@{E}"]
    src = tmp_path / "gen.txt"
    src.write_text("".join(s + "\n" + delim for s in samples), encoding="utf-8")
    out = tmp_path / "out.csv"
    counts = decode_file(str(src), out_file=str(out), sections=["title", "category"])
    with out.open(newline="", encoding="utf-8") as f:
        assert list(csv.reader(f)) == [["category", "title"], ["pics", "Golden hour"],
                                       ["a", "Second, with a comma"]]
    assert counts == {"samples": 5, "rows": 2, "duplicates": 1, "dropped": {"empty_title": 1, "unfinished": 1}}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gen.txt", "out.csv"]


def test_decode_file_reads_json_lines_and_counts_bad_lines(tmp_path):
    src = tmp_path / "gen.jsonl"
    lines = [json.dumps({"text": FULL}), "{not json", json.dumps({"no_text": 1}), json.dumps({"text": FULL})]
    src.write_bytes(("\n".join(lines) + "\n").encode() + b'{"text": "\xff"}\n')
    counts = decode_file(str(src), out_file=str(tmp_path / "o.csv"), doc_delim=None)
    assert counts == {"samples": 5, "rows": 1, "duplicates": 1,
                      "dropped": {"bad_json": 1, "bad_record": 1, "invalid_utf8": 1}}
    assert (tmp_path / "o.csv").read_text(encoding="utf-8").splitlines() == ["title", "Golden hour"]


def test_decode_file_names_a_missing_input(tmp_path):
    with pytest.raises(InputError, match="missing.txt"):
        decode_file(str(tmp_path / "missing.txt"), out_file=str(tmp_path / "o.csv"))
    assert not (tmp_path / "o.csv").exists()


# Samples a generator can produce that tripped decoders before: the end token cut off (with the
# generator's flag saying it finished), a second document after the first, markers and tokens
# inside a title, a document that never ended, one that ran into the next, an empty title.
TRICKY = [
    {"text": f"{S}~`pics~^lake~@Cut at the end marker", "finished": True},
    {"text": f"{S}~`pics~^lake~@Cut at the end marker", "finished": False},
    {"text": f"{S}~`aww~^dog~@First one{E}{S}~`aww~^cat~@Second one{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@Costs ~500 @ the shop, ~ ok? ^_^{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@A title ~@with a second marker{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@Never ended", "finished": False},
    {"text": f"{S}~`aww~^dog~@Ran into{S}~`aww~^dog~@the next{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@  spaced   out\ttitle {E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@First one{E}", "finished": True},
    # The model began the end marker and broke off: the title is cut there, or dropped when no word is left.
    {"text": f"{S}~`aww~^dog~@Who will follow?<|endoftext and more text{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@A stray <| inside{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@Broke off at the end<|endof", "finished": True},
    {"text": f"{S}~`aww~^dog~@ ?! <|endoftext{E}", "finished": True},
    {"text": f"{S}~`aww~^dog~@Loops <|!<|!<|!", "finished": False},
    {"text": f"{S}~`aww~^dog~@One less-than < is kept{E}", "finished": True},
]


@pytest.mark.parametrize("keep_unfinished", [False, True])
def test_decode_texts_and_the_decode_stage_agree_on_tricky_samples(tmp_path, keep_unfinished):
    sections = ("category", "keywords", "title")
    records = [{"index": i, "category": "x", "keywords": [], "seed": 1, **r} for i, r in enumerate(TRICKY)]
    generated = tmp_path / "generated.jsonl"
    generated.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    encoded = tmp_path / "encoded.txt"
    encoded.write_text(f"{S}~`pics~^lake~@Some training title{E}\n", encoding="utf-8")
    stats = decode(DecodeConfig(keep_unfinished=keep_unfinished), generated, encoded, tmp_path / "stage.csv",
                   tmp_path / "rejected.csv", tmp_path / "stats.json")

    with (tmp_path / "stage.csv").open(newline="", encoding="utf-8") as f:
        stage = {(r["category"], r["keywords"], r["title"]): int(r["count"]) for r in csv.DictReader(f)}
    dropped: Counter = Counter()
    legacy = decode_texts(records, sections=sections, keep_unfinished=keep_unfinished, dropped=dropped)
    assert Counter(legacy) == stage
    assert dict(dropped) == stats["dropped"]
    counts = decode_file(str(generated), out_file=str(tmp_path / "file.csv"), doc_delim=None, sections=sections,
                         keep_unfinished=keep_unfinished)
    assert counts["rows"] == len(stage) and counts["dropped"] == stats["dropped"]
    # The cut-off sample counts as finished by its flag, so it is kept either way.
    assert ("pics", "lake", "Cut at the end marker") in stage
    for title in ("Who will follow?", "A stray", "Broke off at the end", "One less-than < is kept"):
        assert ("aww", "dog", title) in stage
    assert not any("<|" in title for _, _, title in stage)
    assert stats["cut_at_broken_marker"] == 5
