"""Slurm drain and resume against the real local Slurm (preflight/sim/slurm.py): the verdict's excluded nodes
are drained with `preflight: <check> <observed>`, `scontrol show node` shows it, resume brings back only the
nodes preflight drained that pass now, and a node a person drained stays drained."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from preflight.actions.slurm import plan_drain, plan_resume
from preflight.collect.script import build_script, select_probes
from preflight.engine import judge
from preflight.session.slurm import apply_actions, slurm_node_states
from preflight.sim.fleet import SimFleet
from preflight.sim.slurm import SlurmCluster, missing_binaries
from preflight.transport.slurm import SlurmOptions, collect_slurm

NODES = [("sa1", "h100-healthy"), ("sa2", "h100-healthy"), ("sa3", "nvlink-down"), ("sa4", "h100-healthy")]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing {', '.join(missing)}; run scripts/install-test-deps.sh)")
    c = SlurmCluster(tmp_path_factory.mktemp("slurm-act"), NODES)
    try:
        c.start(timeout_s=30)
        yield c
    finally:
        c.stop()


def _report(cluster, names):
    env = cluster.env()
    opts = SlurmOptions(partition=cluster.partition, command=cluster.node_command, time_limit_s=40,
                        env=(("SLURM_CONF", env["SLURM_CONF"]), ("PATH", env["PATH"])))
    raws = collect_slurm(build_script(select_probes(), ngpus=8, deadline_s=30), opts, expected_nodes=names)
    over = SimFleet.sandbox_thresholds()
    for raw in raws:
        raw.thresholds = {k: dict(v) for k, v in over.items()}
        raw.expect = {"gpus_per_node": 8}
    from preflight.collect.bundle import Bundle
    from preflight.engine import select_checks

    # the Slurm wrapper's PATH has only the stand-ins, and no dmesg: gpu.xid cannot judge there (as in
    # test_slurm_transport); every other check judges the simulated nodes
    report, _ = judge(Bundle(nodes=raws), select_checks(None, "gpu.xid"))
    return report


def _show(cluster, node):
    return subprocess.run(["scontrol", "show", "node", node], capture_output=True, text=True, timeout=10,
                          env=cluster.env()).stdout


def test_drain_then_resume_leaves_a_persons_drain(cluster):
    env = cluster.env()
    report = _report(cluster, ["sa1", "sa2", "sa3"])
    assert report.node("sa3").status.value == "fail", report.node("sa3").reason
    assert {n.name for n in report.nodes if n.status.value == "pass"} == {"sa1", "sa2"}, \
        [(n.name, n.reason) for n in report.nodes]
    cluster.drain("sa4", "bob: PSU swap")  # drained by a person, before preflight acts
    states = slurm_node_states(["sa1", "sa2", "sa3", "sa4"], env=env)
    assert states["sa4"].drained and not states["sa4"].ours
    drains = plan_drain(report, states)
    assert [a.node for a in drains] == ["sa3"]
    assert all(rc == 0 for _a, rc, _m in apply_actions(drains, env=env))
    shown = _show(cluster, "sa3")
    assert "DRAIN" in shown and "Reason=preflight: nvlink.links.active" in shown, shown

    # sa3 repaired (its verdict now passes), sa4 still drained by bob: resume touches only sa3
    healthy = _report(cluster, ["sa1", "sa2"])
    from dataclasses import replace

    repaired = replace(healthy, nodes=(*healthy.nodes, replace(healthy.nodes[0], name="sa3"),
                                       replace(healthy.nodes[0], name="sa4")))
    states = slurm_node_states(["sa1", "sa2", "sa3", "sa4"], env=env)
    resumes = plan_resume(repaired, states)
    assert [(a.node, a.verb) for a in resumes] == [("sa3", "resume"), ("sa4", "skip")]
    assert all(rc == 0 for _a, rc, _m in apply_actions(resumes, env=env))
    assert "DRAIN" not in _show(cluster, "sa3").split("State=")[1].split()[0]
    assert "Reason=bob: PSU swap" in _show(cluster, "sa4")
    cluster.resume("sa4")


def test_cli_drain_dry_run_then_apply(cluster, tmp_path):
    """`preflight run --slurm --drain` prints the scontrol lines; with --apply they run. The CLI runs the plain
    collector (this host's tools: no GPUs, so every node is excluded) — the point is the command lines."""
    env = cluster.env(dict(os.environ))
    base = [sys.executable, "-m", "preflight", "run", "--slurm", "--slurm-partition", cluster.partition,
            "--slurm-nodelist", "sa[1-2]", "--timeout", "60", "-q", "--headless", "--no-history", "--drain"]
    dry = subprocess.run(base, capture_output=True, text=True, timeout=180, env=env)
    lines = [ln for ln in dry.stdout.splitlines() if ln.startswith("scontrol update")]
    assert len(lines) == 2 and all("state=drain" in ln and "'reason=preflight: " in ln for ln in lines), dry.stdout + dry.stderr
    assert "DRAIN" not in _show(cluster, "sa1").split("State=")[1].split()[0]  # a dry run changes nothing
    applied = subprocess.run([*base, "--apply"], capture_output=True, text=True, timeout=180, env=env)
    assert "done: scontrol update nodename=sa1" in applied.stdout, applied.stdout + applied.stderr
    assert "Reason=preflight: " in _show(cluster, "sa1")
    resumed = subprocess.run([*base[:-1], "--resume", "--apply"], capture_output=True, text=True, timeout=180, env=env)
    assert "still failing" in resumed.stdout, resumed.stdout  # still no GPUs here: nothing resumed
    cluster.resume("sa1")
    cluster.resume("sa2")
