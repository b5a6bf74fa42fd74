"""The Slurm transport against a real Slurm (Debian's slurm-wlm + munge) started here, not a fake srun.

One host runs munged, slurmctld and one slurmd per simulated node (preflight/sim/slurm.py); srun
runs the collector once per node and each task becomes its node's simulated machine through
`$SLURMD_NODENAME`. Nothing of Slurm or preflight is mocked; only the GPU tools are stand-ins.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from preflight.collect.bundle import Bundle
from preflight.collect.script import build_script, select_probes
from preflight.engine import judge
from preflight.sim.fleet import SimFleet, _alive
from preflight.sim.slurm import SlurmCluster, missing_binaries
from preflight.transport.slurm import SlurmOptions, collect_slurm, srun_argv

NODES = [
    ("sim1", "h100-healthy"),
    ("sim2", "h100-healthy"),
    ("sim3", "h100-healthy"),
    ("sim4", "driver-mismatch"),
    ("sim5", "hang"),  # reads the script, then sleeps: a collector that never answers
    ("sim6", "h100-healthy"),  # its slurmd is killed by test_stopped_slurmd
]
HEALTHY4 = ["sim1", "sim2", "sim3", "sim4"]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing {', '.join(missing)}; run scripts/install-test-deps.sh)")
    c = SlurmCluster(tmp_path_factory.mktemp("slurm"), NODES)
    t0 = time.monotonic()
    try:
        c.start(timeout_s=30)
        c.start_s = time.monotonic() - t0  # type: ignore[attr-defined]
        yield c
    finally:
        pids = c.pids
        c.stop()
        gone_by = time.monotonic() + 5
        while any(_alive(p) for p in pids) and time.monotonic() < gone_by:
            time.sleep(0.05)
        assert not [p for p in pids if _alive(p)], "a Slurm daemon outlived stop()"
        assert not c.stray_pids(), f"processes of the test cluster outlived stop(): {c.stray_pids()}"


@pytest.fixture(scope="module")
def script():
    return build_script(select_probes(), ngpus=8, deadline_s=60)


def _options(cluster, **kw):
    env = cluster.env()
    kw.setdefault("time_limit_s", 30)
    return SlurmOptions(partition=cluster.partition, command=cluster.node_command,
                        env=(("SLURM_CONF", env["SLURM_CONF"]), ("PATH", env["PATH"])), **kw)


def _thresholds(raws):
    over = SimFleet.sandbox_thresholds()  # this host's memlock limit, stated as the SSH tests state it
    for raw in raws:
        raw.thresholds = {k: dict(v) for k, v in over.items()}
    return raws


def _failing(report):
    return {(n.name, f.check) for n in report.nodes for f in n.findings if f.status.value in ("fail", "error")}


def test_cluster_starts_fast(cluster):
    assert cluster.start_s < 20, f"test cluster took {cluster.start_s:.1f} s to start"
    assert set(cluster.node_states()) == {n for n, _ in NODES}


def test_every_node_answers_and_is_judged(cluster, script):
    """sim1-3 healthy, sim4's driver differs: the pipeline flags sim4 alone."""
    t0 = time.monotonic()
    raws = collect_slurm(script, _options(cluster, nodes=4, nodelist="sim[1-4]"), expected_nodes=None)
    took = time.monotonic() - t0
    assert [r.name for r in raws] == HEALTHY4
    assert {r.outcome for r in raws} == {"ok"}, [(r.name, r.message) for r in raws]
    assert {r.transport for r in raws} == {"slurm"}
    assert took < 15
    for r in raws:  # the sim profiles record no kernel log: accepted once, as `--accept xid=...` would
        r.expect = {**r.expect, "accept": {"xid": "the simulated nodes record no kernel log"}}
    report, _ = judge(Bundle(nodes=_thresholds(raws)))
    driver = {name for name, check in _failing(report) if check == "versions.driver.consistent"}
    assert driver == {"sim4"}
    assert not {name for name, _ in _failing(report)} - {"sim4"}, sorted(_failing(report))


def test_nodes_learnt_from_the_allocation_srun_makes(cluster, script):
    """No node names given: srun picks N nodes of the partition and the tasks say which."""
    raws = collect_slurm(script, _options(cluster, nodes=2, extra_args=("--exclude=sim[3-6]",)), expected_nodes=None)
    assert sorted(r.name for r in raws) == ["sim1", "sim2"]
    assert all(r.outcome == "ok" for r in raws)


def test_events_and_inventory_order(cluster, script):
    events = []
    raws = collect_slurm(script, _options(cluster), expected_nodes=["sim3", "sim1"],
                         on_event=lambda kind, name, raw: events.append((kind, name)))
    assert [r.name for r in raws] == ["sim3", "sim1"]
    assert all(r.outcome == "ok" for r in raws)
    assert sorted(e for e in events if e[0] == "started") == [("started", "sim1"), ("started", "sim3")]
    assert sorted(e for e in events if e[0] == "finished") == [("finished", "sim1"), ("finished", "sim3")]


def test_inside_an_existing_allocation(cluster, script, tmp_path):
    """`--slurm` inside an allocation: SLURM_JOB_ID set, srun makes a step on the job's nodes."""
    env = cluster.env()
    alloc = subprocess.run(["salloc", "--no-shell", "-N2", "--nodelist=sim2,sim3", f"--partition={cluster.partition}",
                            "--time=5"], capture_output=True, text=True, env=env, timeout=30)
    assert alloc.returncode == 0, alloc.stderr
    job = next(w for w in alloc.stderr.split() if w.isdigit())
    try:
        opts = SlurmOptions(command=cluster.node_command, time_limit_s=30,
                            env=(("SLURM_CONF", env["SLURM_CONF"]), ("PATH", env["PATH"]),
                                 ("SLURM_JOB_ID", job), ("SLURM_JOB_NODELIST", "sim[2-3]")))
        argv = srun_argv(opts, inside=True)
        assert "--overlap" in argv and not any(a.startswith("--partition") for a in argv)
        raws = collect_slurm(script, opts, expected_nodes=None)
        assert [r.name for r in raws] == ["sim2", "sim3"]
        assert all(r.outcome == "ok" for r in raws), [r.message for r in raws]
    finally:
        subprocess.run(["scancel", job], env=env, timeout=30, capture_output=True)


def test_hung_collector_is_a_timeout(cluster, script):
    """sim5's collector never answers: sim5 times out, sim1 is still judged, within the bound."""
    t0 = time.monotonic()
    raws = collect_slurm(script, _options(cluster, time_limit_s=6), expected_nodes=["sim1", "sim5"])
    took = time.monotonic() - t0
    by = {r.name: r for r in raws}
    assert by["sim1"].outcome == "ok"
    assert by["sim5"].outcome == "timeout", by["sim5"].message
    assert "6 s" in by["sim5"].message
    assert took < 6 + 10, took


def test_stopped_slurmd_is_that_nodes_result(cluster, script):
    """sim6's slurmd is dead but slurmctld still lists it: the launch fails there, the rest answer."""
    cluster.stop_node("sim6")
    t0 = time.monotonic()
    raws = collect_slurm(script, _options(cluster, time_limit_s=40), expected_nodes=["sim1", "sim2", "sim6"])
    took = time.monotonic() - t0
    by = {r.name: r for r in raws}
    assert by["sim1"].outcome == "ok" and by["sim2"].outcome == "ok", [(r.name, r.message) for r in raws]
    assert by["sim6"].outcome == "error"
    assert "sim6" in by["sim6"].message and "launch" in by["sim6"].message
    assert took < 40


def test_drained_node_times_out_without_holding_the_others(cluster, script):
    """A drained node can never be allocated: it is that node's timeout, not a hang of the run."""
    cluster.drain("sim4", "preflight test")
    try:
        t0 = time.monotonic()
        raws = collect_slurm(script, _options(cluster, time_limit_s=4), expected_nodes=["sim4"])
        took = time.monotonic() - t0
        assert [(r.name, r.outcome) for r in raws] == [("sim4", "timeout")]
        assert "did not start" in raws[0].message and "not available" in raws[0].message, raws[0].message
        assert took < 4 + 10
    finally:
        cluster.resume("sim4")


def test_no_unquoted_values_reach_a_shell(cluster):
    """Node names and extra values are argv words; the only shell text is the fixed wrapper."""
    opts = _options(cluster, nodelist="a;touch /tmp/x", extra_args=("--comment=$(id)",))
    argv = srun_argv(opts, inside=False)
    assert "--nodelist=a;touch /tmp/x" in argv and "--comment=$(id)" in argv
    wrapper = argv[argv.index("-c") + 1]
    assert "a;touch" not in wrapper and "sim" not in wrapper


def test_cli_run_slurm_judges_the_nodes_srun_reached(cluster, tmp_path):
    """`preflight run --slurm` end to end. The CLI runs the plain `sh -s` collector (no simulated-node
    wrapper), so these nodes show this machine's own tools: the point is the launch, the per-node
    split and the report, not GPU facts."""
    import json
    import subprocess
    import sys

    env = cluster.env(dict(os.environ))
    out = tmp_path / "r.json"
    proc = subprocess.run([sys.executable, "-m", "preflight", "run", "--slurm", "--slurm-partition", cluster.partition,
                           "--slurm-nodelist", "sim[1-3]", "--timeout", "60", "--json", str(out), "-q", "--headless"],
                          capture_output=True, text=True, timeout=180, env=env)
    assert out.exists(), proc.stderr
    doc = json.loads(out.read_text())
    assert sorted(n["name"] for n in doc["nodes"]) == ["sim1", "sim2", "sim3"]
    assert {n["outcome"] for n in doc["nodes"]} == {"ok"}, proc.stderr
    assert "collecting through srun" in proc.stderr


def test_cli_run_slurm_outside_an_allocation_needs_a_partition(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("SLURM_")}
    proc = subprocess.run([sys.executable, "-m", "preflight", "run", "--slurm", "-q"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 3 and "--slurm-partition" in proc.stderr
