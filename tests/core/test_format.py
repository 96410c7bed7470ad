"""The training text format: building, parsing and sanitising round-trip."""
import pytest

from pipeline.core.format import (END_TOKEN, START_TOKEN, Document, build_document, build_prefix, clean_text,
                             closes_title, normalise_category, normalise_keyword, parse, section_regex)

TRICKY_TITLES = [
    "What is the weirdest thing your dog ate?",
    "Meet me @ the park at 5, or DM @jenny_codes",
    "Played ~500 hours of Factorio and I still suck",
    "Rate my setup ~@home office edition",
    "Why does `git rebase` scare everyone?",
    "2^10 = 1024, TIL my calculator agrees",
    "Fixed the {broken} shelf } with one screw",
    "Tilde at the end~",
    "Double markers ~~@ and ~~~^ and ~`",
    "Tokens <|endoftext|> in the <|startoftext|> middle",
    "Line one\nline two\r\n\tand a tab",
    "Haskell's <|> and <||> operators <|",
    "Elixir's |> pipe and ||> too",
]


@pytest.mark.parametrize("title", TRICKY_TITLES)
def test_title_round_trips_through_a_document(title):
    clean = clean_text(title)
    line = build_document(Document("askreddit", ("dog", "cat-food"), clean, None))
    assert line.startswith(START_TOKEN) and line.endswith(END_TOKEN)
    assert "\n" not in line
    assert parse(line).document == Document("askreddit", ("dog", "cat-food"), clean, None)


def test_clean_text_keeps_what_users_typed_except_what_breaks_the_format():
    assert clean_text("Meet me @ the park") == "Meet me @ the park"
    assert clean_text("~500 hours") == "~500 hours"
    assert clean_text("home ~@office") == "home @office"
    assert clean_text("a ~~^ b") == "a ^ b"
    assert clean_text("a\nb\r\n c") == "a b c"
    assert clean_text(f"x{END_TOKEN}y") == "x y"


def test_a_title_is_cut_at_a_broken_off_end_marker_and_clean_text_disarms_one():
    assert clean_text("Haskell's <|> and <||> operators <|") == "Haskell's <> and <> operators <"
    doc, finished, cut = parse(f"{START_TOKEN}~`a~^x~@Who will follow?<|endoftext more~}}body{END_TOKEN}")
    assert (doc.title, doc.body, finished, cut) == ("Who will follow?", "body", True, True)
    assert parse(f"{START_TOKEN}~`a~^x~@ ?! <|!<|").document.title == ""
    assert parse(f"{START_TOKEN}~`a~^x~@a < b{END_TOKEN}") == (Document("a", ("x",), "a < b"), True, False)


def test_a_title_is_cut_at_the_end_markers_tail_too():
    # The model ends a title with the marker's end but not its start (seen on the default run).
    assert clean_text("Elixir's |> pipe and ||> too") == "Elixir's > pipe and > too"
    for title, kept in (("Made my old Paris a 14-of visit with three-V|>", "Made my old Paris a 14-of visit with three-V"),
                        ("How do I budget on a Mreatendoftext|>", "How do I budget on a Mreat"),
                        ("Shiba-chanic|> , what is a long garlic?", "Shiba-chanic"),
                        ("endoftext|> and more", ""), ("Why not|>?", "Why not")):
        doc, finished, cut = parse(f"{START_TOKEN}~`a~^x~@{title}{END_TOKEN}")
        assert (doc.title, finished, cut) == (kept, True, True), title


def test_a_piece_closes_a_title_when_parse_would_end_it_there_or_what_follows_it_would():
    def title_after(piece: str) -> str:
        return parse(f"{START_TOKEN}~`a~^x~@My dog{piece} ran{END_TOKEN}").document.title

    # Whatever parse cuts or ends the title at closes it ...
    for piece in ("<|", "?<|", "~@", "~}", "|>", "endoftext|>", " text|>"):
        assert title_after(piece) != f"My dog{piece} ran" and closes_title(piece), piece
    # ... and so does what only begins it: the marker's opener, a '|' that '>' would complete, a marker's
    # name (a model held off '<|' writes 'endoftext|>' instead: 'Reendoftext|>').
    for piece in ("<", " <", "|", "endoftext", "Reendoftext", "startoftext", "~"):
        assert closes_title(piece), piece
    # Ordinary text does not, nor the marker's pieces that are ordinary words or characters.
    for piece in (" dog", "ing", " end", "of", "text", ">", " > ", "!", "\n"):
        assert title_after(piece) == f"My dog{piece} ran" and not closes_title(piece), piece


def test_body_section_and_absent_sections():
    doc = Document(None, (), "A title", "The body text ~} with a brace }")
    doc = Document(None, (), "A title", clean_text(doc.body))
    line = build_document(doc)
    assert line == f"{START_TOKEN}~^~@A title~}}The body text }} with a brace }}{END_TOKEN}"
    assert parse(line).document == doc


def test_only_the_requested_section_is_captured():
    line = build_document(Document("pics", ("sunset",), "Golden hour", "Shot on a phone"))
    assert section_regex("title").search(line).group(1) == "Golden hour"
    assert section_regex("keywords").search(line).group(1) == "sunset"


def test_first_document_wins_and_unfinished_is_parsed():
    two = build_document(Document("a", ("x",), "First", None)) + build_document(Document("b", ("y",), "Second", None))
    assert parse(two).document.title == "First"
    assert parse(f"{START_TOKEN}~`a~^x~@Never ended").document.title == "Never ended"


def test_normalisation_rules():
    assert normalise_keyword("Big Bird") == "Big-Bird"
    assert normalise_keyword("[Suggestion") == "Suggestion"
    assert normalise_keyword("Netflix") == "Netflix"
    assert normalise_keyword("cat-food") == "cat-food"
    assert normalise_keyword("U.S. Army!") == "U-S-Army"
    assert normalise_keyword("?!") == ""
    assert normalise_category("  AskReddit ") == "askreddit"
    assert normalise_category("Ask Science/Physics") == "ask-science-physics"


def test_prefix_uses_the_same_normalisation_as_encode():
    assert build_prefix("AskReddit", ["Big Bird", "dog", "!!"]) == f"{START_TOKEN}~`askreddit~^Big-Bird dog~@"
    assert build_prefix(None, []) == f"{START_TOKEN}~^~@"
