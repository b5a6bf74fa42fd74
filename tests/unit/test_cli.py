"""The command line on recorded bundles: exit codes 0/1/2/3, JSON to stdout, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.cli import demo_bundle_path, main
from preflight.collect.bundle import load_bundle, save_bundle

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "preflight" / "report" / "schema.json").read_text())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *args], capture_output=True, text=True, timeout=120)


def test_demo_reports_the_recorded_faults() -> None:
    proc = run("demo", "--no-color")
    assert proc.returncode == 0, proc.stderr  # the demo ran; its recording's verdict is in the report
    assert run("demo", "--strict", "-q").returncode == 2
    assert "RECORDING" in proc.stdout
    assert "versions.driver.consistent · gpu-03" in proc.stdout
    assert "nvlink.links.active · gpu-04 · GPU5" in proc.stdout


def test_demo_json_to_stdout_validates() -> None:
    proc = run("demo", "--json", "-")
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["source"]["kind"] == "demo" and doc["summary"]["exit_code"] == 2
    fails = {(f["node"], f["check"]) for n in doc["nodes"] for f in n["findings"] if f["status"] == "fail"}
    # gpu-04's degraded NVLink also shows in its topology matrix (NV16 for GPU5), so its topology differs too
    assert fails == {("gpu-03", "versions.driver.consistent"), ("gpu-04", "nvlink.links.active"),
                     ("gpu-04", "topology.consistent")}


def test_exit_zero_when_only_healthy_nodes(tmp_path) -> None:
    bundle = load_bundle(demo_bundle_path())
    bundle.nodes = [n for n in bundle.nodes if n.name in ("gpu-01", "gpu-02")]
    save_bundle(bundle, tmp_path / "b")
    assert main(["replay", str(tmp_path / "b"), "-q"]) == 0


def test_fail_on_warn_and_check_selection(tmp_path) -> None:
    # selecting only the versions checks on the mismatched node's fleet still fails; skipping them passes
    assert main(["demo", "--strict", "-q", "--checks", "versions.*"]) == 2
    assert main(["demo", "--strict", "-q", "--skip", "versions.driver.*,nvlink,topology.consistent"]) == 0
    assert main(["demo", "--strict", "-q", "--skip", "versions.driver.*,nvlink,topology.consistent", "--fail-on", "warn"]) == 0


def test_bad_inputs_exit_3(tmp_path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("groups:\n  a:\n    hosts:\n      n1: {porrt: 22}\n")
    proc = run("run", "-i", str(bad))
    assert proc.returncode == 3
    assert "inv.yaml:4" in proc.stderr and "porrt" in proc.stderr
    assert run("replay", str(tmp_path / "missing")).returncode == 3
    assert run("demo", "--checks", "nosuch.*").returncode == 3


def test_unreachable_only_fleet_exits_3(tmp_path) -> None:
    # nothing listens on port 1 of loopback: the node is refused, no node reachable -> could not run
    proc = run("run", "-H", "127.0.0.1:1", "--connect-timeout", "2", "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["nodes"][0]["outcome"] == "refused"


def test_local_transport_runs_the_collector(tmp_path) -> None:
    proc = run("run", "-H", "local", "--json", str(tmp_path / "r.json"), "-q")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["nodes"][0]["outcome"] == "ok", proc.stderr
    jsonschema.validate(doc, SCHEMA)
