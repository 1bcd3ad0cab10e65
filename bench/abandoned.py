"""Uploads whose clients leave: what the next user waits. A live `colorem serve` (default settings) gets
N uploads of a 4-megapixel photo at render 1024 whose clients close the connection after a second (as the
page does when a slider moves again), then one normal upload of a sample photo; prints how long that one
took and the server's /healthz counters (served, dropped).

    python bench/abandoned.py                              # this checkout
    python bench/abandoned.py --checkout OLD --port 8772   # another version's checkout, for comparison
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BOUNDARY = "colorem-abandoned"


def multipart(photo: bytes, fields: dict[str, str]) -> tuple[bytes, str]:
    body = b"".join(f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{key}\"\r\n\r\n{value}\r\n".encode()
                    for key, value in fields.items())
    body += (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"photo.jpg\"\r\n"
             "Content-Type: image/jpeg\r\n\r\n").encode() + photo + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, default=REPO, help="the colorem checkout to serve from")
    parser.add_argument("--port", type=int, default=8771)
    parser.add_argument("--abandoned", type=int, default=10, help="uploads whose clients leave")
    args = parser.parse_args()
    url = f"http://127.0.0.1:{args.port}"
    server = subprocess.Popen([sys.executable, "-m", "colorem", "serve", "--port", str(args.port), "--log-level", "warning"],
                              cwd=args.checkout, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        buffer = io.BytesIO()
        noise = np.random.default_rng(0).random((1732, 2309)) * 255  # 4 MP
        Image.fromarray(noise.astype(np.uint8)).save(buffer, "JPEG", quality=90)
        body, content_type = multipart(buffer.getvalue(), {"render_size": "1024"})
        head = (f"POST /api/colorize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        clients = [socket.create_connection(("127.0.0.1", args.port)) for _ in range(args.abandoned)]
        for client in clients:
            client.sendall(head + body)
        time.sleep(1.0)
        for client in clients:
            client.close()
        sample = (REPO / "testing_images" / "coffee.jpg").read_bytes()
        body, content_type = multipart(sample, {})
        started = time.perf_counter()
        request = urllib.request.Request(url + "/api/colorize", data=body, headers={"Content-Type": content_type})
        status = urllib.request.urlopen(request, timeout=600).status
        waited = time.perf_counter() - started
        health = json.load(urllib.request.urlopen(url + "/healthz"))
        print(f"{args.checkout}: after {args.abandoned} abandoned uploads the next one was answered {status} in "
              f"{waited:.2f} s; served {health['served']}, dropped {health.get('dropped', 'not counted')}")
    finally:
        server.terminate()
        server.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
