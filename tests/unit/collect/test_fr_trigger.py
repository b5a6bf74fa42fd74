"""The collector's flight-recorder trigger (`preflight hang --dump-fr`, collector.builtin_fr_dump) against real
processes and real FIFOs on this machine: the stand-in rank (preflight/sim/fr_job.py) does what PyTorch's
DumpPipe does; the other outcomes are made with real pipes, files and links. Every outcome is data."""

from __future__ import annotations

import base64
import hashlib
import os
import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from preflight.collect import collector
from preflight.collect.probes import FR_PROBE, HANG_BASE, HANG_PROBES
from preflight.collect.script import _decode_shell, _shell_fallback, select_probes
from preflight.sim.fr_job import FR_PROFILE, rank_env, recorded_dump
from preflight.sim.profile import PROFILES

TAG = "trainFRunit.py"
PIPE = "/tmp/frunit/pipe_"
DUMP = "/tmp/frunit/trace_"


@pytest.fixture
def node(tmp_path, monkeypatch):
    """A node root (PREFLIGHT_HOST_ROOT, as on the simulated fleet) and a way to start processes on it."""
    root = tmp_path / "hostroot"
    (root / "proc").mkdir(parents=True)
    monkeypatch.setenv("PREFLIGHT_HOST_ROOT", str(root))
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], env: dict[str, str]) -> int:
        p = subprocess.Popen(argv, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env},
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        (root / "proc" / str(p.pid)).symlink_to(f"/proc/{p.pid}")
        for _ in range(200):  # bounded: right after fork the child's cmdline is still empty, until its exec
            if Path(f"/proc/{p.pid}/cmdline").read_bytes():
                break
            time.sleep(0.01)
        return p.pid

    yield root, start
    for p in procs:  # stopped by PID, each one we started
        p.kill()
        p.wait(timeout=10)


def _rank(start, rank: int, **env: str) -> int:
    dump = PROFILES / FR_PROFILE / f"fr-rank{rank}.txt"
    root = os.environ["PREFLIGHT_HOST_ROOT"]
    return start([sys.executable, "-m", "preflight.sim.fr_job", "--dump", str(dump), "--host-root", root, TAG],
                 rank_env(rank, 4, rank % 2, pipe_stem=PIPE, dump_prefix=DUMP, **env))


def _sleeper(start, env: dict[str, str]) -> int:
    return start([sys.executable, "-c", "import time; time.sleep(120)", TAG], env)


def _wait_for(path: Path) -> None:
    for _ in range(200):  # bounded: the stand-in makes its FIFO as it starts
        if path.exists():
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def _trigger(wait_s: float = 5.0, **fr: float) -> list[dict]:
    import json

    res = collector.builtin_fr_dump({"id": FR_PROBE, "timeout_s": 40.0},
                                    {"job": {"pattern": r"trainFRunit\.py", "dump_fr": {"wait_s": wait_s, **fr}}})
    assert res["error"] is None, res
    return sorted(json.loads(res["stdout"])["ranks"], key=lambda r: r["rank"])


def test_a_rank_with_a_pipe_dumps_and_the_dump_comes_back_whole(node) -> None:
    root, start = node
    pid = _rank(start, 2)
    _wait_for(root / "tmp/frunit/pipe_2.pipe")
    [rec] = _trigger()
    assert rec["outcome"] == "collected", rec
    assert rec["pid"] == pid and rec["pipe"] == "/tmp/frunit/pipe_2.pipe" and rec["dump_path"] == "/tmp/frunit/trace_2"
    data = base64.b64decode(rec["data_b64"])
    assert hashlib.sha256(data).hexdigest() == rec["sha256"] and rec["size"] == len(data)
    assert data == recorded_dump(PROFILES / FR_PROFILE / "fr-rank2.txt")
    assert len(pickle.loads(data)["entries"]) == 2  # rank 2 of the planted fault stops at #2


def test_a_stale_dump_from_before_the_trigger_is_not_taken_for_a_fresh_one(node) -> None:
    root, start = node
    (root / "tmp/frunit").mkdir(parents=True)
    (root / "tmp/frunit/trace_0").write_bytes(b"an older dump")
    os.utime(root / "tmp/frunit/trace_0", (1, 1))
    _rank(start, 0)
    _wait_for(root / "tmp/frunit/pipe_0.pipe")
    [rec] = _trigger()
    assert rec["outcome"] == "collected"
    assert base64.b64decode(rec["data_b64"]) == recorded_dump(PROFILES / FR_PROFILE / "fr-rank0.txt")


def test_no_pipe_named_and_no_fifo_are_outcomes_not_failures(node) -> None:
    root, start = node
    _sleeper(start, {"RANK": "0", "WORLD_SIZE": "2"})  # no TORCH_NCCL_DEBUG_INFO_PIPE_FILE
    _sleeper(start, {"RANK": "1", "WORLD_SIZE": "2", "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": PIPE})  # named, never made
    recs = _trigger(wait_s=0.5)
    assert [r["outcome"] for r in recs] == ["no_pipe_named", "no_fifo"]
    assert "TORCH_NCCL_DEBUG_INFO_PIPE_FILE" in recs[0]["note"] and "pipe_1.pipe" in recs[1]["note"]


def test_a_fifo_nobody_reads_is_no_reader_and_never_blocks(node) -> None:
    root, start = node
    (root / "tmp/frunit").mkdir(parents=True)
    os.mkfifo(root / "tmp/frunit/pipe_0.pipe")  # left behind by a rank that is gone
    _sleeper(start, {"RANK": "0", "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": PIPE})
    [rec] = _trigger(wait_s=0.5)
    assert rec["outcome"] == "no_reader", rec


def test_a_symlink_or_a_plain_file_at_the_pipe_path_is_refused_and_not_written(node, tmp_path) -> None:
    root, start = node
    (root / "tmp/frunit").mkdir(parents=True)
    target = tmp_path / "precious"
    target.write_text("keep")
    (root / "tmp/frunit/pipe_0.pipe").symlink_to(target)
    (root / "tmp/frunit/pipe_1.pipe").write_text("not a fifo")
    for rank in (0, 1):
        _sleeper(start, {"RANK": str(rank), "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": PIPE})
    recs = _trigger(wait_s=0.5)
    assert [r["outcome"] for r in recs] == ["refused", "refused"]
    assert "symlink" in recs[0]["note"] and "not a FIFO" in recs[1]["note"]
    assert target.read_text() == "keep" and (root / "tmp/frunit/pipe_1.pipe").read_text() == "not a fifo"


def _reader(root: Path, rank: int, on_trigger) -> tuple[threading.Thread, threading.Event]:
    """A pipe PyTorch-style (mkfifo, O_RDONLY|O_NONBLOCK, polled) whose 'dump' is whatever on_trigger does."""
    path = root / f"tmp/frunit/pipe_{rank}.pipe"
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(path)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    stop = threading.Event()

    def run() -> None:
        try:
            for _ in range(400):  # bounded
                if stop.wait(0.05):
                    return
                try:
                    got = os.read(fd, 128)
                except BlockingIOError:
                    got = b""
                if got:
                    on_trigger(stop)
        finally:
            os.close(fd)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, stop


def test_a_reader_that_never_dumps_is_dump_absent_within_the_wait(node) -> None:
    root, start = node
    t, stop = _reader(root, 0, lambda _stop: None)
    _sleeper(start, {"RANK": "0", "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": PIPE, "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": DUMP})
    try:
        [rec] = _trigger(wait_s=1.0)
    finally:
        stop.set()
        t.join(5)
    assert rec["outcome"] == "dump_absent", rec
    assert "/tmp/frunit/trace_0" in rec["note"] and "TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC" in rec["note"]


def test_a_dump_still_growing_when_the_wait_ends_is_a_timeout_not_read(node) -> None:
    root, start = node
    dump = root / "tmp/frunit/trace_0"

    def grow(stop: threading.Event) -> None:
        for i in range(200):  # bounded: grows every 50 ms until the test stops it
            if stop.wait(0.05):
                return
            with open(dump, "ab") as fh:
                fh.write(b"x" * (i + 1))

    t, stop = _reader(root, 0, grow)
    _sleeper(start, {"RANK": "0", "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": PIPE, "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": DUMP})
    try:
        [rec] = _trigger(wait_s=3.0, stable_s=3.0)  # it cannot have held still long enough, however slow the machine
    finally:
        stop.set()
        t.join(5)
    assert rec["outcome"] == "timeout" and "data_b64" not in rec, rec


def test_a_dump_over_the_cap_is_too_big_and_not_read(node) -> None:
    root, start = node
    _rank(start, 1)
    _wait_for(root / "tmp/frunit/pipe_1.pipe")
    [rec] = _trigger(max_bytes=100)
    assert rec["outcome"] == "too_big" and rec["size"] > 100 and "data_b64" not in rec, rec


def test_the_node_cap_bounds_all_its_dumps_together(node) -> None:
    root, start = node
    for rank in (0, 1):
        _rank(start, rank)
        _wait_for(root / f"tmp/frunit/pipe_{rank}.pipe")
    recs = _trigger(node_max_bytes=len(recorded_dump(PROFILES / FR_PROFILE / "fr-rank0.txt")) + 10)
    assert sorted(r["outcome"] for r in recs) == ["collected", "too_big"], recs
    assert "node's" in next(r for r in recs if r["outcome"] == "too_big")["note"]


def test_the_default_dump_paths_are_both_pytorch_defaults() -> None:
    paths = collector._fr_dump_paths({"HOME": "/home/u"}, 3, "/proc/1")
    assert paths == ["/tmp/nccl_trace_rank_3", "/home/u/.cache/torch/comm_lib_trace_rank_3"]
    assert collector._fr_dump_paths({"TORCH_FR_DUMP_TEMP_FILE": "/x/fr_", "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": "/y/"},
                                    3, "/proc/1") == ["/x/fr_3"]


def test_the_trigger_runs_only_when_asked_and_the_shell_fallback_says_not_run() -> None:
    assert FR_PROBE not in {p.id for p in select_probes(HANG_PROBES)}
    probes = [p for p in select_probes(HANG_PROBES + (FR_PROBE,)) if p.id in HANG_BASE + HANG_PROBES + (FR_PROBE,)]
    decoded = _decode_shell(subprocess.run(["sh", "-c", "H=; T=/dev/null; " + _shell_fallback(probes, 0)],
                                           capture_output=True, text=True, timeout=60).stdout)
    assert decoded["probes"][FR_PROBE]["error"] == "not run" and "python3" in decoded["probes"][FR_PROBE]["note"]
    assert decoded["probes"]["job_procs"]["error"] == "absent"  # the other builtins stay as they were
