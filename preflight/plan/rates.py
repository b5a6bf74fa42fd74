"""The rates a layout's estimates read (HBM, all-reduce, fabric, peak TFLOPS, all-to-all), with sources.

Worked out from one node of each kind a layout uses, so the planner asks once per kind set (`Pool.rates`).
"""

from __future__ import annotations

import math

from .constraints import spec_for
from .estimate import peak_tflops
from .fabric import fabric_evidence
from .shapes import FleetShape, NodeShape


def _hbm(node: NodeShape) -> tuple[float | None, str]:
    if node.hbm_gbps:
        return node.hbm_gbps, f"{node.name}: {node.gpu_model}"
    spec = spec_for(node.gpu_model)
    if spec and spec.get("hbm_bw_tbps"):
        return float(spec["hbm_bw_tbps"]) * 1000, f"gpus.yaml {spec['id']}"
    return None, "unknown"



Rates = tuple[float | None, str, NodeShape, float | None, str, float | None, str, float | None, str, float | None]


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
    return hbm, hbm_src, slow, p2p, p2p_src, tflops, tflops_src, a2a, a2a_src, latency
