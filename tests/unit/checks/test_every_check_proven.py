"""Every registered check is proven both ways: some recorded fixture passes it, some recorded fixture fails it.

A check nobody has seen fail could be a check that cannot fail. The fixtures are the project's own
recordings, judged by the real engine:

- the simulated fleet's profiles (preflight/sim/profiles/*): each profile's node root is built with
  `prepare_node_root` and the real collector script runs there under `sh` (the profile's stand-in tools on
  PATH, its files under PREFLIGHT_HOST_ROOT), with no sshd: the same document a live run gets, offline.
  The fleet is judged as the integration fault fleet is (tests/integration/test_live_fleet.py: its
  expectations, three healthy nodes so every fleet majority is the healthy one);
- the demo bundle (preflight/data/demo/bundle.json);
- the degraded corpus recordings (tests/fixtures/corpus/DEGRADED.md) put into a healthy demo node.

"Fails" means `fail`; for a check that only ever warns (it has no `fail` verdict: clock skew, GPUDirect,
ACS, P2P...), `warn` counts as failing. `error`/`skip` are neither. Profiles whose tools hang on purpose
(smi-hung*) are left out: their probes take the full timeout and they prove gpu.driver.responsive, which
others (no-driver) prove too.
"""

from __future__ import annotations

import copy
import os
import re
import resource
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from preflight.collect.bundle import Bundle, NodeRaw, load_bundle
from preflight.collect.probes import LEVELS, NCCL_PROBES
from preflight.collect.script import build_script, decode_output, select_probes
from preflight.engine import all_checks, judge
from preflight.parse.common import strip_corpus_header
from preflight.results import Finding, Status
from preflight.sim.profile import PROFILES, load_profile, prepare_node_root

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "preflight" / "data" / "demo" / "bundle.json"
CORPUS = ROOT / "tests" / "fixtures" / "corpus"

# What the integration fault fleet's jobs are configured with (network.*, ib.port.count judge against it)
EXPECT = {"ib_ports": 2, "nccl_socket_ifname": "eth0", "nccl_ib_hca": "mlx5_0,mlx5_1"}
HANGING = {"smi-hung", "smi-hung-no-python", "dcgm-hung"}  # planted hangs: slow on purpose, proven elsewhere
HEALTHY_COPIES = 3
# Peer names the collector resolves on every node (network.resolve): `localhost` resolves everywhere; one
# healthy node also asks for a name under `.invalid`, which never resolves (RFC 6761), as a stale hostfile would.
PEERS = ("localhost",)
UNRESOLVABLE = "no-such-peer.invalid"

# Checks with no recorded fixture on one side, each with the reason. Empty means every check is proven.
NO_FAILING_FIXTURE: dict[str, str] = {
    # reported, not judged: it has no fail or warn verdict at all (no published reference threshold)
    "nccl.allreduce.small_messages": "reports decode-sized all-reduce times; never fails or warns by design",
    # the skew is the node's clock against the controller's at collection time: every recording was taken on
    # one host, so none holds a skewed pair; tests/unit/checks/test_node_checks.py::
    # test_clock_skew_beyond_the_round_trip_warns builds one (warn-only check)
    "network.clock_skew": "no recorded collection with a skewed node clock (recordings share one host clock)",
}
NO_PASSING_FIXTURE: dict[str, str] = {
    # no clean kernel log of a GPU node is recorded anywhere (the demo and the sim profiles accept the gap:
    # preflight/sim/record_demo.py); the pass path is covered with a one-line hand-written log in
    # tests/unit/checks/test_node_checks.py::test_xid_fatal_fails_nonfatal_warns_clean_passes
    "gpu.xid": "no recorded clean kernel log (dmesg) of a GPU node exists in the project",
    # the only loopback recording is HDR200-class (~192 Gb/s), slower than the NDR 400 ports of every simulated
    # node; tests/unit/checks/test_active_checks.py covers the pass path on facts built from parsed outputs
    "ib.loopback_bw": "no published ib_write_bw loopback of an NDR 400 port to replay",
}


def _profiles() -> list[str]:
    return sorted(p.name for p in PROFILES.iterdir() if (p / "profile.yaml").is_file() and p.name not in HANGING)


def _collect_offline(tmp: Path, name: str, profile: str, script: str) -> NodeRaw:
    """The real collector run on a prepared node root, under sh, as sshd would run it (no sshd)."""
    root = tmp / name
    limits = prepare_node_root(root, profile)
    memlock = limits.get("memlock")

    def set_limits() -> None:  # as SimFleet does for its sshd: the node's RLIMIT_MEMLOCK, where allowed
        if memlock is None:
            return
        value = resource.RLIM_INFINITY if memlock == "unlimited" else int(memlock)
        try:
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (value, value))
        except (ValueError, OSError):
            pass

    env = {"HOME": str(root), "PATH": str(root / "bin"), "PREFLIGHT_HOST_ROOT": str(root / "hostroot"),
           "PREFLIGHT_SIM_NODE": name, "LANG": "C.UTF-8"}
    started = time.time()
    proc = subprocess.run([str(root / "bin" / "sh"), "-s"], input=script, capture_output=True, text=True, encoding="utf-8", errors="replace", env=env,
                          cwd=root, timeout=120, preexec_fn=set_limits)
    outcome, message, doc = decode_output(proc.returncode, proc.stdout, proc.stderr)
    entry_expect = dict(EXPECT)
    if "dmesg" not in load_profile(profile)["tools"]:  # as SimFleet's inventory says for such profiles
        entry_expect["accept"] = {"xid": f"sim profile {profile} records no kernel log (dmesg)"}
    return NodeRaw(name=name, address="127.0.0.1", port=None, user=None, groups=[], outcome=outcome, message=message,
                   started=started, duration_s=time.time() - started, transport="offline", collector=doc,
                   expect=entry_expect, expect_sources=dict.fromkeys(entry_expect, "test inventory"),
                   thresholds=_sandbox_thresholds())


def _sandbox_thresholds() -> dict:
    """The same override SimFleet.sandbox_thresholds states when this host cannot lift RLIMIT_MEMLOCK."""
    from preflight.sim.fleet import SimFleet

    return SimFleet.sandbox_thresholds()


@pytest.fixture(scope="module")
def sim_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    tmp = tmp_path_factory.mktemp("offline-fleet")
    # the active tests too (--level standard), and mlxlink (run --mlxlink)
    probes = select_probes((*NCCL_PROBES, *LEVELS["standard"], "mlxlink"))
    script = build_script(probes, ngpus=8, deadline_s=60.0, peers=PEERS)
    stale = build_script(probes, ngpus=8, deadline_s=60.0, peers=(*PEERS, UNRESOLVABLE))
    nodes = [(f"healthy-{i}", "h100-healthy", stale if i == HEALTHY_COPIES - 1 else script)
             for i in range(HEALTHY_COPIES)] + [(p, p, script) for p in _profiles()]
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        raws = list(pool.map(lambda n: _collect_offline(tmp, *n), nodes))
    return Bundle(nodes=raws, inventory={"path": "offline sim fleet", "expect": {}}, label="offline")


@pytest.fixture(scope="module")
def sim_findings(sim_bundle: Bundle) -> list[tuple[str, Finding]]:
    report, _ = judge(sim_bundle)
    return [(f"sim profile {n.name}", f) for n in report.nodes for f in n.findings]


def _demo_findings() -> list[tuple[str, Finding]]:
    report, _ = judge(load_bundle(DEMO))
    return [(f"demo {n.name}", f) for n in report.nodes for f in n.findings]


def _corpus_bundles() -> list[tuple[str, Bundle]]:
    """The demo bundle with one probe of its first node replaced by each degraded corpus sample."""
    rows = re.findall(r"^\| `([^`]+)` \| (\w+) \| (.+?) \|$", (CORPUS / "DEGRADED.md").read_text(), re.M)
    out: list[tuple[str, Bundle]] = []
    for rel, probe, _ in rows:
        bundle = copy.deepcopy(load_bundle(DEMO))
        raw = bundle.nodes[0]
        body = strip_corpus_header((CORPUS / rel).read_text())[1]
        raw.collector["probes"][probe] = {"rc": 0, "stdout": body, "stderr": "", "error": None, "kind": "cmd",
                                          "argv": [probe]}
        out.append((rel, bundle))
    return out


def _corpus_findings() -> list[tuple[str, Finding]]:
    out: list[tuple[str, Finding]] = []
    for rel, bundle in _corpus_bundles():
        raw = bundle.nodes[0]
        report, _ = judge(bundle)
        node = report.node(raw.name)
        assert node is not None
        out += [(f"corpus {rel}", f) for f in node.findings]
    return out


def test_shared_parses_change_no_report(sim_bundle: Bundle) -> None:
    """One judge parses a probe's text once for every node that printed it (`share_parses`, the default): on the
    offline sim fleet, the demo and every degraded corpus sample, the reports and facts are those of parsing every
    node's every probe on its own."""
    bundles = [("sim", sim_bundle), ("demo", load_bundle(DEMO)), *_corpus_bundles()]
    for label, bundle in bundles:
        shared, shared_facts = judge(bundle, today="2026-12-02", share_parses=True)
        alone, alone_facts = judge(bundle, today="2026-12-02", share_parses=False)
        assert shared.nodes == alone.nodes, label
        assert [n.status for n in shared.nodes] == [n.status for n in alone.nodes], label
        assert shared.fleet_findings == alone.fleet_findings, label
        assert shared_facts.nodes == alone_facts.nodes, label


def _fails_it(f: Finding, has_fail_verdict: bool) -> bool:
    return f.status == Status.FAIL or (not has_fail_verdict and f.status == Status.WARN)


def test_every_check_has_a_passing_and_a_failing_fixture(sim_findings: list[tuple[str, Finding]]) -> None:
    findings = sim_findings + _demo_findings() + _corpus_findings()
    ids = [s.id for s in all_checks()]
    seen_fail = {f.check for _, f in findings if f.status == Status.FAIL}
    passing = {f.check for _, f in findings if f.status == Status.PASS}
    failing = {f.check for _, f in findings if _fails_it(f, f.check in seen_fail)}
    no_pass = sorted(set(ids) - passing - set(NO_PASSING_FIXTURE))
    no_fail = sorted(set(ids) - failing - set(NO_FAILING_FIXTURE))
    assert no_pass == [], f"checks no fixture passes: {no_pass}"
    assert no_fail == [], f"checks no fixture fails (or, for warn-only checks, warns): {no_fail}"


def test_the_allow_lists_stay_honest(sim_findings: list[tuple[str, Finding]]) -> None:
    """An allow-listed check that some fixture now proves leaves the list (and names only real checks)."""
    findings = sim_findings + _demo_findings()
    ids = {s.id for s in all_checks()}
    assert set(NO_FAILING_FIXTURE) <= ids and set(NO_PASSING_FIXTURE) <= ids
    for check_id in NO_FAILING_FIXTURE:
        assert not any(f.check == check_id and f.status in (Status.FAIL, Status.WARN) for _, f in findings), check_id
    for check_id in NO_PASSING_FIXTURE:
        assert not any(f.check == check_id and f.status == Status.PASS for _, f in findings), check_id
