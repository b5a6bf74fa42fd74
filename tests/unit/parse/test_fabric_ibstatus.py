"""The `nvidia-smi -q` Fabric Health sub-block and `ibstatus`, read from recorded outputs."""

from __future__ import annotations

from pathlib import Path

from preflight.collect.bundle import NodeRaw
from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.fabricmanager import FabricBlock, health_verdict, parse_fabric_block
from preflight.parse.ibstat import IbStat, parse_ibstat, parse_ibstatus
from preflight.parse.node import build_node_facts

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
PROFILES = ROOT / "preflight" / "sim" / "profiles"


def body(path: Path) -> str:
    return strip_corpus_header(path.read_text())[1]


def test_completed_success_but_unhealthy_is_not_ok() -> None:
    # before: the Health sub-block was dropped, so this block read as a healthy registration
    block = parse_fabric_block(body(CORPUS / "smi/q-grep-fabric-health-unhealthy-completed-success-mnnvl.txt"))
    assert isinstance(block, FabricBlock)
    assert (block.state, block.status, block.clique_id) == ("Completed", "Success", 2)
    assert block.health == {"Summary": "Unhealthy", "Bandwidth": "Full"}
    assert block.ok is False and health_verdict(block.health) == ("unhealthy", ("Summary: Unhealthy",))


def test_in_progress_with_an_all_na_health_block() -> None:
    block = parse_fabric_block(body(CORPUS / "smi/q-fabric-in-progress-health-block-all-na-580.txt"))
    assert isinstance(block, FabricBlock) and block.state == "In Progress" and block.ok is False
    assert len(block.health) == 7 and block.health["Route Recovery in progress"] == "N/A"
    assert health_verdict(block.health) == ("not_reported", ())


def test_health_verdicts_never_read_an_unknown_value_as_healthy() -> None:
    assert health_verdict({"Summary": "Healthy", "Bandwidth": "Full"})[0] == "healthy"
    flagged = health_verdict({"Summary": "Healthy", "Route Unhealthy": "True"})
    assert flagged == ("unhealthy", ("Route Unhealthy: True",))
    assert health_verdict({"Summary": "Limited Capacity"}) == ("unknown", ("Summary: Limited Capacity",))
    assert health_verdict({"Bandwidth": "N/A"}) == ("not_reported", ())  # H100, driver 565
    assert health_verdict({"Summary": "Healthy", "Incorrect Configuration": "Wrong Topology"})[0] == "unknown"


def _raw(probes: dict[str, str]) -> NodeRaw:
    doc = {"mode": "python", "probes": {pid: {"rc": 0, "stdout": out, "stderr": "", "error": None, "kind": "cmd"}
                                        for pid, out in probes.items()}}
    return NodeRaw(name="n1", address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector=doc)


def test_fabric_health_reaches_the_gpu_facts_from_the_full_q() -> None:
    facts = build_node_facts(_raw({"smi_table": body(PROFILES / "h100-healthy/smi-table.txt"),
                                   "smi_q": body(PROFILES / "fabric-unhealthy/smi-q.txt")}))
    assert facts.gpus is not None
    g0, g1 = facts.gpus[0], facts.gpus[1]
    assert g0.fabric_state == "Completed / Success" and g0.fabric_health == "Unhealthy"
    assert ("Bandwidth", "N/A") in g0.fabric_health_fields
    assert any("Fabric Health: Summary Unhealthy" in e for e in g0.evidence)
    assert g1.fabric_health is None and g1.fabric_health_fields == (("Bandwidth", "N/A"),)


def test_ibstatus_reads_as_ibstat_does() -> None:
    # before: `ibstatus` went to the ibstat parser, which refused it
    text = body(CORPUS / "ib/ibstatus-cx5-roce-100g-one-port-down-debian12.txt")
    assert isinstance(parse_ibstat(text), Unparseable)
    stat = parse_ibstatus(text)
    assert isinstance(stat, IbStat) and [ca.name for ca in stat.cas] == ["mlx5_0", "mlx5_1"]
    down, up = stat.cas[0].ports[0], stat.cas[1].ports[0]
    assert (down.state, down.phys_state, down.rate_gbps, down.link_layer) == ("Down", "Disabled", 100.0, "Ethernet")
    assert up.up and not down.up and up.base_lid == 0
    ib = parse_ibstatus(body(CORPUS / "ib/ibstatus-4x-edr-100-infiniband-ucx-guide.txt"))
    assert isinstance(ib, IbStat) and [p.base_lid for ca in ib.cas for p in ca.ports] == [15, 6, 2, 17]
    assert all(p.up and p.link_layer == "InfiniBand" and p.sm_lid == 1 for ca in ib.cas for p in ca.ports)


def test_a_cut_ibstatus_block_is_not_an_active_port() -> None:
    text = body(CORPUS / "ib/ibstatus-4x-edr-100-infiniband-ucx-guide.txt")
    cut = text[: text.index("state:")]  # mlx5_0's block up to its sm lid
    stat = parse_ibstatus(cut)
    assert isinstance(stat, IbStat)
    port = stat.cas[0].ports[0]
    assert port.state is None and not port.up and port.missing["state"] == "not_in_output"
    assert isinstance(parse_ibstatus(body(CORPUS / "ib/ibstat-cx7-ndr400-infiniband.txt")), Unparseable)
