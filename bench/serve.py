"""Load check for `colorem serve`: a live server on 127.0.0.1 in a subprocess, a concurrent burst, then a long
sequential run; errors, latency, throughput and server memory, against the same model colorizing the same
photos in-process.

    python bench/serve.py                        # color-em-original with random weights, 200 @ 8 + 1000 sequential
    python bench/serve.py --model W.safetensors --requests 40 --sequential 100   # quicker
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from PIL import Image, ImageOps

from colorem import load
from colorem.imageio import encode_image
from colorem.models import create_model
from colorem.serve import packaged_samples
from colorem.weights import ModelCard, save_weights


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None,
                        help="weights to serve (default: color-em-original with random weights, saved to a temp dir)")
    parser.add_argument("--requests", type=int, default=200, help="requests in the concurrent burst")
    parser.add_argument("--concurrency", type=int, default=8, help="clients sending at once in the burst")
    parser.add_argument("--sequential", type=int, default=1000, help="requests sent one after another")
    parser.add_argument("--size", type=int, default=512, help="side of the square test photos")
    parser.add_argument("--format", default="png", choices=("png", "jpeg", "webp"), help="output format requested")
    parser.add_argument("--server-concurrency", type=int, default=None,
                        help="the server's --concurrency (default: its own choice for this machine)")
    parser.add_argument("--server-threads", type=int, default=None, help="the server's --torch-threads")
    parser.add_argument("--inprocess", type=int, default=100, help="photos colorized in-process for the baseline")
    return parser.parse_args()


def test_photos(size: int) -> list[bytes]:
    """The packaged samples, center-cropped to size x size grayscale JPEGs (what a user would upload)."""
    photos = []
    for entry in sorted(packaged_samples().iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".jpg"):
            with Image.open(io.BytesIO(entry.read_bytes())) as image:
                square = ImageOps.fit(image.convert("L"), (size, size), Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            square.save(buffer, format="JPEG", quality=90)
            photos.append(buffer.getvalue())
    return photos


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(model: str, port: int, server_concurrency: int | None, threads: int | None) -> subprocess.Popen:
    command = [sys.executable, "-m", "colorem", "serve", "--model", model, "--port", str(port),
               "--host", "127.0.0.1", "--log-level", "warning"]
    if server_concurrency:
        command += ["--concurrency", str(server_concurrency)]
    if threads:
        command += ["--torch-threads", str(threads)]
    process = subprocess.Popen(command)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with {process.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("the server did not start within 120 s")


class Phase:
    """Sends requests, recording each latency and every failure."""

    def __init__(self, url: str, photos: list[bytes], image_format: str, size: int):
        self.url, self.photos, self.format, self.size = url, photos, image_format, size
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.lock = threading.Lock()
        self.local = threading.local()

    def send(self, index: int) -> None:
        client = getattr(self.local, "client", None)
        if client is None:
            client = self.local.client = httpx.Client(timeout=120)
        photo = self.photos[index % len(self.photos)]
        started = time.perf_counter()
        try:
            response = client.post(f"{self.url}/api/colorize", params={"format": self.format},
                                   files={"file": (f"photo{index}.jpg", photo, "image/jpeg")})
            elapsed = time.perf_counter() - started
            problem = None
            if response.status_code != 200:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
            elif response.headers.get("x-image-size") != f"{self.size}x{self.size}" or len(response.content) < 1000:
                problem = f"wrong result {response.headers.get('x-image-size')} {len(response.content)} bytes"
            elif index % 50 == 0:  # decode some results fully
                with Image.open(io.BytesIO(response.content)) as image:
                    image.load()
                    if image.size != (self.size, self.size):
                        problem = f"decoded size {image.size}"
        except httpx.HTTPError as error:
            elapsed, problem = time.perf_counter() - started, f"{type(error).__name__}: {error}"
        with self.lock:
            self.latencies.append(elapsed)
            if problem:
                self.errors.append(problem)

    def run(self, count: int, concurrency: int) -> float:
        started = time.perf_counter()
        if concurrency == 1:
            for index in range(count):
                self.send(index)
        else:
            with ThreadPoolExecutor(concurrency) as pool:
                list(pool.map(self.send, range(count)))
        return time.perf_counter() - started


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


def in_process(model: str, photos: list[bytes], count: int, image_format: str) -> tuple[float, float]:
    """Photos per second colorizing the same bytes in this process: (decode+colorize, decode+colorize+encode).

    Each is timed on the main thread and on a worker thread and the faster is kept: under CPU contention
    torch's OpenMP threads behave very differently between the two, and the baseline should be the best."""
    colorizer = load(model)

    def rate(encode: bool) -> float:
        for photo in photos[:4]:
            colorizer.colorize(photo)  # warm up on this thread
        started = time.perf_counter()
        for index in range(count):
            image = colorizer.colorize(photos[index % len(photos)])
            if encode:
                encode_image(image, image_format)
        return count / (time.perf_counter() - started)

    def best(encode: bool) -> float:
        on_worker = []
        worker = threading.Thread(target=lambda: on_worker.append(rate(encode)))
        worker.start()
        worker.join()
        return max(rate(encode), on_worker[0])

    return best(False), best(True)


def main() -> int:
    args = parse_args()
    scratch = tempfile.TemporaryDirectory(prefix="colorem-bench-")
    model = args.model
    if model is None:
        model = str(save_weights(create_model("color-em-original"),
                                 ModelCard(architecture="color-em-original", name="original-random-weights"),
                                 Path(scratch.name) / "original.safetensors"))
    photos = test_photos(args.size)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(model, port, args.server_concurrency, args.server_threads)
    try:
        warm = Phase(url, photos, args.format, args.size)
        warm.run(16, min(args.concurrency, 4))
        rss_start = rss_mb(server.pid)
        burst = Phase(url, photos, args.format, args.size)
        burst_seconds = burst.run(args.requests, args.concurrency)
        rss_burst = rss_mb(server.pid)
        sequential = Phase(url, photos, args.format, args.size)
        sequential_seconds = sequential.run(args.sequential, 1) if args.sequential else float("nan")
        rss_end = rss_mb(server.pid)
        server_concurrency = httpx.get(f"{url}/healthz").json()["concurrency"]
        health = httpx.get(f"{url}/healthz").status_code
    finally:
        server.terminate()
        server.wait(timeout=30)
    colorize_rate, full_rate = in_process(model, photos, args.inprocess, args.format)

    print(f"\nmodel {Path(model).name}, {args.size}x{args.size} grayscale JPEGs ({len(photos)} distinct) -> {args.format}, "
          f"server concurrency {server_concurrency}, server torch threads {args.server_threads or 'default'}, "
          f"{os.cpu_count()} CPUs")
    print("| phase | requests | errors | p50 ms | p95 ms | req/s | vs in-process colorize | vs in-process colorize+encode |")
    print("|---|---|---|---|---|---|---|---|")
    for name, phase, seconds in (("burst", burst, burst_seconds), ("sequential", sequential, sequential_seconds)):
        if not phase.latencies:
            continue
        rate = len(phase.latencies) / seconds
        print(f"| {name}{f' (concurrency {args.concurrency})' if name == 'burst' else ''} | {len(phase.latencies)} | "
              f"{len(phase.errors)} | {percentile(phase.latencies, 50) * 1000:.0f} | {percentile(phase.latencies, 95) * 1000:.0f} | "
              f"{rate:.2f} | {rate / colorize_rate:.0%} | {rate / full_rate:.0%} |")
    print(f"| in-process colorize (decode + colorize) | {args.inprocess} | 0 | | | {colorize_rate:.2f} | 100% | |")
    print(f"| in-process colorize + encode {args.format} | {args.inprocess} | 0 | | | {full_rate:.2f} | | 100% |")
    print(f"\nserver RSS: {rss_start:.0f} MB after warm-up, {rss_burst:.0f} MB after the burst, {rss_end:.0f} MB at the end "
          f"({rss_end - rss_start:+.0f} MB); /healthz after the run: {health}")
    for problem in (burst.errors + sequential.errors)[:5]:
        print("error:", problem)
    return 1 if burst.errors or sequential.errors or health != 200 else 0


if __name__ == "__main__":
    sys.exit(main())
