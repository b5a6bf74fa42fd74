"""A stand-in PyTorch rank for `preflight hang --dump-fr` on the simulated fleet: it does what PyTorch's
flight-recorder pipe does, and nothing else (no GPU, no NCCL).

PyTorch (torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp `struct DumpPipe`, ProcessGroupNCCL.cpp
`HeartbeatMonitor::runLoop`, FlightRecorder.cpp `DebugInfoWriter`): when TORCH_NCCL_DEBUG_INFO_PIPE_FILE is set
and the trace buffer is on (TORCH_FR_BUFFER_SIZE / TORCH_NCCL_TRACE_BUFFER_SIZE > 0), the default process group's
heartbeat-monitor thread unlinks and mkfifo()s `<stem><global rank>.pipe` (mode 0666), opens it
O_RDONLY|O_NONBLOCK, and each poll (TORCH_NCCL_COORD_CHECK_MILSEC, default 1000 ms, with dump-on-timeout on; else
TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC) reads up to 128 bytes: any byte read triggers one dump, written by truncating
and writing `<TORCH_FR_DUMP_TEMP_FILE | TORCH_NCCL_DEBUG_INFO_TEMP_FILE | /tmp/nccl_trace_rank_><global rank>`.
Training goes on.

The dump written is a recorded one: `--dump FILE` names a text dump (the PyTorch tutorial's unpickled example,
or a per-rank file derived from it whose header says `change:`), turned back into the dict and pickled
(protocol 2, as PyTorch's pickler writes). Paths from the environment are node paths: `--host-root` is the
simulated node's root, as PREFLIGHT_HOST_ROOT is for the collector.

    python -m preflight.sim.fr_job --dump rank2.txt --host-root NODE/hostroot trainFR.py
"""

from __future__ import annotations

import argparse
import errno
import os
import pickle
import sys
import time
from pathlib import Path
from typing import Any

from preflight.hang.flight_recorder import literal_obj
from preflight.parse.common import Unparseable
from preflight.sim.profile import PROFILES, _body

FR_PROFILE = "fr-never-joined"  # the profile folder holding the derived per-rank dumps


def recorded_dump(path: Path) -> bytes:
    """The pickle of a text dump (header up to the first blank line left out)."""
    obj = literal_obj(_body(path))
    if isinstance(obj, Unparseable) or not isinstance(obj, dict):
        raise ValueError(f"{path}: not a flight-recorder dump: {obj}")
    return pickle.dumps(obj, protocol=2)


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on", "y")


def poll_interval_s(env: dict[str, str]) -> float:
    """HeartbeatMonitor::runLoop's wait between pipe reads."""
    if _truthy(env.get("TORCH_NCCL_DUMP_ON_TIMEOUT")):
        return int(env.get("TORCH_NCCL_COORD_CHECK_MILSEC") or 1000) / 1000.0
    return float(env.get("TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC") or 480)


def _node(path: str, root: str) -> Path:
    return Path(root) / path.lstrip("/") if root and path.startswith("/") else Path(path)


def open_pipe(env: dict[str, str], rank: int, root: str) -> int | None:
    """DumpPipe's constructor: None when the pipe is not asked for or the trace buffer is off."""
    stem = env.get("TORCH_NCCL_DEBUG_INFO_PIPE_FILE") or ""
    size = int(env.get("TORCH_FR_BUFFER_SIZE") or env.get("TORCH_NCCL_TRACE_BUFFER_SIZE") or 0)
    if not stem or size <= 0:
        return None
    path = _node(f"{stem}{rank}.pipe", root)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    os.mkfifo(path, 0o666)
    return os.open(path, os.O_RDONLY | os.O_NONBLOCK)


def should_dump(fd: int) -> bool:
    """DumpPipe::shouldDump: a non-blocking read of up to 128 bytes; anything read means dump."""
    try:
        return len(os.read(fd, 128)) > 0
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EINTR):
            return False
        raise


def write_dump(env: dict[str, str], rank: int, root: str, data: bytes) -> Path:
    """DebugInfoWriter::write: truncate and write the file (not atomic, as PyTorch's std::ofstream is not)."""
    prefix = env.get("TORCH_FR_DUMP_TEMP_FILE") or env.get("TORCH_NCCL_DEBUG_INFO_TEMP_FILE") or "/tmp/nccl_trace_rank_"
    path = _node(f"{prefix}{rank}", root)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="preflight.sim.fr_job")
    ap.add_argument("--dump", required=True, help="text dump to write when triggered (a recording or derived from one)")
    ap.add_argument("--host-root", default="", help="the simulated node's root: node paths live under it")
    ap.add_argument("--max-dumps", type=int, default=100, help="stop answering after this many dumps (bounded)")
    ap.add_argument("name", nargs="*", help="ignored: what the job's command line looks like (--job-pattern)")
    args = ap.parse_args(argv)
    env = dict(os.environ)
    rank = int(env["RANK"])
    data = recorded_dump(Path(args.dump))
    fd = open_pipe(env, rank, args.host_root)
    interval = poll_interval_s(env)
    dumps = 0
    while True:  # a rank runs until it is killed (SimFleet.stop kills it by PID)
        time.sleep(interval)
        if fd is not None and dumps < args.max_dumps and should_dump(fd):
            write_dump(env, rank, args.host_root, data)
            dumps += 1


def rank_env(rank: int, world: int, local: int, pipe_stem: str = "/tmp/preflight-fr/pipe_",
             dump_prefix: str = "/tmp/preflight-fr/nccl_trace_rank_", **extra: str) -> dict[str, str]:
    """The environment of one stand-in rank, as torchrun and the job's launcher would set it."""
    return {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": str(world), "TORCH_NCCL_TRACE_BUFFER_SIZE": "2000",
            "TORCH_NCCL_DUMP_ON_TIMEOUT": "1", "TORCH_NCCL_COORD_CHECK_MILSEC": "100",
            "TORCH_NCCL_DEBUG_INFO_PIPE_FILE": pipe_stem, "TORCH_NCCL_DEBUG_INFO_TEMP_FILE": dump_prefix, **extra}


def start_rank(fleet: Any, node: str, rank: int, world: int, local: int, *, dump: Path | None = None,
               tag: str = "trainFR.py", **env: str) -> int:
    """Start one stand-in rank on a SimFleet node (its PID: the fleet stops it). `dump` defaults to the
    fr-never-joined profile's file for this rank."""
    dump = dump or PROFILES / FR_PROFILE / f"fr-rank{rank}.txt"
    argv = [sys.executable, "-m", "preflight.sim.fr_job", "--dump", str(dump), "--host-root", str(fleet.host_root(node)), tag]
    pid: int = fleet.start_job(node, argv, rank_env(rank, world, local, **env))
    return pid


if __name__ == "__main__":
    raise SystemExit(main())
