"""Host memory: total RAM against the inventory's minimum or the fleet's majority."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.engine import CheckContext, consistency
from preflight.facts import FleetFacts
from preflight.registry import check
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
            yield Finding(check=ctx.spec.id, node=n.name, status=Status.SKIP, msg="MemTotal not reported")
        elif float(gib) < float(pinned):  # type: ignore[arg-type]
            yield Finding(check=ctx.spec.id, node=n.name, status=Status.FAIL, observed=f"{gib} GiB",
                          expected=f">= {pinned} GiB", expected_source=source,
                          msg=f"host RAM {gib} GiB below the {pinned} GiB minimum", hint=ctx.spec.remediation)
        else:
            yield Finding(check=ctx.spec.id, node=n.name, status=Status.PASS, observed=f"{gib} GiB",
                          expected=f">= {pinned} GiB", expected_source=source, msg=f"host RAM {gib} GiB")
    if unpinned:
        sub = FleetFacts(nodes=tuple(n for n in fleet.nodes if n.name in unpinned), expect=fleet.expect)
        yield from consistency(sub, ctx, "host_memory_gib", {k: v for k, v in values.items() if k in unpinned},
                               label="host RAM (GiB)", hint=ctx.spec.remediation)
