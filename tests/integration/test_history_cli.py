"""The run history end to end through the real CLI (subprocesses, a real SQLite file): replay --record appends,
`preflight history` reads it back, a broken history never changes a run's exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from preflight.cli.common import demo_bundle_path


def _cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *argv], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


def test_replay_record_then_history(tmp_path: Path) -> None:
    hist = tmp_path / "h.sqlite"
    for _ in range(3):
        assert _cli("replay", str(demo_bundle_path()), "--record", "--history", str(hist), "-q").returncode == 2
    shown = _cli("history", "--history", str(hist), "--k", "3", "--n", "3")
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[0].startswith("repeat offenders") and lines[0].endswith(": 2")  # gpu-03, gpu-04 failed 3 of 3
    assert all(len(line) <= 80 for line in lines)
    assert any(line.startswith("  gpu-04: failed 3 of its last 3 runs") for line in lines)
    doc = json.loads(_cli("history", "gpu-01", "--history", str(hist), "--json", "-").stdout)
    (node,) = doc["nodes"]
    assert node["node"] == "gpu-01" and len(node["runs"]) == 3 and node["busbw_gbps"] == [479.72] * 3
    assert {o["node"] for o in doc["repeat_offenders"]} == {"gpu-03", "gpu-04"}


def test_replay_without_record_writes_nothing_and_default_is_xdg(tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "xdg")}
    assert _cli("replay", str(demo_bundle_path()), "-q", env=env).returncode == 2
    assert not (tmp_path / "xdg").exists()
    assert _cli("replay", str(demo_bundle_path()), "-q", "--record", env=env).returncode == 2
    assert (tmp_path / "xdg" / "preflight" / "history.sqlite").is_file()


def test_a_broken_history_is_one_warning_and_the_exit_code_stands(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"not sqlite " * 200)
    run = _cli("replay", str(demo_bundle_path()), "--record", "--history", str(bad), "-q")
    assert run.returncode == 2
    warned = [line for line in run.stderr.splitlines() if "history not written" in line]
    assert len(warned) == 1
    assert _cli("history", "--history", str(tmp_path / "none.sqlite")).returncode == 3
