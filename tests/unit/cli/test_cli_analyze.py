"""`preflight analyze` end to end: files in, the culprit first, JSON out, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.hang import scenarios

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("name", ["xid", "rank_stopped", "interface_mismatch"])
def test_generated_scenarios_name_their_culprit_first(tmp_path, name) -> None:
    sc = scenarios.build(name)
    sc.write(tmp_path)
    proc = run("analyze", str(tmp_path), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    first = doc["causes"][0]
    assert doc["schema"] == "preflight-hang"
    assert first["node"] == sc.culprit_node
    if sc.culprit_rank is not None:
        assert first["rank"] == sc.culprit_rank


def test_console_verdict_on_the_xid_scenario(tmp_path) -> None:
    scenarios.build("xid").write(tmp_path)
    proc = run("analyze", str(tmp_path), "--no-color")
    assert "CULPRIT" in proc.stdout and "Xid 79" in proc.stdout
    assert "0000:ab:00" in proc.stdout  # printed as text (no emoji shortcodes)


def test_a_real_watchdog_log_is_read(tmp_path) -> None:
    real = CORPUS / "nccl_logs" / "pytorch-watchdog-timeout-allreduce-line-numbered.txt"
    proc = run("analyze", str(real), "--json", "-")
    doc = json.loads(proc.stdout)
    assert doc["files"][0]["kinds"] and "watchdog" in doc["files"][0]["kinds"]


def test_missing_inputs_are_a_clear_error(tmp_path) -> None:
    proc = run("analyze", str(tmp_path / "nope.log"))
    assert proc.returncode == 3 and "not found" in proc.stderr
    (tmp_path / "notes.txt").write_text("nothing to see\n")
    proc = run("analyze", str(tmp_path / "notes.txt"))
    assert proc.returncode == 2 and "no likely cause" in proc.stdout
