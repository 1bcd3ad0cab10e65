"""End to end in a real browser: `colorem serve` in a subprocess, Debian's Chromium driven by Playwright."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import math
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

from tests.live import live_server  # noqa: E402


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from colorem.models import create_model
    from colorem.weights import ModelCard, save_weights

    folder = tmp_path_factory.mktemp("browser")
    weights = save_weights(create_model("color-em-tiny"), ModelCard(architecture="color-em-tiny", name="tiny-test"),
                           folder / "tiny.safetensors")
    with live_server(weights, folder, "--max-upload-mb", "1") as live:
        yield live.url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextlib.contextmanager
def open_page(browser, url):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(f"console: {message.text}") if message.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#samples button img")
    yield page
    context.close()
    # A 4xx answer is logged by Chromium as a failed resource load; anything else (CSP, JS errors) is a bug.
    assert [problem for problem in problems if "status of 4" not in problem] == []


@pytest.fixture
def page(browser, server):
    with open_page(browser, server) as page:
        yield page


def gray_photo(tmp_path, width=120, height=90) -> Path:
    gradient = np.add.outer(np.linspace(0, 200, height), np.linspace(0, 55, width)).astype(np.uint8)
    path = tmp_path / "grandparents.jpg"
    Image.fromarray(gradient, "L").save(path, quality=95)
    return path


def png_bytes(width, height) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 128).save(buffer, format="PNG")
    return buffer.getvalue()


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


def test_a_tiff_the_browser_cannot_show_still_has_a_before_side(page, tmp_path):
    path = tmp_path / "scan.tif"
    Image.open(gray_photo(tmp_path)).save(path)  # colorem reads TIFF; Chromium cannot display it
    page.set_input_files("#file", str(path))
    page.wait_for_function("() => document.querySelector('#after').naturalWidth > 0")
    page.wait_for_function("() => document.querySelector('#before').naturalWidth > 0")  # not a broken image
    assert natural_size(page, "#before") == natural_size(page, "#after") == [120, 90]
    assert page.eval_on_selector("#before", "img => getComputedStyle(img).filter") == "grayscale(1)"


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
    # "Try it out" with nothing but a photo works: Swagger UI's pre-filled fields are valid options.
    page.click(".opblock-summary-path[data-path=\"/api/colorize\"]")
    page.click("button.try-out__btn")
    page.set_input_files(".opblock-body input[type=file]", files=[{"name": "photo.png", "mimeType": "image/png",
                                                                  "buffer": png_bytes(64, 48)}])
    page.click("button.execute")
    page.wait_for_selector(".responses-table .response .response-col_status", timeout=20_000)
    assert page.text_content(".live-responses-table .response .response-col_status").strip().startswith("200")
    context.close()
    assert outside == []


# --- colour hints ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def hint_server(tmp_path_factory):
    """A server with the hand-set hint model of conftest (gray without hints, a hint's hue around it)."""
    from colorem.weights import ModelCard, save_weights
    from tests.conftest import hint_model

    folder = tmp_path_factory.mktemp("browser-hints")
    card = ModelCard(architecture="color-em-tiny", render_size=256, name="tiny-hints",
                     architecture_options={"head": "classification", "hints": True})
    with live_server(save_weights(hint_model(), card, folder / "hints.safetensors"), folder, "--max-upload-mb", "1") as live:
        yield live.url


def result_image(page) -> Image.Image:
    """The colorized image the page shows (its pixels, through a canvas: the page's CSP keeps fetch off blob:)."""
    import io

    data = page.evaluate("""() => {
        const image = document.querySelector('#after');
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth;
        canvas.height = image.naturalHeight;
        canvas.getContext('2d').drawImage(image, 0, 0);
        return canvas.toDataURL('image/png').split(',')[1];
    }""")
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def ab_near(image: Image.Image, x: int, y: int, radius: int = 6) -> tuple[float, float]:
    from colorem.color import rgb_to_lab
    import torch

    patch = np.asarray(image)[y - radius:y + radius + 1, x - radius:x + radius + 1]
    lab = rgb_to_lab(torch.from_numpy(patch.copy()).permute(2, 0, 1)[None].float() / 255)
    a, b = lab[0, 1:].mean(dim=(1, 2)).tolist()
    return a, b


def hue_of(color: str) -> float:
    from colorem.color import rgb_to_lab
    import torch

    rgb = torch.tensor([int(color[i:i + 2], 16) for i in (1, 3, 5)]).float().div(255)
    a, b = rgb_to_lab(rgb[None, :, None, None])[0, 1:, 0, 0].tolist()
    return math.degrees(math.atan2(b, a))


def hue_difference(ab: tuple[float, float], color: str) -> float:
    return abs((math.degrees(math.atan2(ab[1], ab[0])) - hue_of(color) + 180) % 360 - 180)


def wait_for_result_with(page, colors: list[str]) -> list[dict]:
    """Wait until the shown result was made with hints of these colours; returns those hints."""
    page.wait_for_function("(colors) => { const sent = document.querySelector('#after').dataset.hints;"
                           " return sent !== undefined && JSON.stringify(JSON.parse(sent).map((h) => h.color))"
                           " === JSON.stringify(colors); }", arg=colors)
    return json.loads(page.get_attribute("#after", "data-hints"))


def test_place_pick_move_and_remove_colour_hints(browser, hint_server, tmp_path):
    with open_page(browser, hint_server) as page:
        names = [sample["name"] for sample in json.load(urllib.request.urlopen(f"{hint_server}/api/samples"))["samples"]]
        page.locator("#samples button").nth(names.index("chelsea-cat.jpg")).click()  # 451 x 300, mid-gray at both points
        wait_for_result_with(page, [])
        assert page.is_visible("#hint-tools") and page.is_hidden("#hints-unavailable")
        automatic = result_image(page)
        width, height = automatic.size

        page.click("#hint-mode")
        box = page.locator("#markers").bounding_box()
        red, blue = "#b22222", "#2f6fd0"
        for index, (fraction, color) in enumerate([(0.25, red), (0.75, blue)]):
            page.locator("#markers").click(position={"x": box["width"] * fraction, "y": box["height"] * 0.5})
            picker = page.locator("#hints-list li").nth(index).locator("input[type=color]")
            x, y = round(width * fraction), round(height * 0.5)
            predicted = "#%02x%02x%02x" % automatic.getpixel((x, y))  # the picker opens at colorem's colour there
            assert abs(int(picker.input_value()[1:3], 16) - int(predicted[1:3], 16)) <= 2
            picker.fill(color)
        placed = wait_for_result_with(page, [red, blue])
        assert [abs(hint["x"] - width * f) <= 2 for hint, f in zip(placed, (0.25, 0.75))] == [True, True]
        hinted = result_image(page)
        assert hinted.size == (width, height)
        for hint in placed:
            ab = ab_near(hinted, hint["x"], hint["y"])
            assert math.hypot(*ab) > 10 and hue_difference(ab, hint["color"]) < 25, (hint, ab)
        with page.expect_download() as download_info:  # the download is the hinted result
            page.click("#download")
        assert np.array_equal(np.asarray(Image.open(download_info.value.path()).convert("RGB")), np.asarray(hinted))

        # Drag the blue hint down; the colour follows it.
        marker = page.locator("#markers .marker").nth(1)
        marker_box = marker.bounding_box()
        page.mouse.move(marker_box["x"] + marker_box["width"] / 2, marker_box["y"] + marker_box["height"] / 2)
        page.mouse.down()
        page.mouse.move(marker_box["x"] + marker_box["width"] / 2, marker_box["y"] + box["height"] * 0.3, steps=5)
        page.mouse.up()
        page.wait_for_function("(y) => JSON.parse(document.querySelector('#after').dataset.hints)[1].y > y",
                               arg=placed[1]["y"] + 30)
        moved = json.loads(page.get_attribute("#after", "data-hints"))[1]
        assert hue_difference(ab_near(result_image(page), moved["x"], moved["y"]), blue) < 25

        # Export, remove one (its colour reverts), import the export back.
        with page.expect_download() as download_info:
            page.click("#hints-export")
        exported = json.loads(open(download_info.value.path()).read())
        assert exported == [{key: hint[key] for key in ("x", "y", "color")} for hint in (placed[0], moved)]
        page.get_by_role("button", name="Remove hint 1").click()
        wait_for_result_with(page, [blue])
        reverted = result_image(page)
        assert math.hypot(*ab_near(reverted, placed[0]["x"], placed[0]["y"])) < 3  # gray again, as without hints
        assert hue_difference(ab_near(reverted, moved["x"], moved["y"]), blue) < 25
        # By keyboard alone: with Place hints on, the photo is the next stop after the slider; Enter places a hint
        # at its centre, the arrows move it, Delete removes it and leaves the focus on the photo's other hint.
        assert page.get_attribute("#hint-mode", "aria-pressed") == "true"  # still on from the clicks above
        page.focus("#slider")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.id") == "markers"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.className") == "marker"
        page.keyboard.press("ArrowRight")
        keyed = json.loads(page.evaluate("JSON.stringify(hints.map(({x, y}) => [x, y]))"))[-1]
        assert keyed == [width // 2 + round(max(width, height) / 100), height // 2]
        page.keyboard.press("Delete")
        assert page.evaluate("document.activeElement.className") == "marker"  # the hint before it
        assert len(json.loads(page.evaluate("JSON.stringify(hints)"))) == 1

        hints_file = tmp_path / "hints.json"
        hints_file.write_text(json.dumps([{**exported[0], "color": "bleu"}]))  # not a colour: refused, hints kept
        page.set_input_files("#hints-import", str(hints_file))
        page.wait_for_function("() => document.querySelector('#hints-message').textContent.startsWith('Could not')")
        assert "hint 1 is not {x, y, color" in page.text_content("#hints-message")
        assert [hint["color"] for hint in json.loads(page.get_attribute("#after", "data-hints"))] == [blue]
        current_file = tmp_path / "current.json"  # its name tells its message from the one before
        current_file.write_text(json.dumps([{**exported[0], "color": "currentColor"}]))  # a canvas's black, not a colour
        page.set_input_files("#hints-import", str(current_file))
        page.wait_for_function("() => document.querySelector('#hints-message').textContent.includes('current.json')")
        assert "hint 1 is not {x, y, color" in page.text_content("#hints-message")
        hints_file.write_text(json.dumps([exported[0]] * 257))  # over the server's limit: refused here, hints kept
        page.set_input_files("#hints-import", str(hints_file))
        page.wait_for_function("() => document.querySelector('#hints-message').textContent.includes('257 hints')")
        assert "at most 256" in page.text_content("#hints-message")
        assert [hint["color"] for hint in json.loads(page.get_attribute("#after", "data-hints"))] == [blue]
        hints_file.write_text(json.dumps({"hints": [{**exported[0], "color": "FireBrick"}, exported[1]]}))  # #b22222
        page.set_input_files("#hints-import", str(hints_file))
        assert wait_for_result_with(page, [red, blue]) == exported


def test_a_model_without_hints_hides_the_hint_tools(page):
    page.locator("#samples button").first.click()
    page.wait_for_function("() => document.querySelector('#status-text').textContent.startsWith('Done')")
    assert page.is_visible("#hints-unavailable") and page.is_hidden("#hint-tools")
    assert page.locator("#markers .marker").count() == 0
