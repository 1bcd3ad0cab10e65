"""`colorem serve` as a real subprocess on 127.0.0.1, for the browser and load tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

HOST = "127.0.0.1"  # the only address these tests ever connect to


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


class LiveServer:
    def __init__(self, process: subprocess.Popen, port: int, log_path: Path):
        self.process, self.port, self.log_path = process, port, log_path
        self.url = f"http://{HOST}:{port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]


@contextlib.contextmanager
def live_server(weights: Path, log_dir: Path, *options: str):
    """`colorem serve --model weights *options` on a free port, healthy before it is yielded (a LiveServer)."""
    log_path = log_dir / "serve.log"
    for _ in range(2):  # a second try with another port: something else may take the free port first
        port = free_port()
        command = [sys.executable, "-m", "colorem", "serve", "--model", str(weights), "--host", HOST,
                   "--port", str(port), "--device", "cpu", "--precision", "fp32", "--torch-threads", "1",
                   "--log-level", "warning", *options]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                                       env={**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"})
        live = LiveServer(process, port, log_path)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and process.poll() is None and not healthy(live.url):
            time.sleep(0.2)
        if process.poll() is None:
            break
    else:
        pytest.fail(f"colorem serve did not start:\n{live.log()}")
    if time.monotonic() >= deadline:
        process.kill()
        pytest.fail(f"colorem serve did not become healthy:\n{live.log()}")
    try:
        yield live
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)
