"""Headless CI outputs end to end through the CLI: JUnit, Markdown summary, baseline drift and its exit code."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.cli import demo_bundle_path

XSD = next((Path(__file__).resolve().parents[2] / "fixtures" / "junit").glob("*.xsd"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *args], capture_output=True, text=True, timeout=120)


def test_junit_and_markdown_files_from_a_replay(tmp_path) -> None:
    xmlschema = pytest.importorskip("xmlschema")
    proc = run("replay", str(demo_bundle_path()), "--junit", str(tmp_path / "r.xml"), "--markdown", str(tmp_path / "s.md"), "-q")
    assert proc.returncode == 2, proc.stderr
    xml = (tmp_path / "r.xml").read_text()
    xmlschema.XMLSchema(str(XSD)).validate(xml)
    assert 'classname="preflight.versions.driver.consistent"' in xml and "535.129.03" in xml
    md = (tmp_path / "s.md").read_text()
    assert md.startswith("## preflight: ✖ FAIL (exit code 2)") and "gpu-04" in md


def _baseline(tmp_path: Path, edit) -> Path:
    doc = json.loads(run("replay", str(demo_bundle_path()), "--checks", "versions.cuda.consistent", "--json", "-").stdout)
    edit(doc)
    path = tmp_path / "good.json"
    path.write_text(json.dumps(doc))
    return path


def test_no_drift_keeps_the_runs_exit_code(tmp_path) -> None:
    good = _baseline(tmp_path, lambda d: None)
    proc = run("replay", str(demo_bundle_path()), "--checks", "versions.cuda.consistent", "--baseline", str(good))
    assert proc.returncode == 0 and "no drift from the baseline" in proc.stdout


def test_a_changed_version_is_drift_with_exit_4(tmp_path) -> None:
    def older_cuda(doc):
        f = next(f for n in doc["nodes"] if n["name"] == "gpu-01" for f in n["findings"] if f["check"] == "versions.cuda.consistent")
        f["observed"] = "12.4"

    good = _baseline(tmp_path, older_cuda)
    proc = run("replay", str(demo_bundle_path()), "--checks", "versions.cuda.consistent", "--baseline", str(good),
               "--markdown", str(tmp_path / "s.md"), "--no-color")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "12.4" in proc.stdout and "12.7" in proc.stdout and "gpu-01" in proc.stdout
    assert "Drift" in (tmp_path / "s.md").read_text()


def test_a_garbled_baseline_is_a_clear_error(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    proc = run("replay", str(demo_bundle_path()), "--baseline", str(bad))
    assert proc.returncode == 3 and str(bad) in proc.stderr


def test_timings_name_the_slowest_probe_and_node() -> None:
    from preflight.collect.bundle import load_bundle
    from preflight.report.timings import probe_timings

    rows = probe_timings(load_bundle(demo_bundle_path()))
    assert rows and rows[0].max_s >= rows[-1].max_s and rows[0].nodes == 4
    assert {r.probe for r in rows} >= {"smi_table", "topo", "nccl_allreduce"}
    proc = run("demo", "--timings", "--no-color")
    assert "slowest probes on the nodes" in proc.stdout and rows[0].probe in proc.stdout


def test_asking_for_a_file_output_or_policy_means_headless(monkeypatch) -> None:
    import sys as _sys

    from preflight.cli import build_parser, interactive

    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(_sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(_sys.stdout, "isatty", lambda: True)
    parse = build_parser().parse_args
    assert interactive(parse(["run", "-i", "inv.yaml"])) is True  # a person at a terminal gets the TUI
    for extra in (["--json", "r.json"], ["--junit", "j.xml"], ["--markdown", "s.md"], ["--baseline", "g.json"],
                  ["--fail-on", "warn"], ["--checks", "ib.*"], ["--timings"], ["--headless"]):
        assert interactive(parse(["run", "-i", "inv.yaml", *extra])) is False, extra
    monkeypatch.setenv("CI", "true")
    assert interactive(parse(["run", "-i", "inv.yaml"])) is False
