"""Hostile and odd input at every front door of titles on demand: the real server (`python -m pipeline.serve`,
a uvicorn subprocess on 127.0.0.1), the one-shot command and the Python API, over the tiny trained model.

The HTTP corpus is tests/bad_input/serve/requests.json. Whatever comes in: no 500, no traceback and no
file path in any answer, every refusal is JSON with `error`, and the server still answers afterwards.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from pipeline.core.errors import InputError
from tests.conftest import write_run_config

CORPUS = json.loads((Path(__file__).parents[1] / "bad_input" / "serve" / "requests.json").read_text(encoding="utf-8"))
ROOT = Path(__file__).resolve().parents[2]
# What must never reach a client: a Python trace, or where the code or the data live.
LEAKS = ("Traceback", 'File "', "site-packages", str(ROOT), "/tmp/", ".py", "InvalidArgumentError")
TOKEN = "a-test-token-of-32-characters-xx"
# A prompt over the model's context, within the request limits (the repro).
OVERFLOW = {"category": "\U00020000" * 50, "keywords": ["\U00020000" * 40] * 6, "n": 1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(config: Path, *overrides: str) -> tuple[subprocess.Popen, str]:
    """`python -m pipeline.serve` on a free loopback port, once /healthz answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.serve", "--config", str(config), *overrides,
                             f"serve.port={port}", "serve.max_keywords=6", "serve.max_category_chars=50"],
                            cwd=ROOT, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError(f"the server did not start: {proc.stderr.read()[-2000:]}")


def stop(proc: subprocess.Popen) -> str:
    """Stop the server as a service manager would (SIGTERM); its log."""
    proc.terminate()
    _, err = proc.communicate(timeout=60)
    return err


@pytest.fixture(scope="module")
def tiny_config(trained, tmp_path_factory):
    return write_run_config(trained, tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="module")
def server(tiny_config):
    proc, url = start(tiny_config)
    yield url
    stop(proc)


def send(url: str, case: dict) -> httpx.Response:
    method = case.get("method", "POST")
    headers = {"content-type": case.get("content_type", "application/json")} if method == "POST" else {}
    if "host" in case:
        headers["host"] = case["host"]
    if case.get("overflow"):
        content = json.dumps(OVERFLOW).encode()
    elif "body_hex" in case:
        content = bytes.fromhex(case["body_hex"])
    else:
        content = case.get("body", "").encode("utf-8") if method == "POST" else None
    return httpx.request(method, url + case.get("path", "/v1/titles"), content=content, headers=headers, timeout=60)


def assert_clean(r: httpx.Response) -> None:
    assert r.status_code < 500, r.text
    for leak in LEAKS:
        assert leak not in r.text, (leak, r.text[:500])
    if r.status_code >= 300 and r.request.method != "HEAD":
        assert r.headers["content-type"].startswith("application/json") and r.json()["error"], r.text


@pytest.mark.parametrize("case", CORPUS, ids=[c["name"] for c in CORPUS])
def test_the_server_answers_hostile_requests_cleanly(server, case):
    r = send(server, case)
    assert r.status_code in (case["status"] if isinstance(case["status"], list) else [case["status"]]), r.text
    assert_clean(r)
    if r.status_code >= 300:
        assert case["error"] in r.json()["error"]
    assert httpx.get(server + "/healthz", timeout=10).json()["status"] == "ok"


def test_an_overflowing_prompt_names_the_field_and_budget_and_spares_the_rest_of_its_batch(server):
    # Good requests sent alongside the overflowing one (the server batches requests without a seed).
    results: dict[str, httpx.Response] = {}

    def post(name: str, body: dict) -> None:
        results[name] = httpx.post(server + "/v1/titles", json=body, timeout=120)

    threads = [threading.Thread(target=post, args=(f"good{i}", {"category": "aww", "keywords": ["dog"], "n": 2}))
               for i in range(3)]
    threads.append(threading.Thread(target=post, args=("overflow", OVERFLOW)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    error = results["overflow"].json()["error"]
    assert results["overflow"].status_code == 422 and error.split(":")[0] in ("category", "keywords")
    assert "the prompt takes" in error and "generate.length" in error
    assert all(results[f"good{i}"].status_code == 200 for i in range(3))


def test_a_token_and_the_allowed_hosts_guard_the_api(tiny_config):
    proc, url = start(tiny_config, f"serve.token={TOKEN}", "serve.allowed_hosts=[127.0.0.1, titles.example]")
    try:
        body = {"category": "aww", "n": 1, "seed": 3}
        refused = httpx.post(url + "/v1/titles", json=body, timeout=60)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
        wrong = httpx.post(url + "/v1/titles", json=body, headers={"authorization": "Bearer " + "x" * 32})
        assert wrong.status_code == 401
        ok = httpx.post(url + "/v1/titles", json=body, headers={"authorization": f"Bearer {TOKEN}"}, timeout=60)
        assert ok.status_code == 200 and len(ok.json()["titles"]) == 1
        proxied = httpx.get(url + "/healthz", headers={"host": "titles.example"})
        assert proxied.status_code == 200 and proxied.json()["token_required"] is True
        assert httpx.get(url + "/healthz", headers={"host": "localhost:1234"}).status_code == 400
    finally:
        stop(proc)


def test_a_busy_port_is_named_before_anything_is_claimed(tiny_config):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "pipeline.serve", "--config", str(tiny_config),
                               f"serve.port={port}"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"serve: error: serve.port: port {port} on 127.0.0.1 is in use (stop what runs there, or choose another "
        "with serve.port=...)"]


def test_a_public_host_is_warned_about(tiny_config):
    proc, url = start(tiny_config, "serve.host=0.0.0.0")
    log = stop(proc)
    assert "serve: warning: serve.host 0.0.0.0 answers other machines; set serve.token" in log


def test_start_up_is_quiet_with_one_device_line(tiny_config):
    proc, _ = start(tiny_config)
    log = stop(proc)
    assert "cuInit" not in log and "E0000" not in log and "cudart_stub" not in log, log
    assert [line for line in log.splitlines() if "TensorFlow" in line] == [
        next(line for line in log.splitlines() if line.startswith("serve: TensorFlow "))]
    assert "on CPU (no GPU visible)" in log


# The one-shot command and the Python API refuse what the server refuses, in the same words.
PYTHON_CASES = [
    ({"temperature": float("inf")}, "temperature: "),
    ({"temperature": float("nan")}, "temperature: "),
    ({"temperature": "0.5"}, "temperature: "),
    ({"n": "2"}, "n: "),
    ({"n": True}, "n: "),
    ({"seed": True}, "seed: "),
    ({"guided": "no"}, "guidance: "),
    ({"keywords": {"garlic": 1}}, "keywords: "),
    ({"keywords": ["?!"]}, "keywords[0]: "),
    ({"keywords": ["\ud800"]}, "keywords[0]: "),
    ({"keywords": OVERFLOW["keywords"], "category": OVERFLOW["category"]}, "the prompt takes"),
]


@pytest.fixture(scope="module")
def gen(tiny_config):
    from pipeline.serve import TitleGenerator

    with TitleGenerator.from_config(tiny_config, ["serve.max_keywords=6", "serve.max_category_chars=50"]) as g:
        yield g


@pytest.mark.parametrize("kwargs, error", PYTHON_CASES, ids=[e + repr(k)[:30] for k, e in PYTHON_CASES])
def test_the_python_api_raises_input_errors(gen, kwargs, error):
    with pytest.raises(InputError, match=error.replace("[", r"\[").replace("]", r"\]")):
        gen.titles(**{"category": "aww", "n": 1, **kwargs})


def test_the_python_api_takes_none_for_no_keywords_and_the_server_would_say_the_same(gen):
    assert len(gen.titles("aww", None, n=2, seed=1)) == 2
    with pytest.raises(InputError) as python:
        gen.titles("aww", ["dog"], n="2")
    assert str(python.value) == "n: must be an integer from 1 to 16, got '2'"


@pytest.mark.parametrize("args, error", [
    (["--temperature", "inf"], "titles: error: temperature: must be a number from 0.05 to 2.0, got inf"),
    (["--keywords", "?!"], "titles: error: keywords[0]: '?!' has no letters or digits"),
    (["-n", "0"], "titles: error: n: must be an integer from 1 to 16, got 0"),
], ids=["inf", "punctuation", "zero"])
def test_the_command_refuses_in_one_line_before_loading_the_model(tiny_config, args, error):
    done = subprocess.run([sys.executable, "-m", "pipeline.serve.titles", "--config", str(tiny_config),
                           "--category", "aww", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [error]


def test_the_command_refuses_an_overflowing_prompt_and_a_config_folder(tiny_config):
    done = subprocess.run([sys.executable, "-m", "pipeline.serve.titles", "--config", str(tiny_config),
                           "--category", OVERFLOW["category"], "--keywords", ",".join(OVERFLOW["keywords"]),
                           "serve.max_keywords=6", "serve.max_category_chars=50"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and lines[-1].startswith("titles: error: ") and "the prompt takes" in lines[-1]
    assert "Traceback" not in done.stderr and "cuInit" not in done.stderr
    folder = subprocess.run([sys.executable, "-m", "pipeline.serve.titles", "--config", str(tiny_config.parent)],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert folder.returncode == 2 and "is a directory" in folder.stderr and "does not exist" not in folder.stderr


def test_the_package_imports_from_any_folder(tmp_path):
    # make setup installs the project into .venv (editable): the docs' Python example runs anywhere.
    done = subprocess.run([sys.executable, "-c", "import pipeline.serve, keyword_decode; print(pipeline.__file__)"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert done.returncode == 0, f"{done.stderr[-500:]} (run `make setup`, which installs the project)"
    assert Path(done.stdout.strip()).resolve().is_relative_to(ROOT)
