"""Pass means proven: a node passes only on evidence, and what preflight cannot see never reads healthy.

The invariant test degrades every probe of every node in the recorded demo bundle (real outputs of
8x H100 machines, see preflight/sim/profiles) one at a time: emptied, truncated, timed out, absent,
failing. The degraded node may still pass only if it judged everything the original judged.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from preflight.collect.bundle import Bundle, NodeRaw, load_bundle
from preflight.engine import judge
from preflight.plan.judged_fleet import exclusions
from preflight.report.json_report import report_dict
from preflight.report.junit import junit_xml
from preflight.report.markdown_report import markdown_summary
from preflight.results import RunReport, Status, exit_code

DEMO = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo" / "bundle.json"
SMI_PROBES = ("smi_query", "smi_table", "smi_version", "smi_q", "smi_q_ecc", "smi_q_perf", "topo", "nvlink_status",
              "p2p_read", "nvlink_errors")
# The one gap of the recording itself, accepted by the demo's inventory the way an operator would: no
# published clean `dmesg` of an 8x H100 node went into the simulated fleet (preflight/sim/record_demo.py).
RECORDING_GAPS = {"gpu.xid"}


def _demo() -> Bundle:
    return load_bundle(DEMO)


def _set_probe(raw: NodeRaw, pid: str, **fields: object) -> None:
    probe = raw.collector["probes"][pid]
    probe.update(fields)


def _judged(report: RunReport, name: str) -> set[tuple[str, str | None]]:
    node = report.node(name)
    assert node is not None
    return {(f.check, f.subject) for f in node.findings if f.status not in (Status.SKIP, Status.ACCEPTED, Status.ERROR)}


def test_healthy_recorded_nodes_pass_with_full_coverage_and_the_accepted_gap_named() -> None:
    report, _ = judge(_demo())
    for name in ("gpu-01", "gpu-02"):
        n = report.node(name)
        assert n is not None and n.status == Status.PASS, (name, n.reason if n else None)
        cov = n.coverage
        assert cov.judged + cov.accepted == cov.applicable and cov.unknown == 0 and cov.accepted == 1
        accepted = [f for f in n.findings if f.status == Status.ACCEPTED]
        assert {f.check for f in accepted} == RECORDING_GAPS
        assert all(f.expected_source == "inventory:demo.yaml defaults" for f in accepted)  # who said so
        assert "accepted unjudged: gpu.xid" in n.reason


def test_without_the_acceptance_the_gap_is_unknown_and_the_node_is_not_pass() -> None:
    bundle = _demo()
    for raw in bundle.nodes:
        raw.expect = {k: v for k, v in raw.expect.items() if k != "accept"}
    report, _ = judge(bundle)
    node = report.node("gpu-01")
    assert node is not None and node.status == Status.ERROR
    assert {f.check for f in node.findings if f.status == Status.ERROR} == RECORDING_GAPS
    assert node.reason.startswith("gpu.xid: no xid facts: dmesg not found on the node")
    assert exit_code(report) == 2


def _mutations(probe: dict) -> list[tuple[str, dict]]:
    out = probe.get("stdout") or ""
    return [
        ("emptied", {"stdout": "", "rc": 0, "error": None}),
        ("truncated", {"stdout": out[: len(out) // 2], "rc": 0, "error": None}),
        ("cut to one line", {"stdout": out.split("\n", 1)[0], "rc": 0, "error": None}),
        ("timed out", {"stdout": "", "rc": None, "error": "timeout"}),
        ("absent", {"stdout": "", "rc": None, "error": "absent"}),
        ("failed", {"stdout": "", "stderr": "Unable to determine the device handle: Unknown Error", "rc": 9,
                    "error": None}),
    ]


def _cases() -> list[tuple[str, str, str]]:
    bundle = _demo()
    cases = []
    for raw in bundle.nodes:
        for pid, probe in sorted(raw.collector["probes"].items()):
            if probe.get("error") or not (probe.get("stdout") or "").strip():
                continue
            for what, _ in _mutations(probe):
                cases.append((raw.name, pid, what))
    return cases


@pytest.fixture(scope="module")
def baseline() -> tuple[Bundle, RunReport]:
    bundle = _demo()
    return bundle, judge(bundle)[0]


@pytest.mark.parametrize("name,pid,what", _cases())
def test_degrading_any_recorded_probe_never_passes_on_less_evidence(
        baseline: tuple[Bundle, RunReport], name: str, pid: str, what: str) -> None:
    bundle, before = baseline
    mutated = copy.deepcopy(bundle)
    raw = next(r for r in mutated.nodes if r.name == name)
    probe = raw.collector["probes"][pid]
    _set_probe(raw, pid, **dict(_mutations(probe))[what])
    after, _ = judge(mutated)
    node = after.node(name)
    assert node is not None
    if node.status == Status.PASS:
        lost = _judged(before, name) - _judged(after, name)
        assert not lost, f"{name} passes with {pid} {what}, yet no longer judges {sorted(lost, key=str)[:6]}"


def test_a_node_whose_nvidia_smi_hangs_is_not_pass_and_says_why() -> None:
    bundle = _demo()
    raw = bundle.nodes[0]
    for pid in SMI_PROBES:
        _set_probe(raw, pid, stdout="", rc=None, error="timeout")
    report, _ = judge(bundle)
    node = report.node(raw.name)
    assert node is not None and node.status == Status.FAIL
    assert node.reason.startswith("gpu.driver.responsive: nvidia-smi did not answer within its timeout")
    assert node.coverage.unknown >= 10  # every GPU check says it could not judge
    assert exit_code(report) == 2
    assert raw.name in exclusions(report) and exclusions(report)[raw.name] == node.reason


def test_a_node_without_a_driver_fails_with_one_plain_reason_unless_declared_gpu_less() -> None:
    bundle = _demo()
    raw = bundle.nodes[0]
    for pid in (*SMI_PROBES, "driver_version_file"):
        _set_probe(raw, pid, stdout="", rc=None, error="absent", kind="cmd", argv=["nvidia-smi"])
    report, _ = judge(bundle)
    node = report.node(raw.name)
    assert node is not None and node.status == Status.FAIL
    assert node.reason.startswith("gpu.driver.responsive: no NVIDIA driver or nvidia-smi on this node")

    raw.expect = {**raw.expect, "gpus_per_node": 0}
    raw.expect_sources = {**raw.expect_sources, "gpus_per_node": "inventory:cpu.yaml host login-01"}
    report, _ = judge(bundle)
    node = report.node(raw.name)
    assert node is not None
    gpu_findings = [f for f in node.findings if f.check.startswith(("gpu.", "nvlink.", "topology."))
                    and f.check not in ("gpu.count",)]
    assert gpu_findings and all(f.status == Status.SKIP for f in gpu_findings), \
        [(f.check, f.status.value, f.msg) for f in gpu_findings if f.status != Status.SKIP]
    assert any("gpus_per_node: 0" in f.msg for f in gpu_findings)


def test_one_verdict_and_reason_on_every_surface() -> None:
    report, _ = judge(_demo())
    doc = report_dict(report, source={"kind": "demo"})
    md = markdown_summary(report)
    xml = junit_xml(report)
    excluded = exclusions(report)
    for n in report.nodes:
        js = next(x for x in doc["nodes"] if x["name"] == n.name)
        assert js["status"] == n.status.value and js["reason"] == n.reason
        assert js["coverage"] == n.coverage.to_dict()
        if n.status != Status.PASS:
            assert n.name in excluded and excluded[n.name] == n.reason
            head = n.reason[:60].replace("|", "\\|")
            assert head in md
            assert f'message="{n.reason[:40]}' in xml.replace("&gt;", ">").replace("&lt;", "<").replace("&quot;", '"')
    assert json.loads(json.dumps(doc))["summary"]["status"] == "fail"
