"""A second simulated fleet of real A100 PCIe recordings: ECC and clock-throttle faults on the right GPU."""

from __future__ import annotations

import pytest
from conftest import judge_sim_fleet

FLEET = [("a-01", "a100-pcie-x2"), ("a-02", "a100-pcie-x2"), ("a-03", "a100-ecc-error"), ("a-04", "a100-hw-slowdown")]


@pytest.fixture(scope="module")
def report(sim_fleet_factory, tmp_path_factory):
    return judge_sim_fleet(sim_fleet_factory, tmp_path_factory.mktemp("inv"), FLEET)[0]


# What the A100 machine's recordings do not show (no -q, topo -m, nvlink -e, ibstat, lspci, dmesg, os-release,
# meminfo, /sys/class/net were published): those checks could not judge, on every node, and none passes.
UNRECORDED = {
    "gpu.row_remap", "gpu.temperature", "memory.host.total", "memory.hugepages", "network.mtu.consistent",
    "network.nccl_interfaces", "nvlink.errors", "nvlink.fabric_state", "nvlink.fabricmanager", "pcie.acs",
    "pcie.gpu.link", "topology.consistent", "topology.gpu_nic_affinity", "topology.p2p", "topology.read",
    "versions.nccl.consistent", "versions.os.consistent", "versions.vbios.consistent",
}


def _failed(report):
    return {(n.name, f.check, f.subject) for n in report.nodes for f in n.findings if f.status.value == "fail"}


def test_faults_on_the_right_gpu_and_nothing_else(report) -> None:
    assert _failed(report) == {("a-03", "gpu.ecc.uncorrectable", "GPU1"), ("a-04", "gpu.clocks.throttle", "GPU0")}
    for n in report.nodes:
        assert {f.check for f in n.findings if f.status.value == "error"} == UNRECORDED, n.name
        assert n.status.value != "pass"  # what was not recorded is not health
        assert [f.check for f in n.findings if f.status.value == "accepted"] == ["gpu.xid"]  # the sim says so once
    assert {n.name: n.status.value for n in report.nodes} == {"a-01": "error", "a-02": "error", "a-03": "fail",
                                                               "a-04": "fail"}


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
