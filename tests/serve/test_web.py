"""The web page in a real browser: headless Chromium from the Debian packages, driven by Selenium,
against the real server (uvicorn on 127.0.0.1) over the tiny trained model.

`.ci/run` installs chromium and chromium-driver with apt-get when they are missing; without
them these tests are skipped. UPDATE_SCREENSHOTS=1 also writes the docs' screenshot (docs/img/web.png).
"""
import contextlib
import csv
import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from pipeline.config import ServeConfig
from pipeline.serve import TitleGenerator
from pipeline.serve.api import create_app
from tests.conftest import write_run_config

# Selenium must use the system driver and browser, never download one.
os.environ.setdefault("SE_OFFLINE", "true")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "web.png"
pytestmark = pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs Debian's chromium and chromium-driver")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(gen, limits: ServeConfig):
    """The base URL of a real uvicorn server on 127.0.0.1 over `gen`, in a thread of this process."""
    import httpx
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(gen, limits), host="127.0.0.1", port=limits.port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{limits.port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield url
    server.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def generator(trained, tmp_path_factory):
    return TitleGenerator.from_config(write_run_config(trained, tmp_path_factory.mktemp("web")))


@pytest.fixture(scope="module")
def server(generator):
    with serving(generator, ServeConfig(port=free_port(), max_n=8)) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=900,900", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(executable_path=DRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def test_page_generates_highlighted_titles_copy_and_csv(server, browser, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    # The subreddit suggestions come from the trained categories.
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#categories option")) == 2)
    assert {o.get_attribute("value") for o in browser.find_elements(By.CSS_SELECTOR, "#categories option")} \
        == {"aww", "science"}
    browser.find_element(By.ID, "category").send_keys("aww")
    keywords = browser.find_elements(By.CSS_SELECTOR, ".keyword")
    assert len(keywords) == 3
    keywords[0].send_keys("dog")
    browser.find_element(By.ID, "more").click()
    assert len(browser.find_elements(By.CSS_SELECTOR, ".keyword")) == 4
    count = browser.find_element(By.ID, "count")
    count.clear()
    count.send_keys("3")
    browser.find_element(By.ID, "generate").click()
    items = wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#titles li"))
    assert len(items) == 3
    assert all(i.find_element(By.CSS_SELECTOR, ".title").text.strip() for i in items)
    marks = [m.text.lower() for m in browser.find_elements(By.CSS_SELECTOR, "#titles mark")]
    assert marks and set(marks) == {"dog"}  # guidance makes the tiny model write it; only it is marked
    assert browser.find_element(By.ID, "error").is_displayed() is False

    copy = items[0].find_element(By.CSS_SELECTOR, "button.copy")
    copy.click()
    wait(browser, lambda d: copy.text == "Copied", 5)
    browser.save_screenshot(str(tmp_path / "web.png"))
    assert (tmp_path / "web.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp_path / "web.png", SCREENSHOT)

    browser.find_element(By.ID, "csv").click()
    path = browser.downloads / "titles.csv"
    wait(browser, lambda d: path.is_file() and path.stat().st_size > 0, 10)
    rows = read_csv(path.read_text(encoding="utf-8"))
    assert [r["title"] for r in rows] == [guarded(i.find_element(By.CSS_SELECTOR, ".title").text) for i in items]
    assert {r["subreddit"] for r in rows} == {"aww"} and {r["keywords"] for r in rows} == {"dog"}


def test_page_shows_the_servers_refusal(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    browser.find_element(By.ID, "category").send_keys("!!!")
    browser.find_element(By.ID, "generate").click()
    error = wait(browser, lambda d: d.find_element(By.ID, "error") if d.find_element(By.ID, "error").is_displayed()
                 else None)
    assert "422" in error.text and "category" in error.text
    assert browser.find_elements(By.CSS_SELECTOR, "#titles li") == []


# --- issue 21: errors cleared, results kept newest first, formula-safe CSV -------------------------

def fill(driver, category, keywords=(), n=2):
    """Fill the form afresh: the subreddit, the first keyword fields, the count."""
    from selenium.webdriver.common.by import By

    field = driver.find_element(By.ID, "category")
    field.clear()
    field.send_keys(category)
    inputs = driver.find_elements(By.CSS_SELECTOR, ".keyword")
    for i, box in enumerate(inputs):
        box.clear()
        if i < len(keywords):
            box.send_keys(keywords[i])
    count = driver.find_element(By.ID, "count")
    count.clear()
    count.send_keys(str(n))


def generate(driver, blocks_before):
    """Click Generate and wait for the page to hold one more block of results."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "generate").click()
    return wait(driver, lambda d: len(b := d.find_elements(By.CSS_SELECTOR, "#titles .block")) == blocks_before + 1
                and b)


def shown_error(driver):
    from selenium.webdriver.common.by import By

    return wait(driver, lambda d: d.find_element(By.ID, "error") if d.find_element(By.ID, "error").is_displayed()
                else None)


def page_csv(driver) -> str:
    """The CSV text the page's download link offers (fetched from its blob: URL inside the page)."""
    from selenium.webdriver.common.by import By

    href = driver.find_element(By.ID, "csv").get_attribute("href")
    assert href and href.startswith("blob:"), href
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then((r) => r.text()).then(done, (e) => done('FAILED ' + e));", href)


def read_csv(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def guarded(cell: str) -> str:
    """A text cell as the page's CSV writes it: a leading ' when a spreadsheet could take it as a formula."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


def test_refusal_then_good_request_clears_the_error(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    fill(browser, "!!!")
    browser.find_element(By.ID, "generate").click()
    assert "422" in shown_error(browser).text
    fill(browser, "aww", ["dog"], 2)
    browser.find_element(By.ID, "generate").click()
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#titles li"))
    error = browser.find_element(By.ID, "error")
    assert not error.is_displayed() and error.get_attribute("textContent") == ""


def test_error_cleared_as_soon_as_a_new_request_starts(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    fill(browser, "!!!")
    browser.find_element(By.ID, "generate").click()
    shown_error(browser)
    fill(browser, "aww", ["dog"], 2)
    # Hold the next answer back (a real request to the real server, only started later) to see the
    # page while it is waiting: the old error must already be gone.
    browser.execute_script(
        "window.__release = null; const real = window.fetch;"
        "window.fetch = (...a) => new Promise((ok) => { window.__release = () => ok(real(...a)); });")
    browser.find_element(By.ID, "generate").click()
    wait(browser, lambda d: d.execute_script("return window.__release !== null"), 10)
    assert not browser.find_element(By.ID, "error").is_displayed()
    browser.execute_script("window.__release()")
    wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#titles li"))
    assert not browser.find_element(By.ID, "error").is_displayed()


def test_two_generates_keep_both_results_newest_first_in_page_and_csv(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#categories option")) == 2)
    fill(browser, "aww", ["dog"], 2)
    generate(browser, 0)
    fill(browser, "science", [], 3)
    blocks = generate(browser, 1)
    newest, oldest = blocks
    assert [len(b.find_elements(By.CSS_SELECTOR, "li")) for b in blocks] == [3, 2]
    head_new = newest.find_element(By.CSS_SELECTOR, ".request").text
    head_old = oldest.find_element(By.CSS_SELECTOR, ".request").text
    assert "#2" in head_new and "science" in head_new and "dog" not in head_new
    assert "#1" in head_old and "aww" in head_old and "dog" in head_old
    for head in (head_new, head_old):  # the request as the server answered it
        assert "seed" in head and "guided" in head and "temperature" in head
    page_titles = [[t.text for t in b.find_elements(By.CSS_SELECTOR, ".title")] for b in blocks]

    rows = read_csv(page_csv(browser))
    assert [r["title"] for r in rows] == [guarded(t) for t in page_titles[0] + page_titles[1]]
    assert [r["request"] for r in rows] == ["2"] * 3 + ["1"] * 2
    assert [(r["subreddit"], r["keywords"]) for r in rows] == [("science", "")] * 3 + [("aww", "dog")] * 2
    assert {r["guided"] for r in rows} == {"true"} and all(float(r["temperature"]) > 0 for r in rows)
    assert all(r["seed"] == "" for r in rows)  # seedless requests: not repeatable
    # The page loaded nothing from anywhere but this server.
    origins = browser.execute_script(
        "return performance.getEntriesByType('resource').map((e) => new URL(e.name).origin)")
    assert origins and set(origins) == {server}


def test_csv_guards_formula_cells_from_the_server(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    fill(browser, "=aww", ["dog"], 2)  # the server keeps it as the category '-aww' (unknown: a warning)
    generate(browser, 0)
    assert "-aww" in browser.find_element(By.CSS_SELECTOR, "#titles .request").text
    text = page_csv(browser)
    rows = read_csv(text)
    assert len(rows) == 2 and {r["subreddit"] for r in rows} == {"'-aww"}
    assert "\"'-aww\"" in text
    for r in rows:  # logprobs are negative numbers: left as numbers, not turned into text
        assert float(r["logprob"]) < 0


def test_csv_builder_guards_every_cell(server, browser):
    browser.get(server + "/")
    rows = [["=HYPERLINK(\"http://x\",\"y\")", "+1", "-rf", "@SUM(A1)", "\tx", "\rx", "ok", 'a "b", c\nd', -1.5]]
    text = browser.execute_script("return window.titlePage.csvText(arguments[0], arguments[1])",
                                  ["=head", "@col", "plain"], rows)
    assert text.splitlines()[0] == "\"'=head\",\"'@col\",\"plain\""
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed[1] == ["'=HYPERLINK(\"http://x\",\"y\")", "'+1", "'-rf", "'@SUM(A1)", "'\tx", "'\rx", "ok",
                         'a "b", c\nd', "-1.5"]
    assert text.endswith("\r\n")


def test_server_error_is_shown_as_text_never_html(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server + "/")
    fill(browser, "<!----><>")
    browser.find_element(By.ID, "generate").click()
    error = shown_error(browser)
    assert "'<!----><>'" in error.get_attribute("textContent")
    assert error.find_elements(By.XPATH, "./*") == []


def test_a_server_with_a_token_asks_the_page_for_it(generator, browser):
    from selenium.webdriver.common.by import By

    token = "page-test-token-0123456789"
    with serving(generator, ServeConfig(port=free_port(), max_n=8, token=token)) as url:
        browser.get(url + "/")
        field = wait(browser, lambda d: d.find_element(By.ID, "token") if d.find_element(By.ID, "token-field")
                     .is_displayed() else None)
        fill(browser, "aww", ["dog"], 2)
        browser.find_element(By.ID, "generate").click()
        assert "401" in shown_error(browser).text
        field.send_keys(token)
        browser.find_element(By.ID, "generate").click()
        assert len(wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#titles li"))) == 2
    browser.execute_script("sessionStorage.clear()")
