"""The web page in a real browser: headless Chromium from the Debian packages, driven by Selenium,
against the real server (uvicorn on 127.0.0.1) over the tiny trained model.

`.ci/run` installs chromium and chromium-driver with apt-get when they are missing; without
them these tests are skipped. UPDATE_SCREENSHOTS=1 also writes the docs' screenshot (docs/img/web.png).
"""
import csv
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


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """The base URL of a real uvicorn server on 127.0.0.1, in a thread of this process."""
    import httpx
    import uvicorn

    gen = TitleGenerator.from_config(write_run_config(trained, tmp_path_factory.mktemp("web")))
    limits = ServeConfig(port=free_port(), max_n=8)
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
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [r["title"] for r in rows] == [i.find_element(By.CSS_SELECTOR, ".title").text for i in items]
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
