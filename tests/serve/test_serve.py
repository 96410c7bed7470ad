"""The title server (pipeline.serve.api, pipeline.serve.batcher) through FastAPI's TestClient, on the tiny trained model."""
import threading
import time

import pytest
from fastapi.testclient import TestClient

from pipeline.config import ServeConfig, load_config
from pipeline.core.errors import ConfigError
from pipeline.serve import TitleGenerator
from pipeline.serve.api import create_app
from tests.conftest import write_run_config

LIMITS = ServeConfig(max_n=8, max_keywords=3, max_keyword_chars=20, max_category_chars=30,
                     max_body_bytes=1024, batch_window_ms=20, max_batch=16, queue_size=4)


@pytest.fixture(scope="module")
def served(trained, tmp_path_factory):
    gen = TitleGenerator.from_config(write_run_config(trained, tmp_path_factory.mktemp("serve")))
    with TestClient(create_app(gen, LIMITS), base_url="http://127.0.0.1") as client:
        yield client, gen


def post(client, **body):
    return client.post("/v1/titles", json=body)


def test_valid_request_gives_titles_with_keyword_hits(served):
    client, gen = served
    r = post(client, category="Aww", keywords=["dog", "Big Bird"], n=3, seed=4)
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["category"], data["keywords"], data["seed"], data["guided"]) == ("aww", ["dog", "Big-Bird"], 4, True)
    assert data["warning"] is None and len(data["titles"]) == 3
    for t in data["titles"]:
        assert set(t["keywords_present"]) | set(t["keywords_missing"]) == {"dog", "Big-Bird"}
        assert t["logprob"] < 0 and t["title"]
    # The same seed gives the same titles, and the HTTP answer is the Python API's.
    assert post(client, category="Aww", keywords=["dog", "Big Bird"], n=3, seed=4).json() == data
    assert [t["title"] for t in data["titles"]] == [t.title for t in gen.titles("aww", ["dog", "Big Bird"], 3, seed=4)]
    plain = post(client, category="aww", keywords=["dog"], n=2, guidance=False, temperature=1.2).json()
    assert (plain["guided"], plain["temperature"], plain["seed"], len(plain["titles"])) == (False, 1.2, None, 2)


def test_categories_health_docs_and_unknown_category(served):
    client, _ = served
    cats = {c["name"]: c["titles"] for c in client.get("/v1/categories").json()["categories"]}
    assert set(cats) == {"aww", "science"} and min(cats.values()) > 0
    assert client.get("/healthz").json()["status"] == "ok"
    assert "/v1/titles" in client.get("/openapi.json").json()["paths"]
    # The interactive page would load its scripts from a CDN: it is off, and says so as JSON.
    r = client.get("/docs")
    assert r.status_code == 404 and r.json()["error"] == "no such page"
    warning = post(client, category="sciense", keywords=["robot"], n=1).json()["warning"]
    assert "not in the training text" in warning and "science" in warning


@pytest.mark.parametrize("body, field", [
    ({"keywords": ["dog"]}, "category"),
    ({"category": ""}, "category"),
    ({"category": "!!!"}, "category"),
    ({"category": "a" * 31}, "category"),
    ({"category": "aww", "n": 0}, "n"),
    ({"category": "aww", "n": 9}, "n"),
    ({"category": "aww", "n": "five"}, "n"),
    ({"category": "aww", "keywords": ["a", "b", "c", "d"]}, "keywords"),
    ({"category": "aww", "keywords": {"dog": 1}}, "keywords"),
    ({"category": "aww", "keywords": ["x" * 21]}, "keywords[0]"),
    ({"category": "aww", "keywords": ["dog", "?!"]}, "keywords[1]"),
    ({"category": "aww", "seed": -1}, "seed"),
    ({"category": "aww", "temperature": 0}, "temperature"),
    ({"category": "aww", "temperature": 5}, "temperature"),
    ({"category": "aww", "guidance": "maybe"}, "guidance"),
    ({"category": "aww", "colour": "red"}, "colour"),
])
def test_bad_request_is_422_naming_the_field(served, body, field):
    client, _ = served
    r = client.post("/v1/titles", json=body)
    assert r.status_code == 422
    assert r.json()["error"].startswith(f"{field}: "), r.json()["error"]


def test_broken_json_and_big_bodies_are_refused(served):
    client, _ = served
    r = client.post("/v1/titles", content=b'{"category": ', headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"].startswith("body: ")
    r = client.post("/v1/titles", json={"category": "aww", "keywords": ["dog"] * 400})
    assert r.status_code == 413 and "serve.max_body_bytes" in r.json()["error"]


def test_full_queue_answers_503_at_once_and_waiting_requests_share_a_batch(served):
    client, gen = served
    batcher = client.app.state.batcher
    results: dict[str, object] = {}

    def call(name, **body):
        results[name] = post(client, category="aww", keywords=["cat"], n=2, **body)

    threads = []
    with gen._lock:  # the worker blocks on the model: nothing is drawn until release
        threads.append(threading.Thread(target=call, args=("first",)))
        threads[-1].start()
        deadline = time.monotonic() + 10
        taken = batcher.taken
        while batcher.taken == taken and time.monotonic() < deadline:
            time.sleep(0.01)  # until the worker has taken the first request and waits for the model
        batches_before = batcher.batches
        for i in range(LIMITS.queue_size):
            threads.append(threading.Thread(target=call, args=(f"q{i}",), kwargs={"seed": 21} if i == 1 else {}))
            threads[-1].start()
        while batcher.waiting < LIMITS.queue_size and time.monotonic() < deadline:
            time.sleep(0.01)
        assert batcher.waiting == LIMITS.queue_size
        start = time.monotonic()
        refused = post(client, category="aww", keywords=["cat"], n=2)
        assert refused.status_code == 503 and time.monotonic() - start < 2.0
        assert refused.headers["retry-after"] == "1" and "serve.queue_size" in refused.json()["error"]
        assert "busy" in refused.json()["error"]
    for t in threads:
        t.join(60)
    assert all(r.status_code == 200 for r in results.values()), {k: r.text for k, r in results.items()}
    assert len(results) == 1 + LIMITS.queue_size
    # The first request ran alone; the four that waited were collected into one batch.
    assert batcher.batches - batches_before == 2
    seeded = [t["title"] for t in results["q1"].json()["titles"]]
    assert seeded == [t.title for t in gen.titles("aww", ["cat"], 2, seed=21)]
    assert post(client, category="aww", n=1).status_code == 200


def test_serve_section_is_validated_with_the_key_named(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("serve:\n  port: 8123\n", encoding="utf-8")
    assert load_config(path).serve.port == 8123
    for override, key in (("serve.port=0", "port"), ("serve.max_n=0", "max_n"),
                          ("serve.max_batch=2", "max_batch"), ("serve.max_temperature=0", "max_temperature"),
                          ("serve.colour=1", "colour")):
        with pytest.raises(ConfigError, match=rf"serve\.{key}"):
            load_config(path, [override])
