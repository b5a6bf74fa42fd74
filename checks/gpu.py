"""GPU inventory: how many GPUs each node shows, which model, how much memory."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import FleetFacts, NodeFacts
from preflight.registry import CheckContext, check, consistency
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


_SMI_PROBES = ("smi_query", "smi_table", "smi_q")


@check(id="gpu.driver.responsive", group="gpu", needs=(),
       summary="The NVIDIA driver answers: nvidia-smi runs and lists the node's GPUs (absent, hung or failing nvidia-smi fails; "
               "a node the inventory declares GPU-less, gpus_per_node: 0, does not apply)",
       remediation="No nvidia-smi / no /proc/driver/nvidia: install or load the driver. nvidia-smi hanging or failing means a wedged "
                   "driver or a GPU in recovery: drain the node, read dmesg for Xid 79/GSP errors, reset the GPUs or reboot.",
       na_when="the inventory says gpus_per_node: 0")
def driver_responsive(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    declared, source = ctx.expected(node, "gpus_per_node")
    if declared is not None and int(declared) == 0:
        yield ctx.na(node, f"the inventory says this node has no GPUs (gpus_per_node: 0, {source})")
        return
    if node.gpus:
        driver = node.versions.driver if node.versions else None
        yield ctx.ok(node, observed=f"{len(node.gpus)} GPUs",
                     msg=f"nvidia-smi lists {len(node.gpus)} GPUs" + (f", driver {driver}" if driver else ""),
                     evidence=tuple(g.raw_line for g in node.gpus[:1] if g.raw_line))
        return
    gaps = {p: why for p, why in node.probe_gaps.items() if p in _SMI_PROBES}
    evidence = tuple(f"{p}: {why}" for p, why in sorted(gaps.items()))
    proc_driver = node.versions.driver if node.versions and node.versions.driver_source == "/proc/driver/nvidia/version" else None
    timed_out = [p for p, why in gaps.items() if "timed out" in why]
    absent = gaps and all("not found" in why for why in gaps.values())
    if timed_out:
        msg = (f"nvidia-smi did not answer within its timeout ({', '.join(sorted(timed_out))}): a wedged driver "
               "or a GPU stuck in recovery")
        observed = "nvidia-smi timed out"
    elif absent and proc_driver is None:
        msg, observed = "no NVIDIA driver or nvidia-smi on this node", "no nvidia-smi, no /proc/driver/nvidia/version"
    elif absent:
        msg, observed = f"NVIDIA driver {proc_driver} is loaded but nvidia-smi is not on PATH", "nvidia-smi absent"
    elif gaps:
        msg = f"nvidia-smi failed: {next(iter(sorted(gaps.values())))}"
        observed = "nvidia-smi failed"
    elif node.gpus is not None or "nvidia-smi lists no GPUs" in node.missing.get("gpus", ""):
        msg, observed = "nvidia-smi answers but lists no GPUs", "0 GPUs"
    else:
        yield ctx.unknown(node, f"GPUs not reported: {node.missing.get('gpus', 'not collected')}")
        return
    yield ctx.fail(node, observed=observed,
                   expected="nvidia-smi lists the node's GPUs",
                   expected_source=source or "every node is a GPU node unless the inventory says gpus_per_node: 0",
                   msg=msg, evidence=evidence, hint=ctx.spec.remediation)
