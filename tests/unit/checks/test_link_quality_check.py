"""ib.link_quality (`preflight run --mlxlink`) through the real engine on the recorded demo node with the mlxlink
probe's answer put in: real healthy recording passes, the derived degraded one fails with its numbers and sources,
not asked / no IB does not apply, no mlxlink installed is could-not-judge unless the operator accepted it."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.parse.common import strip_corpus_header
from preflight.results import Status

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "preflight" / "data" / "demo" / "bundle.json"
IB = ROOT / "tests" / "fixtures" / "corpus" / "ib"
HEALTHY = strip_corpus_header((IB / "mlxlink-json-m-c-cx7-400g-dr4-osfp-mft-4.34.1.txt").read_text())[1]
DEGRADED = strip_corpus_header((IB / "mlxlink-json-m-c-cx7-400g-degraded-derived.txt").read_text())[1]
FORUM = strip_corpus_header((IB / "mlxlink-c-connectx4-100gbe-rs-fec-forum-blank-lines.txt").read_text())[1]


def _ports(**ports: str) -> dict:
    doc = {k.replace("__", "/"): {"rc": 0, "stdout": v, "stderr": "", "error": None} for k, v in ports.items()}
    return {"rc": 0, "stdout": json.dumps({"ports": doc}), "stderr": "", "error": None, "kind": "builtin"}


def _findings(probe: dict | None, accept: dict | None = None):
    bundle = copy.deepcopy(load_bundle(DEMO))
    raw = bundle.nodes[0]
    if probe is not None:
        raw.collector["probes"]["mlxlink"] = probe
    if accept:
        raw.expect = {**raw.expect, "accept": accept}
        raw.expect_sources = {**raw.expect_sources, "accept": "test inventory"}
    report, _ = judge(bundle)
    node = report.node(raw.name)
    assert node is not None
    return [f for f in node.findings if f.check == "ib.link_quality"]


def test_healthy_recording_passes_and_degraded_fails_with_numbers_and_sources() -> None:
    found = {f.subject: f for f in _findings(_ports(mlx5_0__1=HEALTHY, mlx5_1__1=DEGRADED))}
    assert found["mlx5_0/1"].status == Status.PASS
    assert "effective BER 0, raw BER 5E-10" in found["mlx5_0/1"].observed
    bad = found["mlx5_1/1"]
    assert bad.status == Status.FAIL and bad.msg.startswith("mlx5_1/1: effective (post-FEC) BER 4E-11 > 1E-12")
    assert "module temperature 83 C >= its high threshold 80 C" in bad.msg and "6 link downs" in bad.msg
    assert "ibdiagnet" in bad.expected_source and "000286734" in bad.expected_source
    assert "check cooling" in bad.hint and "reseat" in bad.hint


def test_a_partial_output_is_could_not_judge_not_pass() -> None:
    (f,) = _findings(_ports(mlx5_0__1=FORUM))  # no Module Info, no link-down lines: not proven healthy
    assert f.status == Status.ERROR and "not seen" in f.msg and "Link Down Counter" in f.msg


@pytest.mark.parametrize(("probe", "status"), [
    (None, Status.SKIP),  # --mlxlink not given
    ({"rc": 0, "stdout": json.dumps({"ports": {}, "no_ib": True}), "stderr": "", "error": None}, Status.SKIP),
    ({"rc": None, "stdout": "", "stderr": "", "error": "absent"}, Status.ERROR),  # not installed: a gap
    ({"rc": None, "stdout": "", "stderr": "", "error": "timeout"}, Status.ERROR),
])
def test_absence_of_evidence(probe: dict | None, status: Status) -> None:
    found = _findings(probe)
    assert found and all(f.status == status for f in found), found


def test_no_mlxlink_is_accepted_only_when_the_operator_says_so() -> None:
    absent = {"rc": None, "stdout": "", "stderr": "", "error": "absent"}
    found = _findings(absent, accept={"ib.link_quality": "no MFT on this fleet"})
    assert found and all(f.status == Status.ACCEPTED for f in found), found
    bad = _findings(_ports(mlx5_1__1=DEGRADED), accept={"ib.link_quality": "no MFT on this fleet"})
    assert [f.status for f in bad] == [Status.FAIL]  # accepting never hides a verdict
