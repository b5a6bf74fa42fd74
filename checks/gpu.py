"""GPU inventory: how many GPUs each node shows, which model, how much memory."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.engine import CheckContext, consistency
from preflight.facts import FleetFacts
from preflight.registry import check
from preflight.results import Finding


@check(id="gpu.count", group="gpu", scope="fleet", needs=("gpus",),
       summary="Each node shows the expected number of GPUs (inventory gpus_per_node, else the fleet majority)",
       remediation="A missing GPU has usually fallen off the bus (look for Xid 79) or lost its driver binding: "
                   "drain the node, check `nvidia-smi -q` and dmesg, reseat or RMA.")
def gpu_count(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values = {n.name: (len(n.gpus) if n.gpus is not None else None) for n in fleet.reachable}
    evidence = {n.name: tuple(g.raw_line for g in n.gpus or () if g.raw_line)[:16] for n in fleet.reachable}
    yield from consistency(fleet, ctx, "gpus_per_node", values, label="GPUs", evidence=evidence,
                           hint=ctx.spec.remediation)


@check(id="gpu.model", group="gpu", scope="fleet", needs=("gpus",),
       summary="Every GPU is the expected model (inventory gpu_model, else the fleet majority); mixed models on a node fail",
       remediation="Mixed GPU models break tensor parallelism and skew bandwidth; move the node to its own inventory group.")
def gpu_model(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values: dict[str, object] = {}
    evidence: dict[str, tuple[str, ...]] = {}
    for n in fleet.reachable:
        names = sorted({g.name for g in n.gpus or () if g.name})
        values[n.name] = " + ".join(names) if names else None
        evidence[n.name] = tuple(g.raw_line for g in n.gpus or () if g.raw_line)[:2]
    yield from consistency(fleet, ctx, "gpu_model", values, label="GPU model", evidence=evidence,
                           hint=ctx.spec.remediation)


@check(id="gpu.memory.total", group="gpu", scope="fleet", needs=("gpus",),
       summary="Every GPU reports the same total memory as the rest of the fleet (a smaller total means a different SKU or a retired/remapped bank)",
       remediation="Compare `nvidia-smi -q -d MEMORY,ROW_REMAPPER` with a good node; drain and RMA a GPU that lost memory.")
def gpu_memory_total(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values: dict[str, object] = {}
    for n in fleet.reachable:
        totals = sorted({g.memory_total_mib for g in n.gpus or () if g.memory_total_mib is not None})
        values[n.name] = ", ".join(f"{t} MiB" for t in totals) if totals else None
    yield from consistency(fleet, ctx, "gpu_memory_total", values, label="GPU memory", hint=ctx.spec.remediation)
