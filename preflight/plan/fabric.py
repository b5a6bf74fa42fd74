"""How much the planner knows about the fabric between nodes, best evidence first.

1. **measured**: a multi-node all-reduce busbw (`preflight nccl-multinode`, `--multinode-result`
   or a bundle's `options["multinode"]` records);
2. **estimated**: healthy (Active) IB/RoCE ports' link rate × count × an efficiency factor,
   labelled an estimate with the factor's source;
3. **none**: no port seen or described; collectives across nodes are then risky.

A second question is whether the traffic leaves NVLink at all: nodes inside one healthy
multi-node NVLink domain (GB200/GB300 NVL72) talk over the switch trays, not the IB fabric.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .shapes import FleetShape, NodeShape, NvlinkDomain

# NCCL ring all-reduce busbw per NIC over its line rate: "For NDR @ 400Gbps you should see 46-48GB/s
# per NIC" (AddyLaddy, NVIDIA/nccl-tests#290; planner-notes §5): 46 / 50 = 0.92, the low end on purpose.
# The same notes' HDR rows agree (8x 200G DGX-A100: 192 GB/s = 0.96 of 200 GB/s).
LINK_EFFICIENCY = 0.92
EFFICIENCY_SOURCE = ("efficiency 0.92 = 46/50 GB/s per 400 Gb/s NIC, the low end of 46-48 "
                     "(AddyLaddy in NVIDIA/nccl-tests#290, planner-notes §5)")


@dataclass(frozen=True)
class FabricEvidence:
    level: str  # measured | estimated | none
    busbw_gbps: float | None  # GB/s inter-node all-reduce busbw (measured or estimated)
    source: str  # where the number came from, or why there is none
    formula: str = ""


def _ports(node: NodeShape) -> str:
    if node.ib_ports and node.ib_gbps:
        return f"{node.ib_ports} × {node.ib_gbps / node.ib_ports:g} Gb/s"
    return f"{node.ib_gbps or 0:g} Gb/s of Active ports"


def fabric_evidence(fleet: FleetShape, nodes: Sequence[NodeShape]) -> FabricEvidence:
    """The best fabric evidence for these nodes: the measured busbw, else the slowest node's estimate."""
    if fleet.internode_busbw_gbps:
        return FabricEvidence("measured", fleet.internode_busbw_gbps, fleet.internode_source or "multi-node nccl-tests")
    slow = min(nodes, key=lambda n: n.ib_gbps or 0.0)
    if not slow.ib_gbps or slow.ib_gbps <= 0:
        return FabricEvidence("none", None, f"{slow.name}: no Active IB/RoCE port" +
                              (" (described fleet without ib=)" if slow.described else ""))
    est = slow.ib_gbps / 8 * LINK_EFFICIENCY
    formula = f"{_ports(slow)} ({slow.name}) / 8 bits × {LINK_EFFICIENCY:g} = {est:.0f} GB/s"
    where = "described fleet, not measured" if slow.described else f"{slow.name}: Active IB/RoCE ports ({slow.facts_source})"
    return FabricEvidence("estimated", est, f"{where}; {EFFICIENCY_SOURCE}", formula)


def shared_domain(fleet: FleetShape, names: Iterable[str]) -> NvlinkDomain | None:
    """The multi-node NVLink domain that holds every one of these nodes, healthy or not; None if none does."""
    if not fleet.nvlink_domains:
        return None
    wanted = set(names)
    for dom in fleet.nvlink_domains:
        if len(dom.nodes) > 1 and wanted <= set(dom.nodes):
            return dom
    return None


def largest_domain_gpus(fleet: FleetShape) -> int:
    """GPUs in the largest healthy multi-node NVLink domain (0 when there is none)."""
    return max((d.gpus for d in fleet.nvlink_domains if d.healthy and len(d.nodes) > 1), default=0)


def newest_passing(records: object) -> tuple[float, str] | None:
    """(busbw GB/s, source) of the newest passing `nccl-multinode --save` record with a busbw; None if none.

    Records: {"busbw", "status", "transport", "gdrdma", "hosts", "gpus_per_node", "command", "created"}.
    """
    if not isinstance(records, list):
        return None
    good: list[dict[str, Any]] = [r for r in records if isinstance(r, dict) and r.get("status") == "pass"
                                  and isinstance(r.get("busbw"), (int, float)) and r["busbw"] > 0]
    if not good:
        return None
    rec = max(good, key=lambda r: float(r.get("created") or 0.0))
    hosts = rec.get("hosts") or []
    via = "/".join(str(t) for t in rec.get("transport") or []) or "transport unknown"
    gdrdma = rec.get("gdrdma")
    gdr = ", GPUDirect RDMA" if gdrdma is True else (", no GPUDirect RDMA" if gdrdma is False else "")
    src = (f"bundle nccl-multinode record: busbw {rec['busbw']:g} GB/s over {len(hosts)} node(s) "
           f"({', '.join(map(str, hosts[:4]))}{'…' if len(hosts) > 4 else ''}; {via}{gdr}): {rec.get('command', '')}")
    return float(rec["busbw"]), src
