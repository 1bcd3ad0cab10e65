"""The two decoder bombs of issue 33 against a live `colorem serve` (the figures in SECURITY.md):

- an .ico whose directory says 256x256 but which holds a 9400x9400 RGBA PNG (355 KB): the server's peak
  memory (VmHWM) after four of them at once, against its peak after a normal photo;
- a progressive 5000x5000 JPEG followed by 5,000 empty scans: the CPU time read_image spends before refusing
  it, and how long a normal 600x400 upload takes while two of them are sent at the same time.

    python bench/decoder_bombs.py                  # the packaged default model, on the CPU
    python bench/decoder_bombs.py --model W.safetensors
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the bombs are built as the test corpus builds them

from colorem.errors import ImageReadError  # noqa: E402
from colorem.imageio import read_image  # noqa: E402
from tests.conftest import photo  # noqa: E402
from tests.hostile import ico_bomb, jpeg_scan_bomb  # noqa: E402
from tests.live import live_server  # noqa: E402


def peak_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 1024


def post(url: str, name: str, data: bytes) -> tuple[int, float]:
    started = time.perf_counter()
    response = httpx.post(url + "/api/colorize", files={"file": (name, data)}, timeout=120)
    return response.status_code, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="default")
    args = parser.parse_args()
    ico = ico_bomb(9400, 9400, rows=None)  # complete: every row stored, as an attacker would send it
    scans = jpeg_scan_bomb(5000, 5000, scans=5000)
    buffer = io.BytesIO()
    photo(600, 400).convert("L").save(buffer, format="JPEG", quality=85)
    normal = buffer.getvalue()
    print(f"ico bomb {len(ico) / 1e3:.0f} KB, scan bomb {len(scans) / 1e3:.0f} KB, normal photo {len(normal) / 1e3:.0f} KB")

    started = time.process_time()
    try:
        read_image(scans, max_pixels=25_000_000)
    except ImageReadError as error:
        print(f"scan bomb refused in-process after {time.process_time() - started:.4f} s of CPU: {error.reason}")

    with tempfile.TemporaryDirectory() as folder, live_server(args.model, Path(folder)) as server:
        status, seconds = post(server.url, "normal.jpg", normal)  # warm: the allocator's pools exist
        idle = peak_mib(server.process.pid)
        print(f"normal photo: {status} in {seconds:.2f} s; server peak memory {idle:.0f} MiB")
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda index: post(server.url, f"bomb{index}.ico", ico), range(4)))
        after = peak_mib(server.process.pid)
        print(f"4 ico bombs at once: {[code for code, _ in answers]}; server peak memory {after:.0f} MiB "
              f"(+{after - idle:.0f} MiB)")
        with ThreadPoolExecutor(3) as pool:
            bombs = [pool.submit(post, server.url, f"scans{index}.jpg", scans) for index in range(2)]
            time.sleep(0.05)  # the bombs first, so they would hold both slots
            status, seconds = pool.submit(post, server.url, "normal.jpg", normal).result()
            print(f"2 scan bombs: {[future.result()[0] for future in bombs]}; a normal photo sent with them: "
                  f"{status} in {seconds:.2f} s")


if __name__ == "__main__":
    main()
