"""`--level standard` on real sshd nodes whose active-test tools print real recordings (DCGM, nvbandwidth,
ib_write_bw; preflight/sim/profiles/h100-active and its faults, each one labelled change).

Every planted fault is found on the right node and GPU/HCA, nothing on the healthy nodes, busy GPUs stop
the tests (named, never a pass), and a hung DCGM costs no more than the budget. Nothing is mocked.
"""

from __future__ import annotations

import time

import pytest

from preflight.engine import judge
from preflight.session import LiveSession
from preflight.session.request import RunArgs, live_request

NODES = [
    ("act-01", "h100-active"), ("act-02", "h100-active"),
    ("dcgm-pcie", "dcgm-pcie-fail"), ("h2d-half", "nvbw-h2d-half"), ("d2d-slow", "nvbw-d2d-slow"),
    ("ib-low", "ib-loopback-low"), ("busy", "gpu-busy"),
]
EXPECT = {"ib_ports": 2, "accept": {"ib_loopback": "no published ib_write_bw loopback of an NDR 400 port to replay"}}
ACTIVE_CHECKS = ("gpu.dcgm.diag", "pcie.copy_bandwidth", "nvlink.copy_bandwidth", "ib.loopback_bw",
                 "nccl.allreduce.busbw")


def _run(fleet, inv, **kw):
    req = live_request(RunArgs(inventory=str(inv), known_hosts=(), **kw))
    session = LiveSession(req)
    t0 = time.monotonic()
    bundle = session.collect()
    elapsed = time.monotonic() - t0
    report, _ = judge(bundle, cache=session.facts)
    return report, elapsed


@pytest.fixture(scope="module")
def standard(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    inv = fleet.write_inventory(tmp_path_factory.mktemp("inv") / "sim.yaml", expectations=EXPECT,
                                thresholds=fleet.sandbox_thresholds())
    return _run(fleet, inv, level="standard")


def _bad(report, name):
    node = report.node(name)
    assert node is not None
    return {(f.check, f.subject) for f in node.findings if f.status.value in ("fail", "error")}


def test_healthy_nodes_pass_every_active_test(standard) -> None:
    report, _ = standard
    for name in ("act-01", "act-02"):
        node = report.node(name)
        assert node is not None and node.status.value == "pass", (name, node.reason, _bad(report, name))
        judged = {f.check for f in node.findings if f.status.value == "pass"}
        assert {"gpu.dcgm.diag", "pcie.copy_bandwidth", "nvlink.copy_bandwidth", "nccl.allreduce.busbw"} <= judged
        accepted = {f.check for f in node.findings if f.status.value == "accepted"}
        assert "ib.loopback_bw" in accepted  # no NDR loopback recording: said once in the inventory


def test_each_planted_fault_is_found_on_its_node_and_part(standard) -> None:
    report, _ = standard
    assert _bad(report, "dcgm-pcie") == {("gpu.dcgm.diag", "PCIe GPU 3")}
    dcgm = next(f for f in report.node("dcgm-pcie").findings if f.check == "gpu.dcgm.diag")
    assert dcgm.msg.startswith("GPU 3: PCIe failed: GPU 3 Bandwidth of GPU 3 in direction host to device of 12.31")
    assert _bad(report, "h2d-half") == {("pcie.copy_bandwidth", "GPU3 host->device")}
    assert _bad(report, "d2d-slow") == {("nvlink.copy_bandwidth", None)}
    slow = next(f for f in report.node("d2d-slow").findings if f.check == "nvlink.copy_bandwidth")
    assert "GPU5" in slow.msg and "14 GPU pairs below 335" in slow.msg
    assert _bad(report, "ib-low") == {("ib.loopback_bw", "mlx5_0")}
    low = next(f for f in report.node("ib-low").findings if f.check == "ib.loopback_bw" and f.subject == "mlx5_0")
    assert low.observed.startswith("192.5 Gb/s") and "380" in (low.expected or "")


def test_busy_gpus_stop_the_active_tests_and_say_who_holds_them(standard) -> None:
    report, _ = standard
    node = report.node("busy")
    assert node is not None and node.status.value in ("error", "fail")
    stopped = [f for f in node.findings if f.check in ACTIVE_CHECKS and f.status.value == "error"]
    assert {f.check for f in stopped} >= {"gpu.dcgm.diag", "pcie.copy_bandwidth", "nccl.allreduce.busbw"}
    assert all("GPUs busy: 123456 python3" in f.msg for f in stopped), [f.msg for f in stopped]


def test_a_hung_dcgm_costs_no_more_than_its_budget(sim_fleet_factory, tmp_path_factory) -> None:
    fleet = sim_fleet_factory([("dcgm-hung", "dcgm-hung")])
    inv = fleet.write_inventory(tmp_path_factory.mktemp("inv") / "hung.yaml", thresholds=fleet.sandbox_thresholds())
    report, elapsed = _run(fleet, inv, level="quick", budget=20.0)
    node = report.node("dcgm-hung")
    assert node is not None and node.outcome == "ok"
    dcgm = next(f for f in node.findings if f.check == "gpu.dcgm.diag")
    assert dcgm.status.value == "error" and "dcgmi timed out" in dcgm.msg
    assert elapsed < 20 + 25, elapsed  # the budget, plus the state probes and the connection
    assert node.status.value != "pass"
