"""The planner's view of a judged run: which nodes are healthy, and what each measured.

The planner (preflight/plan) is a pure function of a `FleetShape`; this module builds one from
the facts and the verdicts, so that every number the plan uses names the node and the tool it
came from. A node is excluded when it is unreachable or any check failed or errored on it: the
plan lists it with the first findings that excluded it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from preflight.facts import FleetFacts, NodeFacts, health_verdict
from preflight.plan.shapes import FleetShape, NodeShape, NvlinkDomain
from preflight.results import RunReport, Status

SMALL_MESSAGES = (8 * 1024, 4 * 1024 * 1024)  # the decode regime (issue 3: 8 KB - 4 MB)
PLANNABLE = (Status.PASS, Status.WARN)  # a warning (a leftover process, a slow run) does not make a node unusable


def exclusions(report: RunReport) -> dict[str, str]:
    """Node -> why it is not planned on: every node whose one verdict (`NodeReport.status`) is not pass or warn,
    with the same reason text the console, JSON, JUnit, Markdown and TUI show."""
    return {n.name: n.reason for n in report.nodes if n.outcome != "ok" or n.status not in PLANNABLE}


def _degraded_gpus(node: NodeFacts) -> list[int]:
    """GPUs with an NVLink down: outside the clean NVLink domain for tensor parallelism."""
    return sorted(l.gpu_index for l in node.nvlink or () if l.inactive_links)


def nvlink_domain(node: NodeFacts) -> tuple[int, str]:
    """(GPUs in the NVLink clique usable for TP, how that was measured)."""
    topo = node.topology
    if topo is None:
        return 1, f"{node.name}: no topology (nvidia-smi topo -m not read): PCIe assumed"
    degraded = _degraded_gpus(node)
    size = max(1, topo.nvlink_domain - len(degraded)) if topo.nvlink_domain > 1 else 1
    why = f"{node.name}: NVLink domain {topo.nvlink_domain} in topo -m"
    if degraded:
        why += f", minus GPU{', GPU'.join(map(str, degraded))} with NVLinks down (nvidia-smi nvlink -s) = {size}"
    return size, why


def gpu_order(node: NodeFacts) -> tuple[int, ...]:
    """Clean NVLink clique first (grouped by NUMA node, then index), then the other GPUs: TP groups take them in order."""
    topo = node.topology
    n = len(node.gpus or ())
    if topo is None or topo.matrix is None or not n:
        return ()
    degraded = set(_degraded_gpus(node))
    clique = [g for g in topo.matrix.nvlink_clique() if g not in degraded and g < n]
    numa = {int(k[3:]): v for k, v in (topo.matrix.numa_affinity or {}).items() if k.startswith("GPU") and k[3:].isdigit()}
    first = sorted(clique, key=lambda g: (str(numa.get(g, "")), g))
    return tuple(first + [g for g in range(n) if g not in first])


def _busbw(node: NodeFacts) -> tuple[float | None, str | None, float | None]:
    """(lowest large-message busbw over the runs, its source, small-message time in us)."""
    runs = [r for r in node.nccl_tests or () if r.busbw_at_largest() is not None]
    if not runs:
        return None, None, None
    measured = [r.busbw_at_largest() for r in runs]
    size, low = min(measured, key=lambda sv: sv[1])
    label = f"{size / 2**30:g}G" if size >= 2**30 else f"{size / 2**20:g}M"
    source = f"{node.name}: nccl-tests all_reduce_perf busbw {low:.1f} GB/s at {label} (lowest of {len(runs)} run(s))"
    small = [row for r in runs for row in r.rows if SMALL_MESSAGES[0] <= row.size_bytes <= SMALL_MESSAGES[1] and row.oop_time_us]
    latency = None
    if small:
        first = min(row.size_bytes for row in small)
        latency = min(row.oop_time_us for row in small if row.size_bytes == first)
    return low, source, latency


def node_shape(node: NodeFacts, source: str) -> NodeShape | None:
    """None when the node reported no GPUs (nothing to plan on)."""
    gpus = node.gpus or ()
    if not gpus:
        return None
    names = Counter(g.name for g in gpus if g.name)
    mems = [g.memory_total_mib for g in gpus if g.memory_total_mib]
    domain, _why = nvlink_domain(node)
    busbw, bw_source, latency = _busbw(node)
    ib = sum(p.rate_gbps or 0.0 for p in node.ib or () if (p.state or "").lower() == "active") or None
    v = node.versions
    return NodeShape(
        name=node.name, gpus=len(gpus), gpu_model=names.most_common(1)[0][0] if names else "unknown",
        gpu_memory_mib=min(mems) if mems else 0, nvlink_domain=domain, intra_busbw_gbps=busbw,
        intra_busbw_source=bw_source, small_msg_latency_us=latency, ib_gbps=ib,
        driver=v.driver if v else None, cuda=v.cuda if v else None, nccl=v.nccl if v else None,
        facts_source=f"{source}/{node.name}", gpu_order=gpu_order(node),
    )


FabricKey = tuple[str, str | None]  # (ClusterUUID, CliqueId) of a multi-node NVLink domain


def fabric_identity(node: NodeFacts) -> tuple[FabricKey | None, str | None]:
    """(the node's NVLink domain key, why its fabric is not healthy or None), from each GPU's `-q` Fabric block.

    None as the key when no GPU names a cluster (PCIe, HGX H100/B200 with an all-zero UUID): the node is its own
    domain. Healthy means every GPU is Completed / Success in the majority clique with a Health block that says
    nothing bad (a Summary the driver does not report counts as silent, an unknown value as not proven).
    """
    gpus = node.gpus or ()
    keys = Counter((g.fabric_cluster_uuid, g.fabric_clique_id) for g in gpus if g.fabric_cluster_uuid)
    if not keys:
        return None, None
    key = keys.most_common(1)[0][0]
    problems = []
    for g in gpus:
        if (g.fabric_cluster_uuid, g.fabric_clique_id) != key:
            problems.append(f"{g.ref} not in clique {key[1]} of cluster {key[0]} ({g.fabric_state or 'no Fabric block'})")
        elif g.fabric_state != "Completed / Success":
            problems.append(f"{g.ref} fabric {g.fabric_state}")
        verdict, rows = health_verdict(dict(g.fabric_health_fields))
        if verdict in ("unhealthy", "unknown"):
            problems.append(f"{g.ref} fabric health {verdict}: {'; '.join(rows)}")
    return key, "; ".join(problems) or None


def nvlink_domains(facts: FleetFacts, planned: Iterable[NodeShape]) -> tuple[NvlinkDomain, ...]:
    """Multi-node NVLink domains: reachable nodes grouped by (ClusterUUID, CliqueId) (GB200/GB300 NVL72 racks).

    A domain is healthy only when every member's fabric is; a member whose fabric is not breaks it and is named in
    `broken_by` (even when the checks excluded it), and the other members keep only their own NVLink. `nodes` are
    the planned members plus the breakers; `gpus` is the planned members' clean NVLink GPUs added up.
    """
    shapes = {n.name: n for n in planned}
    groups: dict[FabricKey, list[tuple[str, str | None]]] = {}
    for node in facts.reachable:
        key, problem = fabric_identity(node)
        if key is not None:
            groups.setdefault(key, []).append((node.name, problem))
    out = []
    for (uuid, clique), members in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or "")):
        broken = tuple(sorted(name for name, problem in members if problem))
        names = tuple(sorted(name for name, _ in members if name in shapes or name in broken))
        if not names:
            continue
        gpus = sum(shapes[n].nvlink_domain for n in names if n in shapes and n not in broken)
        out.append(NvlinkDomain(gpus=gpus, nodes=names, healthy=not broken, broken_by=broken,
                                cluster_uuid=uuid, clique_id=clique))
    return tuple(out)


def fleet_shape(report: RunReport, facts: FleetFacts, *, source: str, include: Iterable[str] = (),
                internode: tuple[float, str] | None = None) -> FleetShape:
    """Healthy nodes as the planner sees them; `include` keeps named excluded nodes in (what-if).

    `internode` is a measured multi-node all-reduce busbw (GB/s) and where it came from.
    """
    excluded = exclusions(report)
    keep = set(include)
    nodes = []
    for n in facts.reachable:
        if n.name in excluded and n.name not in keep:
            continue
        shape = node_shape(n, source)
        if shape is None:
            excluded.setdefault(n.name, "no GPUs reported")
            continue
        nodes.append(shape)
    return FleetShape(nodes=tuple(nodes), excluded=tuple((k, v) for k, v in excluded.items() if k not in keep),
                      internode_busbw_gbps=internode[0] if internode else None,
                      internode_source=internode[1] if internode else None,
                      nvlink_domains=nvlink_domains(facts, nodes))
