"""The folder runner: worker decoding, batching, resumable runs, and a torchrun split across ranks."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

import colorem
from colorem.folder import FolderOptions, colorize_files, rank_share
from tests.conftest import photo


@pytest.fixture
def collection(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for index in range(11):
        photo(30 + index * 7, 40 - index, seed=index).convert("L").save(folder / f"p{index:02d}.jpg")
    (folder / "p99-broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    return folder


def items_of(folder: Path):
    return [(path, Path(path.name)) for path in sorted(folder.iterdir())]


def test_workers_batches_and_resume(collection, tmp_path, tiny_weights):
    colorizer = colorem.load(tiny_weights)
    options = FolderOptions(output=tmp_path / "out", batch_size=4, workers=2)
    results = list(colorize_files(colorizer, items_of(collection), options))
    assert len(results) == 12
    assert sorted(r.status for r in results).count("done") == 11
    assert [r.source.name for r in results if r.status == "failed"] == ["p99-broken.jpg"]
    for index in range(11):
        assert Image.open(tmp_path / "out" / f"p{index:02d}.jpg").size == (30 + index * 7, 40 - index)
    again = list(colorize_files(colorizer, items_of(collection), FolderOptions(output=tmp_path / "out")))
    assert [r.status for r in again].count("skipped") == 11


def test_rank_share_is_a_partition():
    items = list(range(23))
    shares = [rank_share(items, rank, 3) for rank in range(3)]
    assert sorted(sum(shares, [])) == items
    assert rank_share(items, 0, 1) == items


@pytest.mark.skipif(shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists(),
                    reason="torchrun not installed")
def test_torchrun_two_processes_colorize_every_input_exactly_once(collection, tmp_path, tiny_weights):
    torchrun = str(Path(sys.executable).parent / "torchrun")
    out = tmp_path / "out"
    result = subprocess.run(
        [torchrun, "--standalone", "--nproc_per_node=2", "-m", "colorem", "colorize", str(collection), "-o", str(out),
         "--model", str(tiny_weights), "--workers", "0"],
        capture_output=True, text=True, timeout=180,
    )
    assert result.returncode != 0  # the broken file fails on whichever rank owns it
    counts = [int(n) for n in re.findall(r"colorized (\d+), skipped 0", result.stderr)]
    assert len(counts) == 2 and sum(counts) == 11, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [f"p{index:02d}.jpg" for index in range(11)]
    assert result.stderr.count("failed: ") == 1


def test_under_torchrun_a_failing_rank_waits_for_the_others_before_exiting(tmp_path):
    """torchrun stops every rank once one exits non-zero: the rank that failed fast (rank 1) waits at the end for the
    slow one (rank 0), which finishes its share and writes its mark."""
    torchrun = str(Path(sys.executable).parent / "torchrun")
    child = tmp_path / "ranks.py"
    child.write_text(
        "import os, sys, time\nfrom colorem.folder import wait_for_other_ranks\n"
        "rank = int(os.environ['RANK'])\n"
        "if rank == 0:\n    time.sleep(3)\n    open(sys.argv[1], 'w').write('finished')\n"
        "wait_for_other_ranks()\nsys.exit(rank)\n")
    mark = tmp_path / "rank0-finished"
    result = subprocess.run([torchrun, "--standalone", "--nproc_per_node=2", str(child), str(mark)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0, result.stderr
    assert mark.read_text() == "finished", result.stderr


def test_a_peer_rank_lost_at_the_end_is_one_line_and_this_rank_s_result_stands(tmp_path, tiny_weights, monkeypatch, capsys):
    import colorem.cli.colorize as cli_colorize
    from colorem.cli import main

    def peer_died():
        raise RuntimeError("Rank 1 failed to pass monitoredBarrier in 604800000 ms\n (details)")

    monkeypatch.setattr(cli_colorize, "wait_for_other_ranks", peer_died)
    photo(48, 32).convert("L").save(tmp_path / "a.png")
    assert main(["colorize", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "--model", str(tiny_weights)]) == 0
    error = capsys.readouterr().err
    assert "colorem: could not wait for the other torchrun ranks: Rank 1 failed to pass monitoredBarrier" in error
    assert "Traceback" not in error and (tmp_path / "out" / "a.png").exists()


def test_out_of_memory_on_one_photo_fails_only_that_photo(tmp_path, tiny_weights):
    """Under an address-space limit a 64 MP photo cannot be colorized: it is reported as failed ("not enough
    memory for 64 MP") and the photos around it are done; no traceback, exit code 1."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.png", "c.png"):
        photo(48, 32).convert("L").save(folder / name)
    Image.new("L", (8000, 8000), 90).save(folder / "b-huge.bmp")  # 64 MB, quick to decode
    child = (
        "import resource, sys\nfrom colorem.cli import main\n"
        "main(['colorize', sys.argv[1] + '/a.png', '-o', sys.argv[2] + '/warm', '--model', sys.argv[3]])  # imports, pools\n"
        "size = next(int(line.split()[1]) * 1024 for line in open('/proc/self/status') if line.startswith('VmSize'))\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + 200 * 2**20, resource.RLIM_INFINITY))  # 200 MB more at most\n"
        "sys.exit(main(['colorize', sys.argv[1], '-o', sys.argv[2] + '/out', '--model', sys.argv[3]]))\n")
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "1"}
    result = subprocess.run([sys.executable, "-c", child, str(folder), str(tmp_path), str(tiny_weights)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 1, result.stderr
    assert re.search(r"failed: .*b-huge\.bmp: not enough memory for 64 MP", result.stderr), result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "c.png"]


def test_out_of_memory_in_the_network_fails_only_that_group(collection, tmp_path, tiny_weights):
    colorizer = colorem.load(tiny_weights)
    forward, calls = colorizer.model.forward, []

    def first_group_runs_out(l, **kwargs):
        calls.append(len(l))
        if len(calls) == 1:
            raise RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 68719476736 bytes.")
        return forward(l, **kwargs)

    colorizer.model.forward = first_group_runs_out
    results = list(colorize_files(colorizer, items_of(collection), FolderOptions(output=tmp_path / "out", batch_size=4, workers=0)))
    failed = [r for r in results if r.status == "failed" and r.source.name != "p99-broken.jpg"]
    assert [r.source.name for r in failed] == ["p00.jpg", "p01.jpg", "p02.jpg", "p03.jpg"]
    assert all(r.error == "not enough memory for the network at render size 64 (4 photos)" for r in failed)
    assert sorted(r.status for r in results).count("done") == 7


@pytest.mark.parametrize("bad", [{"quality": 500}, {"batch_size": 0}, {"workers": -1}, {"render_size": 5}, {"saturation": -1.0}])
def test_a_run_checks_every_option_before_any_photo(bad, collection, tmp_path, tiny_weights):
    """The options are checked in one place, against colorem's limits and the model, before anything is written."""
    from colorem.errors import OptionError
    from colorem.folder import FolderRun
    colorizer = colorem.load(tiny_weights)
    with pytest.raises(OptionError, match=next(iter(bad))):
        FolderRun(colorizer, items_of(collection), FolderOptions(output=tmp_path / "out", **bad))
    with pytest.raises(OptionError, match=next(iter(bad))):
        next(colorize_files(colorizer, items_of(collection), FolderOptions(output=tmp_path / "out", **bad)))
    assert not (tmp_path / "out").exists()
