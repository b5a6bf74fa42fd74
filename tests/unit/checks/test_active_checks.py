"""The active-test checks on facts built from parsed real outputs (tests/fixtures/corpus, shared corpus).

Where the simulated fleet has no recording for one side of a check (a passing NDR loopback), the facts
here are built from a real parsed run with only the port rate changed, and say so.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from preflight.engine import all_checks
from preflight.facts import FleetFacts, GpuFacts, IbPortFacts, NodeFacts
from preflight.parse.active import LoopbackResult, _client_bw
from preflight.parse.common import strip_corpus_header
from preflight.parse.nvbandwidth import parse_nvbandwidth
from preflight.registry import CheckContext
from preflight.results import Status

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
SHARED = Path(__file__).resolve().parents[4] / "shared" / "corpus"


def _run(check_id: str, node: NodeFacts) -> list:
    spec = next(s for s in all_checks() if s.id == check_id)
    return list(spec.fn(node, CheckContext(spec=spec, fleet=FleetFacts(nodes=(node,)), node=node)))


def _node(**kw: object) -> NodeFacts:
    gpus = tuple(GpuFacts(index=i, name="NVIDIA H100 80GB HBM3", pcie_gen_max=5, pcie_width_max=16) for i in range(8))
    return NodeFacts(name="n", address="a", outcome="ok", gpus=gpus, **kw)  # type: ignore[arg-type]


def _ports(rate: float) -> tuple[IbPortFacts, ...]:
    return tuple(IbPortFacts(ca=f"mlx5_{i}", port=1, state="Active", phys_state="LinkUp", rate_gbps=rate,
                             link_layer="InfiniBand") for i in range(2))


def test_loopback_fails_below_the_sku_floor_and_passes_above_it() -> None:
    text = strip_corpus_header((CORPUS / "perftest" / "ib_write_bw-loopback-hdr-8MiB-mbps-server-client-concat.txt")
                               .read_text() if (CORPUS / "perftest" / "ib_write_bw-loopback-hdr-8MiB-mbps-server-client-concat.txt").exists()
                               else (SHARED / "perftest" / "ib_write_bw-loopback-hdr-8MiB-mbps-server-client-concat.txt").read_text())[1]
    real = _client_bw(text, "mlx5_0", True)  # client then server, as the collector hands both over
    assert real.gbps is not None and 192.0 < real.gbps < 193.0  # 24056.72 MB/sec
    slow = _run("ib.loopback_bw", _node(ib=_ports(400), ib_loopback={"mlx5_0": real}))
    assert [f.status for f in slow] == [Status.FAIL] and "below 380" in slow[0].msg
    assert "azurehpc-health-checks" in (slow[0].expected_source or "")
    # the same parsed run, its bandwidth as an NDR port at 98% would give (derived: value changed, said here)
    fast = dataclasses.replace(real, gbps=392.0)
    ok = _run("ib.loopback_bw", _node(ib=_ports(400), ib_loopback={"mlx5_0": fast}))
    assert [f.status for f in ok] == [Status.PASS]
    # without GPUDirect the SKU value does not apply: 85% of the port rate does (our derivation, named)
    hdr = _run("ib.loopback_bw", _node(ib=_ports(200), ib_loopback={"mlx5_0": dataclasses.replace(real, gpudirect=False)}))
    assert [f.status for f in hdr] == [Status.PASS] and (hdr[0].expected_source or "").startswith("ours: 85%")


def test_a_loopback_that_measured_nothing_is_unknown_never_pass() -> None:
    gone = LoopbackResult("mlx5_1", None, None, True, (), "ib_write_bw exited 2: Couldn't connect")
    out = _run("ib.loopback_bw", _node(ib=_ports(400), ib_loopback={"mlx5_1": gone}))
    assert [f.status for f in out] == [Status.ERROR] and "Couldn't connect" in out[0].msg


def test_copy_bandwidth_floor_per_sku_then_the_pcie_link() -> None:
    text = strip_corpus_header((CORPUS / "nvbandwidth" / "8xh100-v0.10-h2d-ce.txt").read_text())[1]
    run = parse_nvbandwidth(text)
    block = run.test("host_to_device_memcpy_ce")  # type: ignore[union-attr]
    ok = _run("pcie.copy_bandwidth", _node(copy_bw={"host_to_device_memcpy_ce": block,
                                                    "device_to_host_memcpy_ce": block}))
    assert {f.status for f in ok} == {Status.PASS} and len(ok) == 16
    # an unknown SKU at Gen4 x16: 70% of 31.5 GB/s = 22.1 GB/s, our derivation, named as such
    other = _node(copy_bw={"host_to_device_memcpy_ce": block, "device_to_host_memcpy_ce": block})
    other = dataclasses.replace(other, gpus=tuple(dataclasses.replace(g, name="NVIDIA L40S", pcie_gen_max=4)
                                                  for g in other.gpus or ()))
    derived = _run("pcie.copy_bandwidth", other)
    assert {f.status for f in derived} == {Status.PASS}
    assert all((f.expected_source or "").startswith("ours: 70% of PCIe Gen4 x16") for f in derived)


# -- each active test's tool hung, absent, cut short or degraded: the node gets "could not judge", never a pass


def _demo_with(probes: dict) -> tuple:
    from preflight.collect.bundle import Bundle, load_bundle
    from preflight.engine import judge

    bundle = load_bundle(Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo" / "bundle.json")
    raw = bundle.nodes[0]
    doc = dict(raw.collector)
    doc["probes"] = {**doc["probes"], **probes}
    raw.collector = doc
    report, _ = judge(Bundle(nodes=[raw], inventory=bundle.inventory))
    return report.nodes[0]


def _probe(stdout: str = "", error: str | None = None, rc: int | None = 0, argv: tuple = ()) -> dict:
    return {"stdout": stdout, "stderr": "", "error": error, "rc": rc, "kind": "cmd", "argv": list(argv)}


def _status(node, check: str) -> set:
    return {f.status for f in node.findings if f.check == check}


H2D = strip_corpus_header((CORPUS / "nvbandwidth" / "8xh100-v0.10-h2d-ce.txt").read_text())[1]
DCGM = strip_corpus_header((Path(__file__).resolve().parents[3] / "preflight" / "sim" / "profiles" / "h100-active"
                            / "dcgm-r2.txt").read_text())[1]


@pytest.mark.parametrize("why, probe", [
    ("hung", _probe(error="timeout", rc=None, argv=("nvbandwidth",))),
    ("absent", _probe(error="absent", rc=None, argv=("nvbandwidth",))),
    ("not run", {**_probe(error="not run", rc=None), "note": "GPUs busy: 1 python"}),
    ("cut short", _probe(H2D[: len(H2D) * 2 // 3])),
    ("garbage", _probe("\x00\x01 segfault \x02" * 20)),
    ("a number made text", _probe(H2D.replace("55.36", "fast", 1))),
])
def test_copy_bandwidth_never_passes_on_a_broken_nvbandwidth(why: str, probe: dict) -> None:
    node = _demo_with({"nvbandwidth_h2d": probe, "nvbandwidth_d2h": _probe(H2D)})
    assert _status(node, "pcie.copy_bandwidth") == {Status.ERROR}, why
    assert node.status != Status.PASS


@pytest.mark.parametrize("why, probe", [
    ("hung", _probe(error="timeout", rc=None, argv=("dcgmi",))),
    ("absent at standard", _probe(error="absent", rc=None, argv=("dcgmi",))),
    ("cut short", _probe(DCGM[: len(DCGM) // 2])),
    ("garbage", _probe("not a table\n" * 5)),
])
def test_dcgm_never_passes_on_a_broken_dcgmi(why: str, probe: dict) -> None:
    node = _demo_with({"dcgm_r2": probe})
    assert _status(node, "gpu.dcgm.diag") == {Status.ERROR}, why
    assert node.status != Status.PASS


def test_dcgm_absent_at_quick_does_not_apply_and_the_healthy_recording_passes() -> None:
    quick = _demo_with({"dcgm_r1": _probe(error="absent", rc=None, argv=("dcgmi",))})
    assert _status(quick, "gpu.dcgm.diag") == {Status.SKIP}
    ok = _demo_with({"dcgm_r2": _probe(DCGM)})
    assert _status(ok, "gpu.dcgm.diag") == {Status.PASS}


@pytest.mark.parametrize("why, probe", [
    ("hung", _probe(error="timeout", rc=None, argv=("ib_write_bw",))),
    ("absent", {**_probe(error="absent", rc=None), "argv": ["ib_write_bw"]}),
    ("cut short document", _probe('{"mlx5_0": {"client": "')),
    ("client failed", _probe('{"mlx5_0": {"error": null, "rc": 1, "client": "Couldn\'t connect", "server": ""}}')),
])
def test_loopback_never_passes_on_a_broken_ib_write_bw(why: str, probe: dict) -> None:
    node = _demo_with({"ib_loopback": {**probe, "kind": "builtin"}})
    assert _status(node, "ib.loopback_bw") == {Status.ERROR}, why
