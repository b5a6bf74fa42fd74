"""Stopping processes we started, by PID, with everything below them: read from /proc (sshd's per-connection
children, their commands), SIGCONT before SIGTERM (a stopped process cannot act on it), SIGKILL for what outlives it.
Shared by SimFleet (sshd per node) and sim/slurm.py (munged, slurmctld, slurmd)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path


def descendants(pid: int) -> list[int]:
    """Every live process below `pid` (sshd's per-connection children and their commands), from /proc."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return []
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1 and fields[1].isdigit():
            children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo and len(found) < 10000:  # bounded
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    """Running (a zombie or a dead entry is not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def send_signal(pids: list[int], sig: int) -> None:
    """Signal each PID, ignoring those already gone."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def stop_process_tree(proc: subprocess.Popen[bytes] | None, *, term_children: bool) -> None:
    """Stop a daemon we started and the processes below it, by PID: SIGCONT (a SIGSTOPped process cannot
    act on SIGTERM), SIGTERM (to the children too when `term_children`), then SIGKILL what outlives it."""
    if proc is None:
        return
    below = descendants(proc.pid) if proc.poll() is None else []
    if proc.poll() is None:
        send_signal([proc.pid, *below], signal.SIGCONT)
        send_signal([proc.pid, *below] if term_children else [proc.pid], signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    deadline = time.monotonic() + 3.0
    while any(alive(p) for p in below) and time.monotonic() < deadline:
        time.sleep(0.05)
    send_signal([p for p in below if alive(p)], signal.SIGKILL)
