"""The real `python -m preflight tui` in a real terminal (tmux), read back with capture-pane."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from preflight.cli import demo_bundle_path

ROOT = Path(__file__).resolve().parents[2]
TMUX = shutil.which("tmux")


def _capture(session: str) -> str:
    return subprocess.run([TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                          timeout=10).stdout


def _wait_for(session: str, needle: str, timeout: float) -> str:
    end = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < end:
        screen = _capture(session)
        if needle in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} did not appear within {timeout} s; screen was:\n{screen}")


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux; .ci/run installs it)")
def test_preflight_tui_in_tmux():
    session = f"preflight-tui-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color")
    env.pop("CI", None)
    cmd = f"{sys.executable} -m preflight tui {demo_bundle_path()}; echo PREFLIGHT_EXIT=$?; sleep 60"
    subprocess.run([TMUX, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", cmd], check=True, env=env,
                   cwd=ROOT, timeout=20)
    try:
        screen = _wait_for(session, "gpu-04", 60)
        screen = _wait_for(session, "✖ FAIL", 60)  # judged, not only listed
        lines = screen.splitlines()
        header = next(line for line in lines if " node " in line and " nvl " in line)
        assert header.split()[:4] == ["node", "state", "ver", "gpu"]
        row = next(line for line in lines if line.strip().startswith("gpu-04"))
        assert row.split()[:3] == ["gpu-04", "✖", "FAIL"] and row.count("FAIL") == 3  # state, nvl, topo
        assert "✔ 2 passed" in screen and "✖ 2 failed" in screen
        screen = _wait_for(session, "TP ≤ 8", 30)  # the parallelism envelope, on the first screen
        assert "parallelism envelope" in screen and "healthy 2 of 4 nodes" in screen
        assert "fabric estimated" in screen and "PP estimated" in screen and "p full plan" in screen
        subprocess.run([TMUX, "send-keys", "-t", session, "q"], check=True, timeout=10)
        after = _wait_for(session, "PREFLIGHT_EXIT=", 30)
        assert "PREFLIGHT_EXIT=2" in after  # the recording has failures
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True, timeout=10)


@pytest.mark.skipif(TMUX is None, reason="tmux is not installed (apt-get install tmux; .ci/run installs it)")
def test_envelope_with_a_model_at_80x24_in_tmux():
    """80×24, --model: the envelope lists the top safe layouts, and the footer is whole (ends with `p plan`)."""
    session = f"preflight-tui-{uuid.uuid4().hex[:8]}"
    env = dict(os.environ, PYTHONPATH=str(ROOT), TERM="xterm-256color")
    env.pop("CI", None)
    cmd = (f"{sys.executable} -m preflight tui {demo_bundle_path()} --model meta-llama/Llama-3.1-70B; "
           "echo PREFLIGHT_EXIT=$?; sleep 60")
    subprocess.run([TMUX, "new-session", "-d", "-s", session, "-x", "80", "-y", "24", cmd], check=True, env=env,
                   cwd=ROOT, timeout=20)
    try:
        screen = _wait_for(session, "✔ TP8", 90)
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines)
        assert any("model meta-llama/Llama-3.1-70B" in line for line in lines)
        layouts = [line for line in lines if "✔ TP" in line]
        assert 1 <= len(layouts) <= 3 and all("GPUs on" in line and "seqs" in line for line in layouts)
        assert any("TP ≤ 8" in line for line in lines)
        assert lines[-1].rstrip().endswith("p plan")  # the footer is not cut
        subprocess.run([TMUX, "send-keys", "-t", session, "q"], check=True, timeout=10)
        assert "PREFLIGHT_EXIT=2" in _wait_for(session, "PREFLIGHT_EXIT=", 30)
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], capture_output=True, timeout=10)
