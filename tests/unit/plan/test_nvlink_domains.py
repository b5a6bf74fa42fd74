"""Multi-node NVLink domains (GB200/GB300 NVL72, issue 14): nodes grouped by the Fabric block's ClusterUUID +
CliqueId, healthy only when every member's fabric is, with the node that broke a domain named.

Facts come from the corpus through the collector's own path (`-q` sections merged into GpuFacts): the real GB200
tray topology (sglang#11208), the real unhealthy MNNVL Fabric block (dra-driver-nvidia-gpu#626), its labelled
derived healthy twin, and a real H100 block (all-zero ClusterUUID).
"""

from __future__ import annotations

from pathlib import Path

from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.facts import FleetFacts, GpuFacts, NodeFacts
from preflight.parse.common import strip_corpus_header
from preflight.parse.misc_tools import parse_fabric
from preflight.parse.nvidia_smi import merge_q_sections, parse_query_sections
from preflight.parse.topo import parse_topo_matrix, topology_facts
from preflight.plan.judged_fleet import fabric_identity, fleet_shape, node_shape, nvlink_domains
from preflight.plan.shapes import FleetShape, NvlinkDomain

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
DEMO = ROOT / "preflight" / "data" / "demo" / "bundle.json"
HEALTHY = "smi/q-grep-fabric-health-healthy-completed-success-mnnvl-derived.txt"  # derived: Summary -> Healthy
UNHEALTHY = "smi/q-grep-fabric-health-unhealthy-completed-success-mnnvl.txt"  # real: Summary Unhealthy
H100_BLOCK = "smi/q-fabric-h100-completed-success-cliqueid-0-zero-clusteruuid-560.txt"  # real: zero ClusterUUID
GB200_TOPO = "topo/4xgb200-nv18-6nic-sglang-gpu3-row-cut.txt"  # real: 4 GPUs NV18
CLUSTER, CLIQUE = "dc6e40c4-d722-4357-9ba6-5291dd461278", "2"


def _body(rel: str) -> str:
    """A corpus file's output without its header and grep's '--' separators."""
    return "\n".join(l for l in strip_corpus_header((CORPUS / rel).read_text())[1].splitlines() if l.strip() != "--")


def _tray(name: str, fabric: str | None, *, bad_gpu: int | None = None, bad_fabric: str = UNHEALTHY,
          model: str = "NVIDIA GB200") -> NodeFacts:
    """A 4-GPU tray: each GPU's `-q` block is the corpus Fabric block (`bad_fabric` on `bad_gpu`), merged as
    parse/node.py merges it; the topology is the real GB200 tray's `topo -m`."""
    buses = [f"{i + 8:08X}:01:00.0" for i in range(4)]
    gpus = tuple(GpuFacts(index=i, name=model, bus_id=b, memory_total_mib=189471) for i, b in enumerate(buses))
    if fabric is not None:
        q = "\n".join(f"GPU {b}\n" + _body(bad_fabric if i == bad_gpu else fabric) for i, b in enumerate(buses))
        sections = parse_query_sections(q)
        assert not hasattr(sections, "reason"), sections
        gpus = merge_q_sections(gpus, sections, None, None)  # type: ignore[arg-type]
    matrix = parse_topo_matrix(_body(GB200_TOPO))
    return NodeFacts(name=name, address=name, outcome="ok", gpus=gpus, topology=topology_facts(matrix))  # type: ignore[arg-type]


def _domains(*nodes: NodeFacts, planned: tuple[str, ...] | None = None) -> tuple[NvlinkDomain, ...]:
    facts = FleetFacts(nodes=nodes)
    shapes = [s for n in nodes if (planned is None or n.name in planned) and (s := node_shape(n, "test"))]
    return nvlink_domains(facts, shapes)


def test_the_collector_path_reads_cluster_and_clique_from_the_real_block() -> None:
    gpu = _tray("gb-01", UNHEALTHY).gpus[0]  # type: ignore[index]
    assert (gpu.fabric_cluster_uuid, gpu.fabric_clique_id) == (CLUSTER, CLIQUE)
    assert gpu.fabric_state == "Completed / Success" and gpu.fabric_health == "Unhealthy"
    assert any("ClusterUUID " + CLUSTER in e for e in gpu.evidence)
    fs = parse_fabric(_body(UNHEALTHY))
    assert not hasattr(fs, "reason") and (fs.cluster_uuid, fs.clique_id) == (CLUSTER, CLIQUE)  # type: ignore[union-attr]


def test_the_zero_cluster_uuid_of_an_h100_names_no_domain() -> None:
    node = _tray("h100-01", H100_BLOCK, model="NVIDIA H100 80GB HBM3")
    assert all(g.fabric_cluster_uuid is None and g.fabric_clique_id is None for g in node.gpus or ())
    assert fabric_identity(node) == (None, None)
    fs = parse_fabric(_body(H100_BLOCK))
    assert fs.cluster_uuid is None and fs.clique_id is None  # type: ignore[union-attr]


def test_healthy_trays_of_one_clique_form_one_domain() -> None:
    nodes = [_tray(f"gb-{i:02d}", HEALTHY) for i in range(1, 19)]  # 18 trays x 4 GPUs = NVL72
    (domain,) = _domains(*nodes)
    assert domain.healthy and domain.broken_by == ()
    assert domain.nodes == tuple(f"gb-{i:02d}" for i in range(1, 19))
    assert domain.gpus == 72
    assert (domain.cluster_uuid, domain.clique_id) == (CLUSTER, CLIQUE)


def test_one_unhealthy_tray_breaks_the_domain_and_is_named() -> None:
    nodes = [_tray("gb-01", HEALTHY), _tray("gb-02", UNHEALTHY), _tray("gb-03", HEALTHY)]  # gb-02: the real block
    (domain,) = _domains(*nodes)
    assert not domain.healthy and domain.broken_by == ("gb-02",)
    assert domain.gpus == 8  # the others' GPUs; each keeps only its own NVLink
    key, why = fabric_identity(nodes[1])
    assert key == (CLUSTER, CLIQUE) and why and "Summary: Unhealthy" in why


def test_a_breaker_excluded_by_the_checks_is_still_named() -> None:
    nodes = [_tray("gb-01", HEALTHY), _tray("gb-02", HEALTHY), _tray("gb-03", UNHEALTHY)]
    (domain,) = _domains(*nodes, planned=("gb-01", "gb-02"))  # nvlink.fabric_state failed gb-03: not planned
    assert domain.nodes == ("gb-01", "gb-02", "gb-03") and domain.broken_by == ("gb-03",) and not domain.healthy


def test_one_unhealthy_gpu_breaks_its_tray() -> None:
    nodes = [_tray("gb-01", HEALTHY), _tray("gb-02", HEALTHY, bad_gpu=3)]
    (domain,) = _domains(*nodes)
    assert domain.broken_by == ("gb-02",)
    assert "GPU3 fabric health unhealthy" in (fabric_identity(nodes[1])[1] or "")


def test_a_gpu_not_registered_with_the_fabric_breaks_its_tray() -> None:
    in_progress = "smi/q-fabric-in-progress-health-block-all-na-580.txt"  # real: State In Progress, all N/A
    node = _tray("gb-02", HEALTHY, bad_gpu=0, bad_fabric=in_progress)
    (domain,) = _domains(_tray("gb-01", HEALTHY), node)
    assert domain.broken_by == ("gb-02",) and "GPU0 not in clique 2" in (fabric_identity(node)[1] or "")


def test_nodes_without_fabric_blocks_keep_their_own_domains() -> None:
    assert _domains(_tray("gb-01", None), _tray("gb-02", None)) == ()
    assert _domains(_tray("h-01", H100_BLOCK), _tray("h-02", H100_BLOCK)) == ()


def test_an_h100_fleet_is_unchanged() -> None:
    report, facts = judge(load_bundle(DEMO))
    shape = fleet_shape(report, facts, source="demo")
    assert shape.nvlink_domains == ()
    assert FleetShape(nodes=shape.nodes).nvlink_domains == ()  # the default: each node its own domain
