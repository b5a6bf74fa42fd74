"""Fleet builders for the planner tests (hand-set facts, no bundle parsing)."""

from __future__ import annotations

from preflight.plan import FleetShape, NodeShape

H100 = "NVIDIA H100 80GB HBM3"
H100_MIB = 81559  # what nvidia-smi prints for an H100 80GB


def node(name: str = "gpu-01", *, gpus: int = 8, domain: int = 8, model: str = H100, mib: int = H100_MIB,
         busbw: float | None = 450.0, ib: float | None = 3200.0, driver: str | None = "550.54.15",
         cuda: str | None = "12.4", nccl: str | None = "2.21.5") -> NodeShape:
    return NodeShape(
        name=name, gpus=gpus, gpu_model=model, gpu_memory_mib=mib, nvlink_domain=domain, hbm_gbps=None,
        intra_busbw_gbps=busbw, intra_busbw_source=f"{name} all_reduce_perf 8 GPUs" if busbw else None,
        small_msg_latency_us=None, ib_gbps=ib, driver=driver, cuda=cuda, nccl=nccl, facts_source=f"bundle demo/{name}",
    )


def fleet(*nodes: NodeShape, internode: float | None = 360.0, excluded=()) -> FleetShape:
    return FleetShape(nodes=tuple(nodes), excluded=tuple(excluded), internode_busbw_gbps=internode,
                      internode_source="demo multi-node all_reduce_perf" if internode else None)
