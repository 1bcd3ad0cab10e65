"""The web app and REST API: every route, every error code, and a server that stays healthy afterwards."""

from __future__ import annotations

import dataclasses
import io
import threading

import anyio
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from colorem import load  # noqa: E402
from colorem.colorize import Colorizer  # noqa: E402
from colorem.hints import MAX_HINTS  # noqa: E402
from colorem.limits import RENDER_SIZE, SATURATION  # noqa: E402
from colorem.models import create_model  # noqa: E402
from colorem.serve import Settings, create_app, packaged_samples  # noqa: E402
from colorem.serve.app import PAGE_SECURITY  # noqa: E402
from colorem.weights import ModelCard, save_weights  # noqa: E402

BOUNDARY = "colorem-test-boundary"


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_weights(create_model("color-em-tiny"), ModelCard(architecture="color-em-tiny", name="tiny-test"), path)
    return path


@pytest.fixture(scope="module")
def colorizer(tiny_model_path):
    return load(tiny_model_path, device="cpu", precision="fp32")


def make_app(colorizer, **options):
    return create_app(Settings(colorizer=colorizer, warmup=False, **options))


@pytest.fixture(scope="module")
def client(colorizer):
    with TestClient(make_app(colorizer, max_upload_mb=1, max_pixels=2_000_000)) as client:
        yield client


def photo_bytes(width=96, height=64, image_format="JPEG", mode="L") -> bytes:
    rng = np.random.default_rng(width * height)
    channels = 1 if mode == "L" else len(mode)
    pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
    image = Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def post_photo(client, data, filename="photo.jpg", params=None, fields=None):
    return client.post("/api/colorize", files={"file": (filename, data, "application/octet-stream")},
                       data=fields or {}, params=params or {})


def assert_error(response, status):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert "Traceback" not in response.text
    return body


def assert_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json()["status"] == "ok"


# --- routes that answer 200 ---------------------------------------------------------------------
def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["concurrency"] >= 1 and body["running"] == 0
    assert body["waiting"] == 0 and body["receiving"] == 0


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "/static/app.js" in page.text and "/static/app.css" in page.text
    assert "http://" not in page.text.replace("http://test", "") and "https://" not in page.text  # no CDN
    script = client.get("/static/app.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    assert client.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert_error(client.get("/static/missing.js"), 404)
    same_page = client.get("/static/index.html")  # the page's file is reachable there too: as safe as at /
    assert same_page.status_code == 200 and same_page.text == page.text
    for response in (same_page, script):
        assert {key: response.headers.get(key) for key in PAGE_SECURITY} == PAGE_SECURITY


@pytest.mark.parametrize("path", ["/", "/healthz", "/api/config", "/api/samples/astronaut.jpg"])
def test_head_answers_like_get_without_a_body(client, path):
    got, head = client.get(path), client.head(path)
    assert got.status_code == head.status_code == 200 and head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]


def test_a_download_keeps_a_name_in_any_script(client):
    response = post_photo(client, photo_bytes(20, 10), filename="祖母 1950.jpg")
    assert response.status_code == 200, response.text
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"1950-colorized.png\"; filename*=UTF-8''%E7%A5%96%E6%AF%8D%201950-colorized.png")
    windows = post_photo(client, photo_bytes(20, 10), filename="C:\\photos\\été.jpg")  # never a path
    assert windows.headers["content-disposition"] == \
        "attachment; filename=\"t-colorized.png\"; filename*=UTF-8''%C3%A9t%C3%A9-colorized.png"


def test_the_api_docs_try_it_out_works_with_a_file_alone(client):
    form = client.get("/openapi.json").json()["paths"]["/api/colorize"]["post"]["requestBody"]["content"]
    properties = form["multipart/form-data"]["schema"]["properties"]
    assert properties["hints"]["example"] == "[]"  # what Swagger UI fills in: no hints, not the word "string"
    assert properties["render_size"]["default"] == client.get("/api/config").json()["render_size"]
    response = post_photo(client, photo_bytes(20, 10), fields={"hints": "[]", "render_size": "32"})
    assert response.status_code == 200, response.text


def test_models(client):
    body = client.get("/api/models").json()
    assert body["loaded"]["architecture"] == "color-em-tiny"
    assert body["loaded"]["parameters"] == sum(p.numel() for p in create_model("color-em-tiny").parameters())
    assert "color-em-original" in body["architectures"]


def test_config(client):
    body = client.get("/api/config").json()
    assert body["max_upload_bytes"] == 1024 * 1024 and body["render_size"] == 256


def test_config_reports_the_loaded_card_and_this_server_s_limits(colorizer):
    """Every field, from a card whose render size is not the default 256 and limits unlike the defaults."""
    card = dataclasses.replace(colorizer.card, render_size=96)
    odd = Colorizer(colorizer.model, card, device="cpu", precision="fp32")
    with TestClient(make_app(odd, max_upload_mb=1.5, max_pixels=3_000_000, max_render_size=512)) as client:
        body = client.get("/api/config").json()
    assert body == {"max_upload_bytes": int(1.5 * 1024 * 1024), "max_pixels": 3_000_000, "render_size": 96,
                    "render_size_range": [RENDER_SIZE[0], 512], "saturation_range": list(SATURATION),
                    "formats": ["png", "jpeg", "webp"], "accepts_hints": False, "max_hints": MAX_HINTS}
    assert RENDER_SIZE[0] == 16 and SATURATION == (0.0, 4.0)  # the ranges colorem.limits defines


def test_samples_listing_and_files(client):
    samples = client.get("/api/samples").json()["samples"]
    packaged = sorted(entry.name for entry in packaged_samples().iterdir() if entry.name.endswith(".jpg"))
    assert [sample["name"] for sample in samples] == packaged and len(samples) >= 5
    for sample in samples:
        assert sample["description"] and sample["description"] != sample["title"]  # real alt text from README
        response = client.get(sample["url"])
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == (sample["width"], sample["height"])
        original = client.get(sample["original_url"])
        assert original.status_code == 200
        with Image.open(io.BytesIO(original.content)) as image:
            assert image.mode == "RGB" and image.size == (sample["width"], sample["height"])


def test_colorize_png_keeps_size_and_names_the_download(client):
    response = post_photo(client, photo_bytes(97, 61), filename="old family photo.jpg")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-disposition"] == 'attachment; filename="old_family_photo-colorized.png"'
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.format == "PNG" and image.size == (97, 61) and image.mode == "RGB"


@pytest.mark.parametrize("image_format, media_type, pillow_format", [
    ("jpeg", "image/jpeg", "JPEG"), ("jpg", "image/jpeg", "JPEG"), ("webp", "image/webp", "WEBP"), ("png", "image/png", "PNG")])
def test_colorize_formats_by_form_and_query(client, image_format, media_type, pillow_format):
    for response in (post_photo(client, photo_bytes(), fields={"format": image_format}),
                     post_photo(client, photo_bytes(), params={"format": image_format})):
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == media_type
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.format == pillow_format and image.size == (96, 64)


def test_colorize_options_take_effect(client):
    data = photo_bytes(64, 64, "PNG")
    gray = post_photo(client, data, fields={"saturation": "0"})
    with Image.open(io.BytesIO(gray.content)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 1]).max() <= 2 and np.abs(rgb[..., 1] - rgb[..., 2]).max() <= 2
    vivid = post_photo(client, data, fields={"saturation": "4", "render_size": "32"})
    assert vivid.status_code == 200
    with Image.open(io.BytesIO(vivid.content)) as image:
        rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(rgb[..., 0] - rgb[..., 2]).max() > 2  # saturation 4 is not gray


def test_colorize_keeps_alpha_in_png(client):
    response = post_photo(client, photo_bytes(40, 30, "PNG", "RGBA"), filename="logo.png")
    with Image.open(io.BytesIO(response.content)) as image:
        assert image.mode == "RGBA" and image.size == (40, 30)


def test_openapi_documents_the_api(client):
    spec = client.get("/openapi.json").json()
    for path in ("/api/colorize", "/api/samples", "/api/samples/{name}", "/api/models", "/healthz"):
        assert path in spec["paths"]
    body = spec["paths"]["/api/colorize"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert "file" in body["required"]
    assert client.get("/docs").status_code == 200


def test_the_docs_page_loads_everything_from_the_server(client):
    """/docs works offline: every script, style sheet and icon it names is served by colorem itself."""
    import re

    page = client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", page.text)
    assert any(url.endswith(".js") for url in urls) and any(url.endswith(".css") for url in urls), urls
    assert [url for url in urls if not url.startswith("/") or url.startswith("//")] == []
    for url in urls:
        assert client.get(url).status_code == 200, url
    assert client.get("/redoc").status_code == 404  # FastAPI's ReDoc page would load from a CDN


# --- errors -------------------------------------------------------------------------------------
def test_413_upload_over_the_limit(client):
    big = photo_bytes() + b"\0" * (1024 * 1024 + 10)
    body = assert_error(post_photo(client, big), 413)
    assert body["detail"]["max_upload_bytes"] == 1024 * 1024
    assert_healthy(client)


def test_413_image_over_the_pixel_limit(client):
    buffer = io.BytesIO()
    Image.new("L", (2000, 1001), 90).save(buffer, format="PNG")  # 2 MP of one gray: a small file
    body = assert_error(post_photo(client, buffer.getvalue()), 413)
    assert "pixels" in body["detail"]
    assert body["error"] == "The image has too many pixels: 2000x1001 = 2,002,000 pixels is over the limit of 2,000,000."


def test_415_not_an_image(client):
    body = assert_error(post_photo(client, b"just some text, not a photo\n" * 10, filename="notes.txt"), 415)
    assert "not an image" in body["error"]
    assert_error(client.post("/api/colorize", json={"file": "x"}), 415)  # not multipart at all


@pytest.mark.parametrize("data", [
    photo_bytes(200, 200)[:700],  # truncated JPEG
    photo_bytes(64, 64, "PNG")[:-40],  # PNG cut before its end
    b"",  # empty file
], ids=["truncated-jpeg", "truncated-png", "empty"])
def test_422_corrupt_image(client, data):
    assert_error(post_photo(client, data), 422)
    assert_healthy(client)


@pytest.mark.parametrize("params, fields", [
    ({"saturation": "-1"}, {}),
    ({"saturation": "lots"}, {}),
    ({"render_size": "8"}, {}),
    ({"render_size": "100000"}, {}),
    ({"format": "gif"}, {}),
    ({}, {"saturation": "nan"}),
    ({}, {"saturation": "5"}),
    ({}, {"render_size": "12.5"}),
    ({}, {"format": "bmp"}),
    ({}, {"render_size": "1²"}),  # a digit to str.isdigit, not to int(): a 500 once
    ({"render_size": "1²"}, {}),
    ({}, {"render_size": "١٢٨"}),  # Arabic-Indic digits
    ({}, {"saturation": "١"}),
    ({}, {"saturation": "inf"}),
    ({"saturation": "1e400"}, {}),
    ({}, {"render_size": "64" + "0" * 30}),
])
def test_422_bad_options(client, params, fields):
    body = assert_error(post_photo(client, photo_bytes(), params=params, fields=fields), 422)
    assert body["error"].startswith("Invalid options")
    assert body["detail"][0]["field"] in ("saturation", "render_size", "format")


def test_options_parse_the_same_from_form_and_query(client):
    for where in ("params", "fields"):
        options = {"saturation": " 1.5 ", "render_size": "+48", "format": "JPG"}
        response = post_photo(client, photo_bytes(), **{where: options})
        assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg", response.text


def test_head_of_a_sample_answers_like_get_without_a_body(client):
    for url in ("/api/samples/astronaut.jpg", "/api/samples/astronaut.jpg/original"):
        get, head = client.get(url), client.head(url)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == get.headers["content-type"]
        assert head.headers["content-length"] == str(len(get.content))
    assert_error(client.get("/api/samples/no-such.jpg"), 404)
    assert client.head("/api/samples/no-such.jpg").status_code == 404


def test_nan_weights_are_a_clear_500_and_out_of_memory_a_503(colorizer):
    import copy

    from colorem.errors import NotEnoughMemoryError

    broken = copy.deepcopy(colorizer)
    with torch.no_grad():
        for parameter in broken.model.parameters():
            parameter.fill_(float("nan"))
    with TestClient(make_app(broken), raise_server_exceptions=False) as client:
        body = assert_error(post_photo(client, photo_bytes()), 500)
        assert body["error"] == "The model produced no usable colours for this photo."

    class NoMemory:
        def __getattr__(self, name):
            return getattr(colorizer, name)

        def colorize(self, *args, **kwargs):
            raise NotEnoughMemoryError("photo.jpg", (9000, 9000))

    with TestClient(make_app(NoMemory()), raise_server_exceptions=False) as client:
        response = post_photo(client, photo_bytes())
        body = assert_error(response, 503)
        assert body["detail"] == "not enough memory for 81 MP" and response.headers["retry-after"]
        assert_healthy(client)


def test_422_missing_file_field(client):
    response = client.post("/api/colorize", data={"saturation": "1"}, files={"other": ("a.jpg", photo_bytes())})
    assert_error(response, 422)


def test_404_unknown_sample_and_route(client):
    body = assert_error(client.get("/api/samples/no-such-photo.jpg"), 404)
    assert "astronaut.jpg" in body["detail"]  # tells what exists
    assert_error(client.get("/api/nothing-here"), 404)
    assert_error(client.delete("/api/samples"), 405)


@pytest.mark.parametrize("name", [
    "%2E%2E", "..%2F..%2Fpyproject.toml", "%2E%2E%2F%2E%2E%2Fpyproject.toml", "..%5C..%5Cpyproject.toml",
    "%2Fetc%2Fpasswd", "..", "~root", "originals", "README.md", "astronaut.jpg%00",
])
def test_sample_names_outside_the_listing_are_rejected(client, name):
    response = client.get(f"/api/samples/{name}")
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"].startswith("application/json")
    assert "[project]" not in response.text and "root:" not in response.text


def test_500_is_json_without_a_traceback(colorizer):
    class Broken:
        def __getattr__(self, name):
            return getattr(colorizer, name)

        def colorize(self, *args, **kwargs):
            raise RuntimeError("secret internal detail /srv/model.bin")

    with TestClient(make_app(Broken()), raise_server_exceptions=False) as client:
        response = post_photo(client, photo_bytes())
        body = assert_error(response, 500)
        assert "secret" not in response.text and body["error"] == "Internal server error."
        assert_healthy(client)


def test_server_still_works_after_every_bad_request(client):
    assert_healthy(client)
    assert post_photo(client, photo_bytes()).status_code == 200


# --- streaming limits and concurrency, against the ASGI app directly ----------------------------
def multipart_head(filename="photo.jpg") -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode()


async def with_app(app, talk):
    """Run the app's lifespan and `talk(client)` with an httpx client that streams request bodies lazily."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=30) as client:
            return await talk(client)


class Body:
    """A streamed upload of `chunks` x 64 KiB that records how much of it the server pulled."""

    def __init__(self, chunks: int):
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self):
        yield multipart_head()
        for _ in range(self.chunks):
            self.pulled += 1
            yield b"\0" * 65536
        yield f"\r\n--{BOUNDARY}--\r\n".encode()


def streamed_post(client, body: Body, headers=None):
    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}", **(headers or {})}
    return client.post("/api/colorize", content=body, headers=headers)


def test_413_by_content_length_reads_nothing(colorizer):
    body = Body(chunks=64)

    async def talk(client):
        return await streamed_post(client, body, {"content-length": str(50 * 1024 * 1024)})

    response = anyio.run(with_app, make_app(colorizer, max_upload_mb=1), talk)
    assert_error(response, 413)
    assert body.pulled == 0  # refused on the header alone


@pytest.mark.parametrize("declared", [None, "2000"], ids=["chunked", "larger-than-declared"])
def test_413_while_streaming_stops_reading(colorizer, declared):
    body = Body(chunks=400)  # 25 MiB against a 1 MiB limit
    headers = {"content-length": declared} if declared else {}

    async def talk(client):
        response = await streamed_post(client, body, headers)
        health = await client.get("/healthz")
        return response, health

    response, health = anyio.run(with_app, make_app(colorizer, max_upload_mb=1), talk)
    assert_error(response, 413)
    assert body.pulled <= 20  # stopped just past the 1 MiB limit, never read the other 24 MiB
    assert health.status_code == 200


def test_concurrent_requests_are_isolated(colorizer):
    sizes = [(48 + 8 * index, 40 + 4 * index) for index in range(6)]

    async def talk(client):
        async def one(size):
            files = {"file": (f"p{size[0]}.jpg", photo_bytes(*size), "image/jpeg")}
            return await client.post("/api/colorize", files=files)

        results = [None] * len(sizes)

        async def run(index):
            results[index] = await one(sizes[index])

        async with anyio.create_task_group() as group:
            for index in range(len(sizes)):
                group.start_soon(run, index)
        return results

    responses = anyio.run(with_app, make_app(colorizer, concurrency=2), talk)
    for size, response in zip(sizes, responses):
        assert response.status_code == 200
        assert response.headers["content-disposition"] == f'attachment; filename="p{size[0]}-colorized.png"'
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == size


def test_busy_server_answers_health_checks_and_refuses_overflow(colorizer):
    release = threading.Event()
    started = threading.Event()

    class Slow:
        def __getattr__(self, name):
            return getattr(colorizer, name)

        def colorize(self, *args, **kwargs):
            started.set()
            release.wait(20)
            return colorizer.colorize(*args, **kwargs)

    async def talk(client):
        results = {}

        async def first():
            results["first"] = await post(client)

        async with anyio.create_task_group() as group:
            group.start_soon(first)
            with anyio.fail_after(10):
                while not started.is_set():
                    await anyio.sleep(0.01)
            with anyio.fail_after(2):  # the event loop is free while the model works
                results["health"] = await client.get("/healthz")
            results["second"] = await post(client)  # one running, none may wait: refused
            release.set()
        return results

    async def post(client):
        return await client.post("/api/colorize", files={"file": ("a.jpg", photo_bytes(), "image/jpeg")})

    results = anyio.run(with_app, make_app(Slow(), concurrency=1, max_waiting=0), talk)
    assert results["health"].status_code == 200 and results["health"].json()["running"] == 1
    assert_error(results["second"], 503)
    assert results["second"].headers["retry-after"]
    assert results["first"].status_code == 200


# --- the command line ---------------------------------------------------------------------------
def test_serve_command_fails_cleanly_without_weights(tmp_path, capsys):
    from colorem.cli import main

    assert main(["serve", "--model", str(tmp_path / "missing.safetensors")]) == 2
    error = capsys.readouterr().err
    assert error.startswith("colorem: error:") and "Traceback" not in error


def test_serve_command_without_a_default_model_says_how_to_get_one(capsys):
    from colorem.weights import packaged_weights

    if packaged_weights().exists():
        pytest.skip("a default model is installed")
    from colorem.cli import main

    assert main(["serve", "--port", "0"]) == 2
    assert "no trained weights are installed" in capsys.readouterr().err


def test_settings_reject_nonsense():
    with pytest.raises(ValueError):
        Settings(concurrency=0)
    with pytest.raises(ValueError):
        Settings(max_upload_mb=0)


# --- the lifespan loads the model when none is injected -----------------------------------------
def test_model_loaded_once_at_startup(tiny_model_path):
    app = create_app(Settings(model=tiny_model_path, device="cpu", precision="fp32", concurrency=2))
    with TestClient(app) as client:
        loaded = app.state.colorizer
        assert client.get("/api/models").json()["loaded"]["name"] == "tiny-test"
        assert post_photo(client, photo_bytes()).status_code == 200
        assert post_photo(client, photo_bytes()).status_code == 200
        assert app.state.colorizer is loaded  # shared, not reloaded per request
        assert client.get("/healthz").json()["served"] == 2


def test_startup_fails_clearly_without_weights(tmp_path):
    from colorem.errors import WeightsError

    app = create_app(Settings(model=tmp_path / "missing.safetensors"))
    with pytest.raises(WeightsError, match="no weights"):
        with TestClient(app):
            pass


def test_serve_binds_before_it_announces_and_logs_one_line_per_request(tiny_model_path, tmp_path):
    """`colorem serve` at its default log level: a busy port is one error line with nothing announced;
    a server that did bind says where, and logs each request as method, path, status and milliseconds."""
    import re
    import socket
    import subprocess
    import sys
    import time

    command = [sys.executable, "-m", "colorem", "serve", "--model", str(tiny_model_path), "--device", "cpu",
               "--precision", "fp32", "--host", "127.0.0.1"]
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        refused = subprocess.run(command + ["--port", str(busy.getsockname()[1])], capture_output=True, text=True,
                                 timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Address already in use" in refused.stderr, refused.stderr
    assert "serving" not in refused.stderr

    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command + ["--port", "0"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline, url = time.monotonic() + 90, None
        while time.monotonic() < deadline and server.poll() is None:
            found = url or re.search(r"serving .* on (http://127\.0\.0\.1:\d+)/", log_path.read_text())
            url = url or (found and found.group(1))
            try:
                if url and httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        assert url and httpx.get(url + "/api/nothing-here").status_code == 404, log_path.read_text()
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log_path.read_text()
    assert re.search(r"INFO: +GET /healthz 200 \d+ ms\n", text), text
    assert re.search(r"INFO: +GET /api/nothing-here 404 \d+ ms\n", text), text


@pytest.mark.parametrize("params, fields, names", [
    ({}, {"render-size": "16"}, ["render-size"]),  # the CLI's spelling: refused, not rendered at the default size
    ({"hints": "[]"}, {}, ["hints"]),
    ({"saturation": "abc"}, {"saturation": "2"}, ["saturation"]),  # which one was meant? neither is guessed
    ({"colour": "1"}, {"size": "2"}, ["colour", "size"]),
])
def test_unknown_or_doubled_options_are_422_not_ignored(client, params, fields, names):
    response = post_photo(client, photo_bytes(20, 10), params=params, fields=fields)
    body = assert_error(response, 422)
    assert [problem["field"] for problem in body["detail"]] == names


@pytest.mark.parametrize("path", ["/healthz/", "/api/colorize/", "/api/config/"])
def test_a_trailing_slash_is_a_json_404_not_a_bare_redirect(client, path):
    response = client.post(path) if "colorize" in path else client.get(path)
    assert_error(response, 404)


@pytest.mark.parametrize("params, fields, files, names", [
    ([("saturation", "1"), ("saturation", "2")], {}, [], ["saturation"]),
    ([], {"saturation": ["1", "2"]}, [], ["saturation"]),
    ([], {}, [("file", ("second.jpg", b"x", "image/jpeg"))], ["file"]),
    ([], {"hints": "[]"}, [("hints", ("hints.json", b"[]", "application/json"))], ["hints"]),
], ids=["query", "form", "two-files", "two-hints"])
def test_an_option_given_twice_in_one_place_is_422(client, params, fields, files, names):
    """Issue 33 item 9: the last of -F saturation=1 -F saturation=2 (or of two file or hints parts) won."""
    response = client.post("/api/colorize", params=params, data=fields,
                           files=[("file", ("photo.jpg", photo_bytes(20, 10), "image/jpeg")), *files])
    body = assert_error(response, 422)
    assert [problem["field"] for problem in body["detail"]] == names
    assert "given more than once" in body["error"]
