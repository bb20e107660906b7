"""The capstone page in a real browser: Debian's headless Chromium driven by selenium loads it,
submits a prompt and watches the text grow as tokens stream in, uploads a shipped test digit
that the served classifier gets right and sees that class on top. The screenshot is kept at
test-artifacts/capstone-page.png. Without chromium and chromedriver the test skips, except in
CI (CI=true, where .ci/run installs them through `make browser`), where it fails."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from serving import images
from tests.conftest import ROOT
from tests.serving.conftest import start_server

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
ARTIFACT = ROOT / "test-artifacts" / "capstone-page.png"
MISSING = [p for p in (CHROMIUM, CHROMEDRIVER) if not shutil.which(p)]

if MISSING and os.environ.get("CI") == "true":
    pytest.fail(f"{', '.join(MISSING)} missing: in CI the browser test must run (make browser installs them)",
                pytrace=False)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not installed: run `make browser` (root, apt-get)"),
]


@pytest.fixture(scope="module")
def server(models_dir, tmp_path_factory):
    running = start_server(models_dir, tmp_path_factory.mktemp("page-server"))
    yield running
    assert running.stop() == 0, running.output()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1100,1300",
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def wait_for(predicate, what: str, seconds: float = 60):
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"the page never showed {what} within {seconds:.0f} s")


def test_the_page_streams_text_and_reads_a_digit(server, browser, test_digit, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    wait_for(lambda: "language model" in browser.find_element(By.ID, "health").text, "the health line")
    generated = lambda: browser.execute_script(  # noqa: E731
        "const span = document.getElementById('generated'); return span ? span.textContent : '';")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("the king ")
    tokens = browser.find_element(By.ID, "max-tokens")
    tokens.clear()
    tokens.send_keys("400")
    browser.find_element(By.ID, "generate").click()
    # the text must grow over two reads while the stream is open: streamed, not all at the end
    first = wait_for(lambda: len(generated()), "a first token")
    wait_for(lambda: len(generated()) > first, "the text growing")
    wait_for(lambda: "tokens in" in browser.find_element(By.ID, "generate-stats").text, "the final line")
    assert browser.find_element(By.ID, "generate-error").text == ""
    assert "400 tokens in" in browser.find_element(By.ID, "generate-stats").text
    assert len(generated()) == 400, "one character a token: the page must show every streamed one"

    pixels, label = test_digit
    digit = tmp_path / "digit.png"
    digit.write_bytes(images.png(pixels))
    browser.find_element(By.ID, "upload").send_keys(str(digit))
    top = wait_for(lambda: browser.find_elements(By.CSS_SELECTOR, "#bars li.top"), "the probabilities")
    assert top[0].get_attribute("data-class") == label
    assert browser.find_element(By.CSS_SELECTOR, "#bars li").get_attribute("data-class") == label, "sorted, top first"
    assert browser.find_element(By.ID, "classify-error").text == ""
    ARTIFACT.parent.mkdir(exist_ok=True)
    browser.save_screenshot(str(ARTIFACT))
    assert Path(ARTIFACT).stat().st_size > 0


def test_an_error_shows_in_the_page(server, browser):
    from selenium.webdriver.common.by import By

    browser.get(server.url + "/")
    prompt = browser.find_element(By.ID, "prompt")
    prompt.clear()
    prompt.send_keys("ZZZ")  # not in the tiny model's vocabulary
    browser.find_element(By.ID, "generate").click()
    error = wait_for(lambda: browser.find_element(By.ID, "generate-error").text, "the error")
    assert "cannot be tokenized" in error
