"""Host lists, suggested actions and Slurm drain/resume plans, on the demo recording and hand-made reports."""

from __future__ import annotations

import pytest

from preflight.actions.hostlist import render_excluded, render_hosts, split
from preflight.actions.slurm import (
    REASON_MAX,
    NodeState,
    drain_reason,
    parse_show_node,
    plan_drain,
    plan_resume,
    sanitise,
)
from preflight.actions.suggest import ACTIONS, CHECK_ACTIONS, node_action, suggestion
from preflight.cli.common import demo_bundle_path
from preflight.collect.bundle import load_bundle
from preflight.engine import all_checks, judge, select_checks
from preflight.facts import load_xid_catalog
from preflight.plan.judged_fleet import exclusions
from preflight.results import Finding, NodeReport, RunReport, Status


@pytest.fixture(scope="module")
def demo():
    report, facts = judge(load_bundle(demo_bundle_path()), select_checks(None, None))
    return report, {n.name: len(n.gpus or ()) for n in facts.reachable}


def _node(name, *findings, outcome="ok", message=""):
    return NodeReport(name=name, address=name, outcome=outcome, message=message, duration_s=0.1, findings=findings)


def _f(check, status, node="n1", subject=None, observed=None, msg="m"):
    return Finding(check=check, node=node, status=status, subject=subject, observed=observed, msg=msg)


def test_host_lists_are_the_planners_set(demo):
    report, gpus = demo
    hosts = split(report, gpus)
    assert {n for n, _ in hosts.excluded} == set(exclusions(report))
    assert {n for n, _ in hosts.passed} | {n for n, _ in hosts.excluded} == {n.name for n in report.nodes}
    assert render_hosts(hosts, "mpi") == "gpu-01 slots=8\ngpu-02 slots=8\n"
    assert render_hosts(hosts, "slurm") == "gpu-[01-02]\n"
    assert render_hosts(hosts, "plain") == "gpu-01\ngpu-02\n"
    tr = render_hosts(hosts, "torchrun")
    assert "NNODES=2\n" in tr and "NPROC_PER_NODE=8\n" in tr and "MASTER_ADDR=gpu-01\n" in tr
    lines = render_excluded(hosts, {n.name: node_action(n) for n in report.nodes}).splitlines()
    assert [ln.split("\t")[0] for ln in lines] == ["gpu-03", "gpu-04"]
    assert lines[1].split("\t")[1] == "reset_gpu"  # NVLinks down: NVIDIA WORKFLOW_NVLINK_ERR
    assert lines[1].split("\t")[2] == report.node("gpu-04").reason


def test_slurm_list_compresses_and_empty_list_is_empty():
    report = RunReport(nodes=tuple(_node(f"gpu-{i:02d}", _f("gpu.mig", Status.PASS)) for i in (1, 2, 3, 4, 7)))
    hosts = split(report, {})
    assert render_hosts(hosts, "slurm") == "gpu-[01-04,07]\n"
    assert render_hosts(hosts, "mpi").splitlines()[0] == "gpu-01"  # no GPU count known: no slots= guessed
    none = split(RunReport(nodes=(_node("a", _f("gpu.mig", Status.FAIL)),)), {})
    assert all(render_hosts(none, fmt) == "" for fmt in ("mpi", "slurm", "torchrun", "plain"))


def test_torchrun_names_are_shell_quoted():
    report = RunReport(nodes=(_node("a$(id)", _f("gpu.mig", Status.PASS)),))
    assert "MASTER_ADDR='a$(id)'" in render_hosts(split(report, {"a$(id)": 8}), "torchrun")


def test_every_xid_has_a_suggestion_with_a_source():
    for code, entry in load_xid_catalog().items():
        assert entry.get("suggest") in ACTIONS, code
        assert entry.get("suggest_source"), code


@pytest.mark.parametrize(("subject", "action"), [("Xid 79", "reboot"), ("Xid 48", "reset_gpu"), ("Xid 13", "none"),
                                                 ("Xid 74", "reset_gpu"), ("Xid 999", "drain"),
                                                 ("fallen_off_bus", "reboot"), ("SXid 12028", "reboot")])
def test_xid_actions(subject, action):
    got, source = suggestion(_f("gpu.xid", Status.FAIL, subject=subject))
    assert got == action and source


def test_check_table_names_real_checks_and_statuses_gate_it():
    ids = {s.id for s in all_checks()}
    assert set(CHECK_ACTIONS) <= ids
    assert all(a in ACTIONS and src for a, src in CHECK_ACTIONS.values())
    assert suggestion(_f("gpu.row_remap", Status.FAIL))[0] == "rma"
    assert suggestion(_f("gpu.row_remap", Status.WARN))[0] == "none"  # a warning leaves the node usable
    assert suggestion(_f("gpu.row_remap", Status.ERROR))[0] == "drain"  # could not judge: kept off jobs
    node = _node("n1", _f("gpu.xid", Status.FAIL, subject="Xid 48"), _f("gpu.count", Status.FAIL))
    assert node_action(node) == "reboot"  # the strongest of the node's findings
    assert node_action(_node("n2", outcome="timeout")) == "drain"


def test_drain_reason_is_short_plain_and_prefixed():
    node = _node("n1", _f("gpu.xid", Status.FAIL, subject="Xid 79",
                          observed='1× Xid 79 (FALLEN "OFF") on 0000:3b:00.0; $(rm -rf /) `x`\n' + "y" * 400))
    reason = drain_reason(node)
    assert reason.startswith("preflight: gpu.xid ")
    assert len(reason) <= REASON_MAX
    assert not set(reason) & set("\"'`$;\n\\|&<>")
    assert sanitise("a\x1b[31mb\tc") == "a [31mb c"
    assert drain_reason(_node("n2", outcome="timeout", message="collector did not finish")).startswith(
        "preflight: timeout collector")


def test_drain_skips_a_persons_drain_and_bad_names():
    report = RunReport(nodes=(_node("n1", _f("gpu.mig", Status.FAIL)), _node("n2", _f("gpu.mig", Status.FAIL)),
                              _node("a;b", _f("gpu.mig", Status.FAIL)), _node("ok1", _f("gpu.mig", Status.PASS))))
    acts = plan_drain(report, {"n2": NodeState("n2", "IDLE+DRAIN", "bob: fan swap")})
    by = {a.node: a for a in acts}
    assert by["n1"].verb == "drain" and by["n1"].argv[:4] == ("scontrol", "update", "nodename=n1", "state=drain")
    assert by["n1"].argv[4].startswith("reason=preflight: gpu.mig")
    assert by["n2"].verb == "skip" and "someone else" in by["n2"].why
    assert by["a;b"].verb == "skip" and not by["a;b"].argv
    assert "ok1" not in by


def test_resume_only_preflights_own_drains_of_passing_nodes():
    report = RunReport(nodes=(_node("ours", _f("gpu.mig", Status.PASS)), _node("bobs", _f("gpu.mig", Status.PASS)),
                              _node("bad", _f("gpu.mig", Status.FAIL)), _node("up", _f("gpu.mig", Status.PASS))))
    states = {"ours": NodeState("ours", "IDLE+DRAIN", "preflight: gpu.mig x"),
              "bobs": NodeState("bobs", "IDLE+DRAIN", "bob: maintenance"),
              "bad": NodeState("bad", "IDLE+DRAIN", "preflight: gpu.mig y"), "up": NodeState("up", "IDLE")}
    by = {a.node: a for a in plan_resume(report, states)}
    assert by["ours"].verb == "resume" and by["ours"].argv == ("scontrol", "update", "nodename=ours", "state=resume")
    assert by["bobs"].verb == "skip" and by["bad"].verb == "skip" and "up" not in by


def test_parse_show_node():
    text = ("NodeName=sim1 Arch=x86_64 State=IDLE ThreadsPerCore=1 ExtSensorsTemp=n/s\n"
            "NodeName=sim2 Arch=x86_64 State=IDLE+DRAIN Weight=1 ExtSensorsTemp=n/s "
            "Reason=preflight: gpu.xid Xid 79: x=1 [root@2026-12-02T15:53:00]\n")
    st = parse_show_node(text)
    assert st["sim1"] == NodeState("sim1", "IDLE", "") and not st["sim1"].drained
    assert st["sim2"].drained and st["sim2"].ours and st["sim2"].reason == "preflight: gpu.xid Xid 79: x=1"
