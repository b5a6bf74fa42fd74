"""A second simulated fleet of real A100 PCIe recordings: ECC and clock-throttle faults on the right GPU."""

from __future__ import annotations

import pytest

from conftest import judge_sim_fleet

FLEET = [("a-01", "a100-pcie-x2"), ("a-02", "a100-pcie-x2"), ("a-03", "a100-ecc-error"), ("a-04", "a100-hw-slowdown")]


@pytest.fixture(scope="module")
def report(sim_fleet_factory, tmp_path_factory):
    return judge_sim_fleet(sim_fleet_factory, tmp_path_factory.mktemp("inv"), FLEET)[0]


def _bad(report):
    return {(n.name, f.check, f.subject) for n in report.nodes for f in n.findings if f.status.value in ("fail", "error")}


def test_faults_on_the_right_gpu_and_nothing_else(report) -> None:
    assert _bad(report) == {("a-03", "gpu.ecc.uncorrectable", "GPU1"), ("a-04", "gpu.clocks.throttle", "GPU0")}


def test_healthy_a100_is_judged_from_real_recordings(report) -> None:
    node = next(n for n in report.nodes if n.name == "a-01")
    passed = {(f.check, f.subject) for f in node.findings if f.status.value == "pass"}
    assert ("gpu.ecc.uncorrectable", "GPU0") in passed and ("gpu.clocks.throttle", "GPU1") in passed
    nvlink = next(f for f in node.findings if f.check == "nvlink.links.active")
    assert nvlink.status.value == "pass" and "PCIe only" in nvlink.msg
    versions = next(f for f in node.findings if f.check == "versions.driver.consistent")
    assert versions.observed == "555.42.02"


def test_ecc_finding_carries_its_evidence(report) -> None:
    node = next(n for n in report.nodes if n.name == "a-03")
    f = next(f for f in node.findings if f.check == "gpu.ecc.uncorrectable" and f.status.value == "fail")
    assert f.observed.startswith("volatile 2")
    assert any("uncorrectable 2" in e for e in f.evidence)
