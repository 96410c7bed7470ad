"""The Ray encoder end to end: determinism, augmentation, bad input, atomic output, original API."""
import csv
import itertools
import json

import pytest

from keyword_encode import encode_keywords
from pipeline.core.errors import InputError
from pipeline.core.format import parse
from pipeline.encode import EncodeConfig, encode

SUBJECTS = ["My dog", "Our landlord", "The new Zelda game", "A stranger in Paris", "My grandmother",
            "This sourdough starter", "The city council", "Netflix", "My first marathon", "A tiny frog"]
ENDINGS = ["finally learned to open the fridge", "made me cry today", "is way better than expected",
           "broke every record last year", "needs your advice", "surprised the whole family"]


def titles(n):
    for subject, ending in itertools.islice(itertools.product(SUBJECTS, ENDINGS), n):
        yield f"{subject} {ending}"


def write_csv(path, rows, header=("subreddit", "title")):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def run(tmp_path, input_path, name="out", seed=42, **encode_options):
    ecfg = EncodeConfig(input=str(input_path), **encode_options)
    out = tmp_path / f"{name}.txt"
    stats = encode(ecfg, seed, out, tmp_path / f"{name}.json")
    return out, stats


@pytest.fixture(scope="module")
def sample_csv(tmp_path_factory):
    subs = ["aww", "AskReddit", "cooking", "gaming"]
    rows = [(subs[i % 4], t) for i, t in enumerate(titles(60))]
    return write_csv(tmp_path_factory.mktemp("in") / "titles.csv", rows)


def test_same_seed_gives_identical_bytes_with_one_or_two_workers(tmp_path, sample_csv, ray_session):
    one, stats1 = run(tmp_path, sample_csv, "one", workers=1, batch_rows=7)
    two, stats2 = run(tmp_path, sample_csv, "two", workers=2, batch_rows=13)
    assert one.read_bytes() == two.read_bytes()
    other, _ = run(tmp_path, sample_csv, "seed", seed=7, workers=2, batch_rows=13)
    assert other.read_bytes() != one.read_bytes()
    assert stats1["rows_encoded"] == stats2["rows_encoded"] == 60


def test_the_driver_as_a_worker_gives_the_bytes_of_actors_alone_and_of_one_process(tmp_path, sample_csv,
                                                                                    ray_session, monkeypatch):
    import random
    from collections import Counter

    import pipeline.encode.stage as stage
    from pipeline.core.nlp import load_spacy
    from pipeline.encode.rows import iter_rows

    # In the driver, count the batches it encodes itself (the actors import the class unpatched).
    mine = Counter()
    real = stage.EncodeWorker.encode

    def counted(self, rows):
        mine[len(rows)] += 1
        return real(self, rows)

    monkeypatch.setattr(stage.EncodeWorker, "encode", counted)
    outs = {}
    for workers in (1, 2, 3):  # the driver alone (no Ray); with one actor; with two
        mine.clear()
        outs[workers], _ = run(tmp_path, sample_csv, f"w{workers}", workers=workers, batch_rows=5, csv_chunk_rows=20)
        assert mine, f"workers={workers}: the driver encoded nothing"
        if workers == 1:
            assert sum(k * v for k, v in mine.items()) == 60
    assert 0 < sum(k * v for k, v in mine.items()) < 60  # workers=3: the actors took their share
    # As on a Ray cluster: every worker an actor, the driver only deals.
    monkeypatch.setattr(stage, "pool_shape", lambda ecfg: (ecfg.workers, False))
    mine.clear()
    outs["actors"], _ = run(tmp_path, sample_csv, "actors", workers=2, batch_rows=5, csv_chunk_rows=20)
    assert not mine
    # One process, one nlp.pipe over every row (bench.encode's baseline (b)).
    ecfg = EncodeConfig(input=str(sample_csv))
    docs = stage.encode_rows(load_spacy(ecfg.spacy_model), ecfg, 42,
                             [r for c in iter_rows(sample_csv, ecfg, Counter()) for r in c]).documents
    random.Random(42).shuffle(docs)
    single = "".join(d + "\n" for d in docs).encode()
    assert {o.read_bytes() for o in outs.values()} == {single}


def test_batches_start_small_keep_file_order_and_end_in_quarter_batches(tmp_path):
    from collections import Counter

    from pipeline.encode.stage import _batches

    rows = [("aww", f"Title number {i} of many") for i in range(103)]
    path = write_csv(tmp_path / "b.csv", rows)
    ecfg = EncodeConfig(input=str(path), workers=2, batch_rows=8, csv_chunk_rows=40)
    batches = list(_batches(path, ecfg, Counter()))
    assert [r.index for b in batches for r in b] == list(range(103))
    # Full batches, then at least the last 2 * batch_rows * workers = 32 rows (to the batch grid: 39) in
    # quarter batches; chunks of 40 rows (the first would be 64 if csv_chunk_rows allowed it).
    assert [len(b) for b in batches] == [8] * 8 + [2] * 19 + [1]


def test_documents_follow_the_format_and_the_augmentation_rules(tmp_path, sample_csv, ray_session):
    out, stats = run(tmp_path, sample_csv, repeat=3, min_keywords=1, max_keywords=3)
    lines = out.read_text(encoding="utf-8").splitlines()
    docs = [parse(line).document for line in lines]
    assert stats["documents_written"] == len(lines) and 60 <= len(lines) <= 180
    assert {d.category for d in docs} == {"aww", "askreddit", "cooking", "gaming"}
    by_title = {}
    for d in docs:
        assert 1 <= len(d.keywords) <= 3
        by_title.setdefault(d.title, []).append(d.keywords)
    assert len(by_title) == 60
    for variants in by_title.values():
        assert len(variants) == len(set(variants)) <= 3  # identical documents from one row written once
    # The variants of one title are spread across the file, not written next to each other.
    adjacent = sum(parse(a).document.title == parse(b).document.title for a, b in zip(lines, lines[1:]))
    assert adjacent < len(lines) * 0.1
    saved = json.loads((tmp_path / "out.json").read_text())
    assert saved["documents_written"] == len(lines) and saved["rows_per_second"] > 0
    assert sum(int(v) for v in saved["keywords_per_document"]["histogram"].values()) == len(lines)


def test_bad_rows_are_skipped_and_counted(tmp_path, ray_session):
    good = list(titles(12))
    path = tmp_path / "bad.csv"
    lines = ["subreddit,title"] + [f"aww,{t}" for t in good] + [
        "aww,",                          # empty title
        "aww,   ",                       # blank title
        f",{good[0]} but no category",   # NaN category
        "aww," + "long " * 2000,         # 10,000-character title
        f"aww,{good[1]}",                # duplicate row
        f"aww,{good[2]}",                # duplicate row
        'aww,"quoted, with comma",extra,fields',  # malformed line
    ]
    data = "\ufeff" + "\n".join(lines) + "\n"  # with a byte-order mark
    raw = data.encode("utf-8") + b"aww,Caf\xe9 latte art gone wrong\n"  # Latin-1 byte, not UTF-8
    path.write_bytes(raw)
    out, stats = run(tmp_path, path)
    assert stats["rows_encoded"] == 12
    assert stats["rows_skipped"] == {"duplicate": 2, "empty_title": 2, "invalid_utf8": 1,
                                     "malformed_line": 1, "missing_category": 1, "too_long": 1}
    assert stats["rows_read"] == 12 + 8
    titles_out = {parse(line).document.title for line in out.read_text(encoding="utf-8").splitlines()}
    assert titles_out == set(good)


def test_field_text_that_would_break_the_format_is_cleaned_and_counted(tmp_path, ray_session):
    path = write_csv(tmp_path / "tricky.csv", [("gaming", "Played ~500 hours ~@home\nstill bad <|endoftext|>"),
                                               ("aww", "Meet me @ the park")])
    out, stats = run(tmp_path, path)
    titles_out = {parse(line).document.title for line in out.read_text(encoding="utf-8").splitlines()}
    assert titles_out == {"Played ~500 hours @home still bad", "Meet me @ the park"}
    assert stats["fields_cleaned"] == 1


def test_missing_column_names_it_and_lists_the_present_ones(tmp_path):
    path = write_csv(tmp_path / "cols.csv", [("aww", "x")], header=("sub", "title"))
    with pytest.raises(InputError, match=r"missing column\(s\) 'subreddit'; columns present: 'sub', 'title'"):
        run(tmp_path, path)
    assert not list(tmp_path.glob("out*"))  # nothing half-written


def test_missing_and_empty_input_files(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        run(tmp_path, tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty"):
        run(tmp_path, tmp_path / "empty.csv")


def test_original_api_with_body_and_user_keywords(tmp_path, ray_session):
    path = write_csv(tmp_path / "api.csv", [("books", "Finished Dune at last", "Took me a year", "Dune, sci fi ,"),
                                            ("books", "No keywords given", "Body", "")],
                     header=("sub", "headline", "text", "tags"))
    out = tmp_path / "api.txt"
    stats = encode_keywords(str(path), out_path=str(out), category_field="sub", title_field="headline",
                            body_field="text", keywords_field="tags", keyword_sep=",", repeat=3, max_keywords=3)
    docs = [parse(line).document for line in out.read_text(encoding="utf-8").splitlines()]
    assert stats["documents_written"] == len(docs) and (tmp_path / "api.txt.stats.json").exists()
    dune = [d for d in docs if d.title == "Finished Dune at last"]
    assert {k for d in dune for k in d.keywords} == {"Dune", "sci-fi"}
    assert all(d.body == "Took me a year" for d in dune)
    assert [d.keywords for d in docs if d.title == "No keywords given"] == [()]
    with pytest.raises(ValueError, match="fixed by pipeline/core/format.py"):
        encode_keywords(str(path), out_path=str(out), start_token="<s>")


BAD_INPUT = __import__("pathlib").Path(__file__).parents[1] / "bad_input" / "encode"


def test_control_characters_are_removed_and_counted_as_cleaned_fields(tmp_path, ray_session):
    out, stats = run(tmp_path, BAD_INPUT / "control_chars.csv")
    text = out.read_text(encoding="utf-8")
    assert not any(ord(c) < 32 and c != "\n" or 127 <= ord(c) < 160 for c in text)
    assert {parse(line).document.title for line in text.splitlines()} == {"My dog ate the remote", "Burnt the rice"}
    assert {parse(line).document.category for line in text.splitlines()} == {"aww", "cooking"}
    # Two titles and one category had control characters; the NUL-only title is empty.
    assert stats["fields_cleaned"] == 3 and stats["rows_skipped"] == {"empty_title": 1}


def test_a_local_ray_starts_even_when_another_cluster_is_announced(tmp_path):
    import os
    import subprocess
    import sys

    # RAY_ADDRESS (like a running cluster or a stale ray_current_cluster file) made ray.init join
    # that cluster and then refuse num_cpus; ray_address: null must always start a private Ray.
    code = ("from pipeline.encode.stage import EncodeConfig, start_ray; import ray; start_ray(EncodeConfig(workers=1)); "
            "print(ray.cluster_resources()['CPU']); ray.shutdown()")
    env = {**os.environ, "RAY_ADDRESS": "127.0.0.1:9"}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120,
                          cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1.0"]


def test_a_token_cluster_without_its_token_is_a_one_line_error_saying_what_to_set(tmp_path):
    import os
    import shutil
    import signal
    import socket
    import subprocess
    import sys
    import tempfile
    import time

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # A short temp folder: Ray's socket paths must stay under the Unix limit.
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")
    head_env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "k" * 32}
    head = subprocess.Popen(
        [os.path.join(os.path.dirname(sys.executable), "ray"), "start", "--head", "--block", f"--port={port}",
         "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={temp}"],
        env=head_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert head.poll() is None and time.monotonic() < deadline, "the Ray head did not start"
            time.sleep(0.2)
        (tmp_path / "c.yaml").write_text(f"encode: {{input: {BAD_INPUT / 'short_rows.csv'}, workers: 1, "
                                         f"ray_address: '127.0.0.1:{port}'}}\n")
        done = subprocess.run([sys.executable, "keyword_encode.py", "--config", str(tmp_path / "c.yaml")],
                              env={**os.environ, "RAY_AUTH_MODE": "disabled"}, cwd=root, capture_output=True,
                              text=True, timeout=180)
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        shutil.rmtree(temp, ignore_errors=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"encode: error: encode.ray_address: cannot connect to the Ray cluster at 127.0.0.1:{port} (")
    assert last.endswith("set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) to its token in the "
                         "environment; ray_address: null runs a local Ray")
