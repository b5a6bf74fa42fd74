"""The rates a layout's estimates read (HBM, all-reduce, fabric, peak TFLOPS, all-to-all), with sources.

Worked out from one node of each kind a layout uses, so the planner asks once per kind set (`Pool.rates`).
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .constraints import spec_for
from .estimate import peak_tflops
from .fabric import fabric_evidence
from .shapes import FleetShape, NodeShape


def _hbm(node: NodeShape) -> tuple[float | None, str]:
    """A node's HBM bandwidth (GB/s) with its source: measured on the node, else its GPU's spec."""
    if node.hbm_gbps:
        return node.hbm_gbps, f"{node.name}: {node.gpu_model}"
    spec = spec_for(node.gpu_model)
    if spec and spec.get("hbm_bw_tbps"):
        return float(spec["hbm_bw_tbps"]) * 1000, f"gpus.yaml {spec['id']}"
    return None, "unknown"


class Rates(NamedTuple):
    """What a layout's estimates read, each rate with its source (unpacked in this order by the planner)."""

    hbm_gbps: float | None
    hbm_source: str
    slowest: NodeShape  # the node with the lowest in-node all-reduce bus bandwidth
    p2p_gbps: float | None  # all-reduce between the layout's GPUs: in-node, or the fabric when multi-node
    p2p_source: str
    tflops: float | None  # the slowest GPU's peak at the weight precision
    tflops_source: str
    a2a_gbps: float | None  # EP all-to-all: NVLink inside a node or domain, else the fabric
    a2a_source: str
    latency_us: float | None  # the worst small-message latency of the nodes used


def rates_for(fleet: FleetShape, used: tuple[NodeShape, ...], weight_dtype: str, *, multinode: bool,
              in_domain: bool) -> Rates:
    """The rates a layout's estimates read, from one node of each kind it uses: the slowest HBM, all-reduce,
    fabric, peak TFLOPS and all-to-all link, each with its source. The same for every layout on the same
    kinds of node, so the planner works them out once per kind set (`Pool.rates`)."""
    hbm, hbm_src = min((_hbm(n) for n in used), key=lambda x: x[0] or math.inf)
    slow = min(used, key=lambda n: n.intra_busbw_gbps or 0.0)
    if multinode:
        ev = fabric_evidence(fleet, used)
        p2p, p2p_src = ev.busbw_gbps, f"{ev.level}: {ev.formula or ev.source}"
    else:
        p2p, p2p_src = slow.intra_busbw_gbps, slow.intra_busbw_source or slow.name
    # the compute roofline (prefill / TTFT, the decode step's compute floor) from the slowest GPU's peak for the
    # weight precision, and the EP all-to-all over the link that carries it (NVLink in a node, else the fabric)
    tflops, tflops_src = min((peak_tflops(spec_for(n.gpu_model), weight_dtype) for n in used),
                             key=lambda x: x[0] or math.inf)
    a2a, a2a_src = ((p2p, p2p_src) if multinode and not in_domain
                    else (slow.intra_busbw_gbps, slow.intra_busbw_source or slow.name))
    latency = max((n.small_msg_latency_us or 0.0) for n in used) or None
    return Rates(hbm, hbm_src, slow, p2p, p2p_src, tflops, tflops_src, a2a, a2a_src, latency)
