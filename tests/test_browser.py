"""End to end in a real browser: `colorem serve` in a subprocess, Debian's Chromium driven by Playwright."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = Path("/usr/bin/chromium")
# Never download a browser: use the system Chromium with flags that keep it off the network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"),
]
sync_api = pytest.importorskip("playwright.sync_api", reason="needs Playwright for Python (pip install playwright)")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from colorem.models import create_model
    from colorem.weights import ModelCard, save_weights

    folder = tmp_path_factory.mktemp("browser")
    weights = save_weights(create_model("color-em-tiny"), ModelCard(architecture="color-em-tiny", name="tiny-test"),
                           folder / "tiny.safetensors")
    port = free_port()
    log = open(folder / "server.log", "w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "colorem", "serve", "--model", str(weights), "--host", "127.0.0.1",
         "--port", str(port), "--max-upload-mb", "1", "--log-level", "warning"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            log.seek(0)
            pytest.fail(f"colorem serve did not start:\n{log.read()}")
        time.sleep(0.2)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.goto(server)
    page.wait_for_selector("#samples button img")
    yield page
    context.close()
    # A 4xx answer is logged by Chromium as a failed resource load; anything else (CSP, JS errors) is a bug.
    assert [problem for problem in problems if "status of 4" not in problem] == []


def gray_photo(tmp_path, width=120, height=90) -> Path:
    gradient = np.add.outer(np.linspace(0, 200, height), np.linspace(0, 55, width)).astype(np.uint8)
    path = tmp_path / "grandparents.jpg"
    Image.fromarray(gradient, "L").save(path, quality=95)
    return path


def natural_size(page, selector):
    return page.eval_on_selector(selector, "img => [img.naturalWidth, img.naturalHeight]")


def test_upload_compare_and_download(page, tmp_path):
    page.set_input_files("#file", str(gray_photo(tmp_path)))
    page.wait_for_selector("#compare:not([hidden])")
    page.wait_for_function("() => document.querySelector('#after').naturalWidth > 0")
    assert natural_size(page, "#after") == [120, 90]
    assert "colorized" in page.get_attribute("#after", "alt")
    assert "black and white" in page.get_attribute("#before", "alt")
    assert page.text_content("#status-text").startswith("Done")

    # The before/after slider works from the keyboard.
    page.focus("#slider")
    page.keyboard.press("Home")
    assert page.eval_on_selector("#stage", "el => el.style.getPropertyValue('--pos')") == "0%"
    for _ in range(30):
        page.keyboard.press("ArrowRight")
    assert page.input_value("#slider") == "30"
    assert page.eval_on_selector("#stage", "el => el.style.getPropertyValue('--pos')") == "30%"
    assert "70%" in page.eval_on_selector("#before", "el => getComputedStyle(el).clipPath")

    with page.expect_download() as download_info:
        page.click("#download")
    download = download_info.value
    assert download.suggested_filename == "grandparents-colorized.png"
    with Image.open(download.path()) as image:
        image.load()
        assert image.format == "PNG" and image.size == (120, 90)


def test_pick_a_sample(page):
    first = page.locator("#samples button").first
    description = first.get_attribute("title")
    first.click()
    page.wait_for_function("() => document.querySelector('#after').alt.includes('colorized')")
    page.wait_for_function("() => document.querySelector('#status-text').textContent.startsWith('Done')")
    assert description in page.get_attribute("#after", "alt")
    assert first.get_attribute("aria-pressed") == "true"
    with urllib.request.urlopen(page.url.rstrip("/") + "/api/samples") as response:
        sample = json.load(response)["samples"][0]
    assert natural_size(page, "#after") == [sample["width"], sample["height"]]
    assert page.is_visible("#original-link")


def test_text_file_shows_a_clear_error(page):
    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                          "buffer": b"this is not a photo\n" * 20}])
    page.wait_for_selector("#error:not([hidden])")
    assert "not an image" in page.text_content("#error")
    assert page.is_hidden("#compare")


def test_too_big_file_is_refused_before_upload(page):
    page.set_input_files("#file", files=[{"name": "huge.jpg", "mimeType": "image/jpeg",
                                          "buffer": b"\xff\xd8" + b"\0" * (2 * 1024 * 1024)}])
    page.wait_for_selector("#error:not([hidden])")
    assert "largest photo accepted is 1.0 MB" in page.text_content("#error")


def test_phone_width_has_no_horizontal_scroll(browser, server, tmp_path):
    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(server)
    page.wait_for_selector("#samples button img")
    page.set_input_files("#file", str(gray_photo(tmp_path, 640, 480)))
    page.wait_for_selector("#compare:not([hidden])")
    page.wait_for_function("() => document.querySelector('#after').naturalWidth > 0")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = page.locator("#after").bounding_box()
    assert box["width"] <= 375
    context.close()


def test_the_api_docs_render_with_the_network_blocked(browser, server):
    """/docs in Chromium with every request outside the server refused: Swagger UI still renders the API."""
    context = browser.new_context()
    outside: list[str] = []

    def only_the_server(route):
        if route.request.url.startswith(server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_the_server)
    page = context.new_page()
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=20_000)
    assert "colorem" in page.text_content(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-summary-path[data-path=\"/api/colorize\"]")
    context.close()
    assert outside == []
