"""Planner inputs: the measured fleet (healthy nodes only) and the user's serving options.

Units: *_gbps bandwidths measured by nccl-tests are GB/s (bytes); ib_gbps is Gb/s (bits), as
IB/RoCE port rates are printed. Every fact carries a source string so a reason can cite it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeShape:
    name: str
    gpus: int
    gpu_model: str  # as nvidia-smi names it
    gpu_memory_mib: int
    nvlink_domain: int  # GPUs in the node's NVLink clique, from the measured topology; 1 = PCIe only
    hbm_gbps: float | None = None  # GB/s, from gpus.yaml for that model
    intra_busbw_gbps: float | None = None  # GB/s, measured all-reduce bus bandwidth; None = not measured
    intra_busbw_source: str | None = None
    small_msg_latency_us: float | None = None
    ib_gbps: float | None = None  # Gb/s, sum of Active IB/RoCE port rates
    driver: str | None = None
    cuda: str | None = None
    nccl: str | None = None
    facts_source: str = ""  # e.g. "bundle demo/gpu-01"
    # GPUs in the order TP groups take them: the clean NVLink clique first (by NUMA node, then index),
    # then the rest; () = index order. TP > 1 groups use only the first `nvlink_domain` of them.
    gpu_order: tuple[int, ...] = ()
    ib_ports: int | None = None  # Active IB/RoCE ports behind ib_gbps; None = not counted
    described: bool = False  # from `--fleet` (a described fleet, not measured): no fact of it was observed

    def placement_order(self) -> tuple[int, ...]:
        return self.gpu_order or tuple(range(self.gpus))

    @property
    def gpu_memory_bytes(self) -> int:
        return self.gpu_memory_mib * 1024 * 1024


@dataclass(frozen=True)
class NvlinkDomain:
    """Nodes whose GPUs share one NVLink fabric (GB200/GB300 NVL72: up to 18 nodes through the switch trays).

    Grouped by the Fabric block's (ClusterUUID, CliqueId); `healthy=False` when a member's fabric is not
    Completed / Success / Healthy: `broken_by` names those nodes, and the others keep only their own NVLink.
    """

    gpus: int
    nodes: tuple[str, ...]
    healthy: bool
    broken_by: tuple[str, ...]
    cluster_uuid: str | None
    clique_id: str | None


@dataclass(frozen=True)
class FleetShape:
    nodes: tuple[NodeShape, ...]  # healthy nodes only
    excluded: tuple[tuple[str, str], ...] = ()  # (node, why): nodes that failed checks
    internode_busbw_gbps: float | None = None  # GB/s, measured multi-node all-reduce busbw
    internode_source: str | None = None
    # multi-node NVLink domains; () = each node is its own domain (its `nvlink_domain` GPUs)
    nvlink_domains: tuple[NvlinkDomain, ...] = ()

    @property
    def total_gpus(self) -> int:
        return sum(n.gpus for n in self.nodes)


# Runtime reserve per GPU as a fraction of its memory: CUDA graphs 0.4-1.0 GiB, non-torch
# (NCCL buffers, cuBLAS workspace, context) 0.13-0.55 GiB, +0.5 GiB NCCL at TP > 1
# (planner-notes §1.4) is about 2 GiB, ~2.5% of an 80 GB GPU; 3% rounds up for fragmentation.
# With the 2 GiB activation floor this lands near the notes' worked-example 4 GiB per H100.
DEFAULT_OVERHEAD_FRACTION = 0.03


@dataclass(frozen=True)
class PlanOptions:
    weight_dtype: str = "bf16"  # bf16 | fp16 | fp8 | int4 | mxfp4
    kv_dtype: str = "bf16"  # bf16 | fp16 | fp8
    context: int = 8192  # --max-model-len: every sequence is budgeted at full length
    seqs: int = 16  # sequences in flight, across all DP replicas
    gpu_memory_utilization: float = 0.9  # vLLM default (vllm/config/cache.py)
    overhead_fraction: float = DEFAULT_OVERHEAD_FRACTION
    max_num_batched_tokens: int = 8192  # prefill chunk that sizes the activation peak
    quant_block: int | None = None  # override the checkpoint's quantization block
    max_nodes: int | None = None
    objective: str = ""  # latency | throughput | capacity; "" = show latency and throughput
    # False when the user did not give --seqs: throughput then ranks each layout at its own capacity
    seqs_given: bool = True
