"""The server under hostile uploads, a burst of large photos, slow clients and path tricks.

The hostile corpus runs against the app in-process (counted into the robustness tally of
tests/test_hostile.py); load, slow clients and raw paths run against a live `colorem serve` subprocess
on 127.0.0.1. Uploads over the size limit are refused before they are fully read: that is
tests/test_serve.py::test_413_while_streaming_stops_reading and ::test_413_by_content_length_reads_nothing.
"""

from __future__ import annotations

import io
import os
import re
import socket
import threading
import time

import anyio
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from colorem import load  # noqa: E402
from colorem.serve import Settings, create_app  # noqa: E402
from tests.conftest import photo  # noqa: E402
from tests.hostile import build_cases  # noqa: E402
from tests.live import HOST, live_server  # noqa: E402
from tests.test_hostile import TALLY  # noqa: E402  (one tally: library, CLI and server tries)

CASES = [case for case in build_cases() if case.link_to is None]  # a link cannot be uploaded
CONCURRENCY = 2
BURST = 50
MAX_UPLOAD_MB = 4


def expected_status(case) -> int:
    if case.outcome == "colorized":
        return 200
    if "pixels" in case.expect or "scans" in case.expect:
        return 413  # decompression bomb, JPEG scan bomb
    if "not a recognised image" in case.expect:
        return 415
    return 422  # empty, truncated, corrupt


# --- every hostile file through POST /api/colorize -----------------------------------------------
@pytest.fixture(scope="module")
def client(tiny_weights):
    colorizer = load(tiny_weights, device="cpu", precision="fp32")
    with TestClient(create_app(Settings(colorizer=colorizer, warmup=False)), raise_server_exceptions=False) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=[c.filename for c in CASES])
def test_hostile_upload_gets_the_right_status(case, client):
    TALLY["tried"] += 1
    try:
        response = client.post("/api/colorize", files={"file": (case.filename, case.data, "application/octet-stream")})
    except Exception:
        TALLY["crashes"] += 1
        raise
    if response.status_code >= 500:
        TALLY["crashes"] += 1
    elif response.status_code == 200:
        TALLY["colorized"] += 1
    else:
        TALLY["rejected"] += 1
    assert response.status_code == expected_status(case), f"{case.filename}: {response.text[:300]}"
    if case.outcome == "colorized":
        assert response.headers["x-image-size"] == "{}x{}".format(*case.expect)
        with Image.open(io.BytesIO(response.content)) as image:
            assert image.size == case.expect
            assert image.mode == ("RGBA" if case.note == "alpha kept" else "RGB")
        # the download name is one plain file name: no separators, no odd characters, not hidden
        name = re.search(r'filename="([^"]*)"', response.headers["content-disposition"]).group(1)
        assert re.fullmatch(r"[A-Za-z0-9_-][A-Za-z0-9._-]*", name), name
    else:
        body = response.json()
        assert body["error"] and "Traceback" not in response.text
        assert re.search(case.expect, body["detail"]), body
    assert client.get("/healthz").status_code == 200


# --- a live server ------------------------------------------------------------------------------
def _memory_kib(pid: int, field: str) -> int:
    """VmRSS (resident now) or VmHWM (peak resident) of a process, in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@pytest.fixture(scope="module")
def server(tiny_weights, tmp_path_factory):
    if not os.path.isdir(f"/proc/{os.getpid()}"):
        pytest.skip("needs /proc to measure the server's memory")
    with live_server(tiny_weights, tmp_path_factory.mktemp("server"), "--concurrency", str(CONCURRENCY),
                     "--max-waiting", str(BURST), "--max-upload-mb", str(MAX_UPLOAD_MB)) as live:
        yield live


def jpeg_bytes(width: int, height: int, seed: int = 0, quality: int = 85) -> bytes:
    buffer = io.BytesIO()
    photo(width, height, seed=seed).convert("L").save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def test_burst_of_large_photos_gets_no_5xx_and_memory_stays_bounded(server):
    sizes = [(2000, 1500), (1500, 2000)]  # landscape and portrait: answers must not be swapped
    photos = [jpeg_bytes(width, height, seed=index) for index, (width, height) in enumerate(sizes)]
    with httpx.Client(base_url=server.url, timeout=60) as client:  # one photo first: allocator pools exist
        first = client.post("/api/colorize", params={"format": "jpeg"}, files={"file": ("warm.jpg", photos[0])})
        assert first.status_code == 200, first.text
    pid = server.process.pid
    rss_before = _memory_kib(pid, "VmRSS")

    async def burst():
        limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=server.url, timeout=180, limits=limits) as client:
            results = [None] * BURST

            async def one(index):
                files = {"file": (f"photo{index}.jpg", photos[index % 2], "image/jpeg")}
                try:
                    results[index] = await client.post("/api/colorize", params={"format": "jpeg"}, files=files)
                except httpx.HTTPError as error:  # a dropped connection is as bad as a 5xx
                    results[index] = error

            async with anyio.create_task_group() as group:
                for index in range(BURST):
                    group.start_soon(one, index)
            return results

    started = time.monotonic()
    responses = anyio.run(burst)
    elapsed = time.monotonic() - started
    peak_kib = _memory_kib(pid, "VmHWM")
    rss_after = _memory_kib(pid, "VmRSS")

    failures = [(index, getattr(r, "status_code", r)) for index, r in enumerate(responses)
                if not isinstance(r, httpx.Response) or r.status_code != 200]
    assert not failures, f"{failures[:5]} after {elapsed:.0f}s\n{server.log()}"
    for index, response in enumerate(responses):
        assert response.headers["x-image-size"] == "{}x{}".format(*sizes[index % 2])
        assert response.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(responses[1].content)) as image:
        assert image.size == sizes[1]
    health = httpx.get(server.url + "/healthz", timeout=10).json()
    assert health["status"] == "ok" and health["running"] == 0 and health["waiting"] == 0

    # Memory: at most CONCURRENCY photos are decoded and colorized at once; waiting uploads hold only their
    # compressed bytes. One photo in flight costs about 100 bytes a pixel (decoded pixels, float32 RGB and
    # Lab planes, upsampled ab, kernel temporaries: measured ~300 MiB for 3 MP, and the growth is the same
    # for a burst of 10 or 50, half as much with one slot). Budget 160 bytes a pixel per slot; 50 photos
    # decoded at once would need over ten times this bound.
    pixels = sizes[0][0] * sizes[0][1]
    bound_mib = (CONCURRENCY * pixels * 160 + BURST * max(map(len, photos))) / 2**20 + 128  # 128 MiB slack
    growth_mib = (peak_kib - rss_before) / 1024
    print(f"server RSS {rss_before / 1024:.0f} MiB before, peak {peak_kib / 1024:.0f} MiB, "
          f"{rss_after / 1024:.0f} MiB after {BURST} photos in {elapsed:.1f}s; bound +{bound_mib:.0f} MiB")
    assert growth_mib < bound_mib, f"peak grew {growth_mib:.0f} MiB over a bound of {bound_mib:.0f} MiB"


def multipart(data: bytes, filename: str = "slow.jpg", boundary: str = "colorem-slow-boundary") -> tuple[bytes, str]:
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def raw_request(port: int, head: bytes, body: bytes = b"", timeout: float = 30.0) -> tuple[int, bytes]:
    """Send one HTTP/1.1 request over a plain socket (no client-side path normalisation); (status, body)."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(head + body)
        return _read_response(sock)


def _read_response(sock: socket.socket) -> tuple[int, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data[:200]!r}")
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    length = int(match.group(1)) if match else None
    while length is not None and len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, rest


def test_slow_client_does_not_block_others(server):
    body, content_type = multipart(jpeg_bytes(120, 80))
    head = (f"POST /api/colorize HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    pieces = [body[i:i + len(body) // 24 + 1] for i in range(0, len(body), len(body) // 24 + 1)]
    trickle_seconds = 6.0
    outcome: dict = {}

    def slow_upload():
        try:
            with socket.create_connection((HOST, server.port), timeout=30) as sock:
                sock.sendall(head)
                for piece in pieces:  # the whole body over ~6 s
                    sock.sendall(piece)
                    time.sleep(trickle_seconds / len(pieces))
                outcome["response"] = _read_response(sock)
        except Exception as error:  # noqa: BLE001  (reported by the main thread)
            outcome["error"] = error

    # a second client that sends half a body and then vanishes
    abandoned = socket.create_connection((HOST, server.port), timeout=10)
    abandoned.sendall(head + body[: len(body) // 2])

    trickler = threading.Thread(target=slow_upload, daemon=True)
    trickler.start()
    time.sleep(0.5)
    with httpx.Client(base_url=server.url, timeout=10) as client:
        started = time.monotonic()
        health = client.get("/healthz")
        health_seconds = time.monotonic() - started
        started = time.monotonic()
        normal = client.post("/api/colorize", files={"file": ("quick.jpg", jpeg_bytes(96, 64))})
        normal_seconds = time.monotonic() - started
        slow_still_sending = trickler.is_alive()
        abandoned.close()
        trickler.join(timeout=60)
        assert not trickler.is_alive() and "error" not in outcome, outcome
        assert health.status_code == 200 and health_seconds < 2.0, health_seconds
        assert normal.status_code == 200 and normal_seconds < 4.0, normal_seconds
        assert slow_still_sending  # both answered while the slow body was still arriving
        status, _ = outcome["response"]
        assert status == 200  # and the slow client is served too once its body is complete
        deadline = time.monotonic() + 10  # the abandoned upload releases its place in the queue
        while (waiting := client.get("/healthz").json()["waiting"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert waiting == 0


SLOW_CLIENTS = 20  # 2 slots + 16 queue places: 18 such clients once kept every upload at 503
UPLOAD_TIMEOUT = 3.0  # seconds; the default is 60, short here so the test takes seconds


def test_slow_clients_hold_no_slot_or_queue_place(tiny_weights, tmp_path):
    """Clients that send headers and a few bytes, then nothing: they are counted as receiving (not waiting,
    not running), a normal upload is served at once, and at the upload deadline each gets 408 and its
    connection closed, leaving nothing held."""
    with live_server(tiny_weights, tmp_path, "--concurrency", "2", "--max-waiting", "16",
                     "--upload-timeout", str(UPLOAD_TIMEOUT)) as server, httpx.Client(base_url=server.url, timeout=10) as client:
        body, content_type = multipart(jpeg_bytes(120, 80))
        head = (f"POST /api/colorize HTTP/1.1\r\nHost: {HOST}:{server.port}\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        slow = []
        try:
            for _ in range(SLOW_CLIENTS):
                sock = socket.create_connection((HOST, server.port), timeout=UPLOAD_TIMEOUT + 20)
                sock.sendall(head + body[:40])
                slow.append(sock)
            deadline = time.monotonic() + UPLOAD_TIMEOUT / 2
            while (health := client.get("/healthz").json())["receiving"] < SLOW_CLIENTS and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (health["receiving"], health["waiting"], health["running"]) == (SLOW_CLIENTS, 0, 0), health
            started = time.monotonic()
            normal = client.post("/api/colorize", files={"file": ("quick.jpg", jpeg_bytes(96, 64))})
            assert normal.status_code == 200, normal.text
            assert time.monotonic() - started < UPLOAD_TIMEOUT / 2  # served while all of them still hang
            for sock in slow:  # the deadline passes: each is told so and disconnected
                status, answer = _read_response(sock)
                assert status == 408 and b"did not arrive within" in answer
                assert sock.recv(1) == b""  # closed by the server
        finally:
            for sock in slow:
                sock.close()
        health = client.get("/healthz").json()
        assert (health["receiving"], health["waiting"], health["running"]) == (0, 0, 0), health
        assert client.post("/api/colorize", files={"file": ("after.jpg", jpeg_bytes(96, 64))}).status_code == 200


ABANDONED = 5


def test_a_photo_whose_client_left_is_dropped_unrun(tiny_weights, tmp_path):
    """A page that cancels a request it no longer wants (a slider moved again) closes the connection: a photo
    still waiting for its slot then is never colorized, so the queue drains at once for the next user."""
    with live_server(tiny_weights, tmp_path, "--concurrency", "1", "--max-waiting", "16") as server, \
            httpx.Client(base_url=server.url, timeout=30) as client:
        body, content_type = multipart(jpeg_bytes(2400, 1800))  # each ~1 s at render 1024 on one thread
        head = (f"POST /api/colorize?render_size=1024 HTTP/1.1\r\nHost: {HOST}:{server.port}\r\n"
                f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        sockets = []
        try:
            for _ in range(ABANDONED):
                sockets.append(socket.create_connection((HOST, server.port), timeout=30))
                sockets[-1].sendall(head + body)
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:  # every body received: one running, the rest waiting
                health = client.get("/healthz").json()
                if health["receiving"] == 0 and health["running"] + health["waiting"] + health["served"] == ABANDONED:
                    break
                time.sleep(0.02)
            assert health["waiting"] >= 2, health
        finally:
            for sock in sockets:
                sock.close()
        while (health := client.get("/healthz").json())["running"] + health["waiting"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert health["served"] + health["dropped"] == ABANDONED
        assert health["dropped"] >= 1 and health["served"] <= ABANDONED - health["dropped"], health
        assert client.post("/api/colorize", files={"file": ("after.jpg", jpeg_bytes(96, 64))}).status_code == 200


# Raw request targets: sent byte for byte, so no client collapses "..", decodes %2F or drops a "//".
TRAVERSALS = [
    "/api/samples/../../pyproject.toml",
    "/api/samples/..%2F..%2F..%2Fpyproject.toml",
    "/api/samples/%2E%2E%2F%2E%2E%2Fserve%2Fapp.py",
    "/api/samples/..%5C..%5Cpyproject.toml",
    "/api/samples/%2Fetc%2Fpasswd",
    "/api/samples//etc/passwd",
    "/api/samples/astronaut.jpg/../../../serve/app.py",
    "/api/samples/..%252F..%252Fpyproject.toml",
    "/api/samples/originals%2F..%2F..%2Fserve%2Fapp.py",
    "/static/../app.py",
    "/static/..%2Fapp.py",
    "/static/%2E%2E/%2E%2E/pyproject.toml",
    "/static//etc/passwd",
    "/../../../../etc/passwd",
]
SECRETS = (b"root:", b"[project]", b"def create_app", b"import ")


@pytest.mark.parametrize("target", TRAVERSALS)
def test_traversal_in_the_raw_path_is_rejected(server, target):
    status, body = raw_request(server.port, f"GET {target} HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
    assert 400 <= status < 500, (target, status, body[:200])
    assert not any(secret in body for secret in SECRETS), body[:200]


def test_raw_client_reaches_a_real_sample(server):
    """The traversal checks above mean something: the same raw client does fetch a listed sample."""
    status, body = raw_request(server.port, f"GET /api/samples/astronaut.jpg HTTP/1.1\r\nHost: {HOST}\r\n"
                                            "Connection: close\r\n\r\n".encode())
    assert status == 200 and body[:2] == b"\xff\xd8"
