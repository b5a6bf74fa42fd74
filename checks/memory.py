"""Host memory: total RAM against the inventory's minimum or the fleet's majority; static hugepages."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import FleetFacts, NodeFacts
from preflight.registry import CheckContext, check, consistency
from preflight.results import Finding, Status

KIB_PER_GIB = 1024 * 1024


@check(id="memory.host.total", group="memory", scope="fleet", needs=("memory",),
       summary="Host RAM is at least the inventory's host_memory_gib_min, else the same (to the GiB) as the fleet majority",
       remediation="A node with less RAM than its peers has a failed DIMM or a different SKU: check `dmidecode -t memory` and the BMC event log.")
def host_memory(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values: dict[str, object] = {}
    for n in fleet.reachable:
        kib = n.memory.mem_total_kib if n.memory else None
        values[n.name] = round(kib / KIB_PER_GIB) if kib else None
    unpinned = []
    for n in fleet.reachable:
        pinned, source = ctx.expected(n, "host_memory_gib_min")
        gib = values.get(n.name)
        if pinned is None:
            unpinned.append(n.name)
            continue
        if gib is None:
            yield ctx.error(n, msg="MemTotal not reported (/proc/meminfo not read)")
        elif float(gib) < float(pinned):  # type: ignore[arg-type]
            yield ctx.fail(n, observed=f"{gib} GiB",
                           expected=f">= {pinned} GiB", expected_source=source,
                           msg=f"host RAM {gib} GiB below the {pinned} GiB minimum", hint=ctx.spec.remediation)
        else:
            yield ctx.ok(n, observed=f"{gib} GiB",
                         expected=f">= {pinned} GiB", expected_source=source, msg=f"host RAM {gib} GiB")
    if unpinned:
        free = set(unpinned)  # a set: `in` a list of 1,000 names per node made this quadratic
        sub = FleetFacts(nodes=tuple(n for n in fleet.nodes if n.name in free), expect=fleet.expect)
        yield from consistency(sub, ctx, "host_memory_gib", {k: v for k, v in values.items() if k in free},
                               label="host RAM (GiB)", hint=ctx.spec.remediation)


@check(id="memory.hugepages", group="memory", needs=("memory",),
       summary="Static hugepages (HugePages_Total in /proc/meminfo): at least the inventory's hugepages_gib_min where a workload needs them; "
               "otherwise a reservation over a fraction of host RAM warns (reserved hugepages are unavailable to pinned host buffers, CPU offload and page cache)",
       remediation="Size vm.nr_hugepages (sysctl / hugepages= on the kernel command line) to what the workload needs; "
                   "a leftover reservation from another image steals host RAM that NCCL/pinned buffers and dataloaders need.",
       thresholds={"max_fraction_of_ram": 0.5},
       threshold_sources={"max_fraction_of_ram": "preflight default: half of RAM reserved for hugetlbfs leaves too little for pinned buffers and page cache on an 8-GPU node"})
def hugepages(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    mem = node.memory
    if mem is None or mem.hugepages_total is None or not mem.hugepage_size_kib:
        yield ctx.unknown(node, "HugePages_Total / Hugepagesize not reported (/proc/meminfo)")
        return
    gib = mem.hugepages_total * mem.hugepage_size_kib / KIB_PER_GIB
    free = (mem.hugepages_free or 0) * mem.hugepage_size_kib / KIB_PER_GIB
    size = f"{mem.hugepage_size_kib // 1024} MiB" if mem.hugepage_size_kib >= 1024 else f"{mem.hugepage_size_kib} KiB"
    observed = f"{mem.hugepages_total} x {size} = {gib:.1f} GiB reserved ({free:.1f} GiB free)"
    evidence = (f"HugePages_Total: {mem.hugepages_total}", f"HugePages_Free: {mem.hugepages_free}", f"Hugepagesize: {mem.hugepage_size_kib} kB")
    pinned, source = ctx.expected(node, "hugepages_gib_min")
    if pinned is not None:
        ok = gib >= float(pinned)
        yield ctx.finding(node, Status.PASS if ok else Status.FAIL, observed=observed,
                          expected=f">= {pinned} GiB of hugepages", expected_source=source, evidence=evidence,
                          msg=f"{gib:.1f} GiB of hugepages" + ("" if ok else f", below the {pinned} GiB the inventory requires"),
                          hint=None if ok else ctx.spec.remediation)
        return
    limit, src = ctx.threshold("max_fraction_of_ram")
    ram_gib = (mem.mem_total_kib or 0) / KIB_PER_GIB
    if ram_gib and gib > float(limit) * ram_gib:
        yield ctx.warn(node, observed=observed + f" of {ram_gib:.0f} GiB RAM",
                       expected=f"<= {float(limit):.0%} of host RAM (no hugepages_gib_min in the inventory)", expected_source=src,
                       evidence=evidence, msg=f"{gib:.0f} GiB of {ram_gib:.0f} GiB host RAM reserved as static hugepages",
                       hint=ctx.spec.remediation)
    else:
        yield ctx.ok(node, observed=observed,
                     expected=f"<= {float(limit):.0%} of host RAM", expected_source=src, evidence=evidence)
