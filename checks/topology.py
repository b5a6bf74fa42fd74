"""GPU interconnect: the topology matrix of each node, the same on every node, and NVLink health."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

from preflight.facts import FleetFacts, GpuFacts, NodeFacts, TopologyFacts
from preflight.registry import P2P_STATUS, CheckContext, check, consistency, gpu_spec_for, health_verdict
from preflight.results import Finding, Status


def _nvlink_isolated(topo: TopologyFacts) -> list[tuple[int, str]]:
    """GPUs whose every GPU↔GPU cell shown is a PCIe/SMP path while other pairs show NV#: their NVLinks are gone.

    (index, what its cells show) per GPU; a partial matrix counts only the cells it printed.
    """
    nv = {p: k for p, k in topo.links.items() if k.startswith("NV")}
    out = []
    for g in sorted({i for p in topo.links for i in p}):
        mine = {p: k for p, k in topo.links.items() if g in p}
        peers_nv = [k for p, k in nv.items() if g not in p]
        if mine and peers_nv and not any(k.startswith("NV") for k in mine.values()):
            kinds = ", ".join(sorted(set(mine.values())))
            others = ", ".join(sorted(set(peers_nv)))
            out.append((g, f"{kinds} to {len(mine)} peer GPU(s), while other pairs show {others}"))
    return out


@check(id="topology.read", group="topology", needs=("topology",),
       summary="`nvidia-smi topo -m` was read whole: GPU count, NVLink domain size, GPU↔GPU link types; "
               "no GPU has lost all its NVLinks while its peers keep theirs",
       remediation="Run `nvidia-smi topo -m` by hand; a missing matrix usually means the driver is not loaded. A GPU "
                   "showing SYS/NODE/PIX where its peers show NV# has lost its NVLink/NVSwitch path: reseat or RMA the "
                   "GPU/baseboard and keep tensor parallelism off this node.")
def topology_read(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    topo = node.topology
    assert topo is not None
    kinds = sorted(set(topo.links.values()))
    msg = f"{topo.gpu_count} GPUs, NVLink domain of {topo.nvlink_domain}, GPU↔GPU links: {', '.join(kinds) or 'none'}"
    rows = topo.matrix.raw_rows if topo.matrix is not None else {}
    isolated = _nvlink_isolated(topo)
    for g, seen in isolated:
        yield ctx.fail(node, subject=f"GPU{g}",
                       observed=f"GPU{g}: {seen}", expected="NV# to its peers, as the other GPUs have",
                       expected_source="the other GPU pairs of the same matrix",
                       msg=f"GPU{g} has no NVLink to any other GPU ({seen}): its NVLinks are gone",
                       evidence=tuple(r for r in (rows.get(f"GPU{g}"),) if r) or topo.evidence[:3],
                       hint=ctx.spec.remediation)
    if topo.partial:
        yield ctx.unknown(node, f"topology only partly shown: {topo.partial}; what was seen: {msg}",
                          observed=msg, evidence=topo.evidence[:3])
        return
    gpus = len(node.gpus) if node.gpus is not None else None
    if gpus is not None and gpus != topo.gpu_count:
        yield ctx.fail(node, observed=topo.gpu_count, expected=gpus,
                       expected_source="GPUs listed by nvidia-smi --query-gpu on the same node",
                       msg=f"topology shows {topo.gpu_count} GPUs but nvidia-smi lists {gpus}", evidence=topo.evidence,
                       hint=ctx.spec.remediation)
        return
    if not isolated:
        yield ctx.ok(node, observed=msg, msg=msg,
                     evidence=topo.evidence[:3])


def _signature_pairs(signature: str) -> dict[str, str]:
    """`0-1:NV18;0-2:NV18` -> {"0-1": "NV18", ...}."""
    return dict(part.split(":", 1) for part in signature.split(";") if ":" in part)


@check(id="topology.consistent", group="topology", scope="fleet", needs=("topology",),
       summary="Every node has the same GPU↔GPU topology (link type of every GPU pair) as the fleet majority; "
               "a partial matrix is compared on the pairs it shows and never passes",
       remediation="A node whose matrix differs has a degraded or missing NVLink/NVSwitch path or a GPU in another slot: "
                   "compare `nvidia-smi topo -m` with a good node and reseat, or exclude it from multi-node jobs.")
def topology_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    nodes = {n.name: n for n in fleet.reachable}
    partial = {name: n.topology for name, n in nodes.items() if n.topology is not None and n.topology.partial}
    values = {name: (n.topology.signature if n.topology and name not in partial else None) for name, n in nodes.items()}
    evidence = {n.name: n.topology.evidence[:9] for n in fleet.reachable if n.topology}
    for f in consistency(fleet, ctx, "topology_signature", values, label="topology", evidence=evidence,
                         hint=ctx.spec.remediation):
        topo = partial.get(f.node or "")
        if topo is not None:
            yield _partial_against(f, topo, evidence.get(f.node or "", ()), ctx)
            continue
        if f.status == Status.FAIL:  # the signature is long: only the pairs that differ are shown
            f = _differing_pairs(f)
        yield f


def _differing_pairs(f: Finding) -> Finding:
    """A whole matrix unlike the majority: observed and expected keep only the GPU pairs that differ
    (same `i-j:KIND;...` form; a pair one side lacks reads `absent`), the message counts them."""
    seen, want = _signature_pairs(str(f.observed or "")), _signature_pairs(str(f.expected or ""))
    differ = sorted((p for p in set(seen) | set(want) if seen.get(p) != want.get(p)),
                    key=lambda p: tuple(int(x) if x.isdigit() else 0 for x in p.split("-")))
    if not differ:
        return dataclasses.replace(f, msg=f"GPU↔GPU topology differs from the fleet majority ({f.expected_source})")
    return dataclasses.replace(
        f, observed=";".join(f"{p}:{seen.get(p, 'absent')}" for p in differ),
        expected=";".join(f"{p}:{want.get(p, 'absent')}" for p in differ),
        msg=f"GPU↔GPU topology differs from the fleet majority ({f.expected_source}) on {len(differ)} of "
            f"{len(set(seen) | set(want))} GPU pairs")


def _partial_against(f: Finding, topo: TopologyFacts, evidence: tuple[str, ...], ctx: CheckContext) -> Finding:
    """A partial matrix: `fail` when a pair it shows differs from the expected topology, else `error` (not compared).

    `f` is this node's finding from `consistency`: the verdict replaces it, keeping its check, node and expectation.
    """
    seen = _signature_pairs(topo.signature)
    expected = _signature_pairs(str(f.expected)) if f.expected else {}
    differ = sorted(p for p, k in seen.items() if p in expected and expected[p] != k)
    if differ:
        shown = "; ".join(f"GPU{p.replace('-', '↔GPU')}: {seen[p]} (expected {expected[p]})" for p in differ[:6])
        return dataclasses.replace(f, status=Status.FAIL, observed=shown,
                                   msg=f"GPU↔GPU topology differs from {f.expected_source} on {len(differ)} pair(s) "
                                       f"the partial matrix shows: {shown}", evidence=evidence, hint=ctx.spec.remediation)
    compared = sum(1 for p in seen if p in expected)
    why = f"topology only partly shown ({topo.partial})"
    what = (f"the {compared} GPU pair(s) it shows match {f.expected_source}; the others were not seen" if expected
            else "no fleet topology to compare it with")
    return dataclasses.replace(f, status=Status.ERROR, observed=topo.signature or None, msg=f"{why}: {what}",
                               evidence=evidence, hint=f.hint or ctx.spec.remediation)


def _expected_links(node: NodeFacts, ctx: CheckContext) -> tuple[int | None, str | None]:
    pinned, source = ctx.expected(node, "nvlinks_per_gpu")
    if pinned is not None:
        return int(pinned), source
    names = {g.name for g in node.gpus or () if g.name}
    if len(names) == 1:
        spec = gpu_spec_for(next(iter(names)))
        if spec and spec.get("nvlink_links"):
            return int(spec["nvlink_links"]), f"reference gpus.yaml {spec['id']} ({spec.get('source', '')})"
    return None, None


@check(id="nvlink.links.active", group="nvlink", needs=("nvlink",),
       summary="Every GPU has all its NVLinks active (inventory nvlinks_per_gpu, else the GPU model's link count from gpus.yaml, else the node's best GPU)",
       remediation="Reseat or RMA the GPU/baseboard; until fixed, tensor parallelism across this node's GPUs is unsafe "
                   "(NCCL falls back to slower paths or hangs). Check `nvidia-smi nvlink -e` error counters.")
def nvlink_active(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    links = node.nvlink or ()
    expected, source = _expected_links(node, ctx)
    if expected is None:
        best = max((l.active for l in links), default=0)
        expected, source = best, "the node's best GPU"
    if expected == 0 and all(l.active == 0 for l in links):
        yield ctx.ok(node, observed=0, expected=0,
                     expected_source=source, msg="no NVLink on this node (PCIe only)")
        return
    listed = {l.gpu_index for l in links}
    for g in node.gpus or ():  # a GPU nvlink -s does not list (output cut short) is unseen, not healthy
        if g.index not in listed:
            yield ctx.unknown(node, f"{g.ref} is not in the nvidia-smi nvlink -s output (cut short?)", subject=g.ref)
    for l in links:
        subject = f"GPU{l.gpu_index}"
        if l.active >= expected:
            yield ctx.ok(node, subject=subject, observed=l.active,
                         expected=expected, expected_source=source, msg=f"{subject}: {l.active} NVLinks active")
        else:
            down = ", ".join(str(i) for i in l.inactive_links) or "unknown"
            yield ctx.fail(node, subject=subject,
                           observed=f"{l.active} of {l.total}", expected=f"{expected} active", expected_source=source,
                           msg=f"{subject} has {l.active} of {expected} NVLinks active (down: {down}); TP across this node is unsafe",
                           evidence=l.evidence, hint=ctx.spec.remediation)


@check(id="topology.gpu_nic_affinity", group="topology", needs=("topology",),
       summary="Every GPU has a NIC close to it in the topology matrix (PIX/PXB best; PHB/NODE warn; SYS, across the CPU interconnect, warns) when the node has NICs",
       remediation="GPUDirect RDMA between a GPU and a NIC across the SMP interconnect is slow; check NIC placement and NCCL_IB_HCA, "
                   "or accept it on PCIe servers where that is the design.",
       na_when="the whole matrix was shown and it has no NIC columns")
def gpu_nic_affinity(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    topo = node.topology
    assert topo is not None
    matrix = topo.matrix
    nics = matrix.nics if matrix is not None else tuple(sorted({v[0] for v in topo.nic_affinity.values()}))
    if not nics:
        if topo.partial:
            yield ctx.unknown(node, f"no NIC columns known: the topology was only partly shown ({topo.partial})")
        else:
            yield ctx.na(node, "the topology matrix has no NIC columns (nvidia-smi sees no NIC on this node)")
        return
    rows = matrix.raw_rows if matrix is not None else {}
    gpus = sorted({int(g[3:]) for g in matrix.gpus} if matrix is not None else set(topo.nic_affinity))
    for g in gpus:
        subject = f"GPU{g}"
        unseen = matrix.unknown_nic_cells(subject) if matrix is not None else ()
        nearest = topo.nic_affinity.get(g)
        if nearest is not None and nearest[1] in ("PIX", "PXB"):
            yield ctx.ok(node, subject=subject,
                         observed=f"{nearest[0]} via {nearest[1]}")
        elif unseen:
            seen = f"nearest NIC shown is {nearest[0]} via {nearest[1]}" if nearest else "no GPU↔NIC cell shown"
            yield ctx.unknown(node, f"{subject}: {seen}; its cells to {', '.join(unseen[:6])}"
                                    f"{' …' if len(unseen) > 6 else ''} are not in the output ({topo.partial})",
                              subject=subject, observed=seen, evidence=tuple(r for r in (rows.get(subject),) if r))
        elif nearest is not None:
            nic, kind = nearest
            yield ctx.warn(node, subject=subject,
                           observed=f"nearest NIC {nic} via {kind}", expected="a NIC at PIX or PXB",
                           expected_source="nvidia-smi topo -m legend (PIX/PXB: same PCIe switch)",
                           msg=f"{subject}'s nearest NIC is {nic} via {kind}", evidence=(rows.get(subject, ""),),
                           hint=ctx.spec.remediation)


@check(id="topology.p2p", group="topology", needs=("p2p",),
       summary="Every GPU pair reports CUDA peer-to-peer read access OK (`nvidia-smi topo -p2p r`); vLLM's and SGLang's custom all-reduce kernels need P2P",
       remediation="P2P 'not supported' on a multi-GPU inference node disables the custom all-reduce (slower decode); check IOMMU/ACS "
                   "settings, the platform's P2P support, and that GPUs are not consumer cards without P2P.")
def p2p(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    m = node.p2p
    bad = m.not_ok()
    if not bad:
        yield ctx.ok(node, observed=f"OK for all {len(m.gpus)} GPUs")
        return
    pairs = sorted({tuple(sorted((a, b))) + (s,) for a, b, s in bad})
    yield ctx.warn(node, subject=",".join(f"{a}-{b}" for a, b, _ in pairs[:8]),
                   observed="; ".join(f"{a}↔{b}: {s} ({P2P_STATUS.get(s, s)})" for a, b, s in pairs[:8]),
                   expected="OK", expected_source="nvidia-smi topo -p2p legend",
                   msg=f"P2P read not available between {len(pairs)} GPU pair(s)",
                   evidence=tuple(m.raw_rows.values())[:8], hint=ctx.spec.remediation)


@check(id="pcie.acs", group="topology", needs=("acs",),
       summary="PCIe ACS redirect is off on bridges (bare metal): with SrcValid/ReqRedir/CmpltRedir on, GPU peer-to-peer traffic detours through the root complex and NCCL can hang or crawl",
       remediation="On bare metal disable ACS on the PCIe switches (BIOS option, or `setpci` at boot as NVIDIA's NCCL troubleshooting guide shows); "
                   "in VMs with passthrough ACS is required and NCCL_P2P_DISABLE/ATS settings apply instead.")
def pcie_acs(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    on = [e for e in node.acs or () if e.redirects]
    if not on:
        yield ctx.ok(node, observed=f"ACS redirect off on {len(node.acs or ())} bridges")
        return
    yield ctx.warn(node, observed=f"ACS redirect on for {len(on)} of {len(node.acs or ())} bridges",
                   expected="SrcValid- ReqRedir- CmpltRedir-", expected_source="NVIDIA NCCL docs, Troubleshooting: PCI Access Control Services (ACS)",
                   msg=f"PCIe ACS redirect enabled on {len(on)} bridge(s)",
                   evidence=tuple((e.device + " | " if e.device else "") + e.raw_line.strip() for e in on[:8]), hint=ctx.spec.remediation)


@check(id="nvlink.fabricmanager", group="nvlink", needs=("gpus", "fabricmanager"),
       summary="nvidia-fabricmanager is active on NVSwitch systems (GPU model with NVSwitch in gpus.yaml and 8+ GPUs); without it CUDA and NCCL cannot use NVLink",
       remediation="Install the fabricmanager package matching the driver exactly (same version string) and `systemctl enable --now nvidia-fabricmanager`; "
                   "its journal names a version mismatch when there is one.")
def fabricmanager(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    names = {g.name for g in node.gpus or () if g.name}
    spec = gpu_spec_for(next(iter(names))) if len(names) == 1 else None
    state, lines = node.fabricmanager or ("unknown", ())
    if not (spec and spec.get("nvswitch") and len(node.gpus or ()) >= 8):
        yield ctx.na(node, msg="not an NVSwitch system (by GPU model and count): fabric manager not needed")
    elif state == "active":
        yield ctx.ok(node, observed="active")
    else:
        yield ctx.fail(node, observed=state, expected="active",
                       expected_source=f"reference gpus.yaml {spec['id']} (nvswitch: true)",
                       msg=f"nvidia-fabricmanager is {state} on an NVSwitch system", evidence=lines[:6], hint=ctx.spec.remediation)


@check(id="nvlink.errors", group="nvlink", needs=("nvlink_errors",),
       summary="NVLink error counters (`nvidia-smi nvlink -e`: replay, recovery, CRC) stay at or under their thresholds since the driver loaded",
       remediation="Counters that grow point at a marginal link: reset them (`nvidia-smi nvlink -r`), run an NCCL all-reduce, re-read; "
                   "if they grow again, reseat or RMA the GPU/baseboard and keep TP off this node.",
       thresholds={"Replay Errors": 0, "Recovery Errors": 0, "CRC Errors": 0},
       threshold_sources=dict.fromkeys(("Replay Errors", "Recovery Errors", "CRC Errors"), "preflight default: any error since driver load is worth a look (stas00/ml-engineering debug.md " "recommends checking these counters)"))
def nvlink_errors(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    for gpu, links in sorted((node.nvlink_errors or {}).items()):
        over = []
        for link, counters in sorted(links.items()):
            for name, value in counters.items():
                limit, _ = ctx.threshold(name)
                if limit is not None and value > int(limit):
                    over.append(f"Link {link}: {name}: {value}")
        if over:
            yield ctx.warn(node, subject=f"GPU{gpu}",
                           observed="; ".join(over[:6]), expected="0 errors", expected_source=ctx.threshold("CRC Errors")[1],
                           msg=f"GPU{gpu}: {len(over)} NVLink error counters above threshold", evidence=tuple(over[:12]),
                           hint=ctx.spec.remediation)
        else:
            yield ctx.ok(node, subject=f"GPU{gpu}",
                         observed=f"{len(links)} links, no errors")


_FABRIC_ABSENT = ("N/A", "Not Supported")


@check(id="nvlink.fabric_state", group="nvlink", needs=("gpus",),
       summary="On NVLink-fabric systems every GPU's fabric registration completed successfully and its fabric health "
               "is not Unhealthy (`nvidia-smi -q` Fabric State Completed, Status Success, Health Summary)",
       remediation="A GPU whose fabric state is not Completed/Success is not part of the NVLink fabric: check "
                   "nvidia-fabricmanager's journal (version mismatch, 'Insufficient Resources'), then restart the fabric "
                   "manager or reset the GPUs. A Health Summary 'Unhealthy' (GB200/GB300 multi-node NVLink) means degraded "
                   "bandwidth or routes under recovery: drain the node and check the NVLink switch trays (NMX) before "
                   "scheduling multi-node NVLink jobs on it.",
       na_when="`nvidia-smi -q` was read for every GPU and shows no Fabric section, or Fabric State N/A / Not Supported")
def fabric_state(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    gpus = tuple(node.gpus or ())
    if not gpus:
        yield ctx.unknown(node, "no GPUs reported: fabric state cannot be judged")
        return
    fabric = [g for g in gpus if g.fabric_state and not g.fabric_state.startswith(_FABRIC_ABSENT)]
    unread = [g for g in gpus if g.q_sections is None]
    if not fabric and not unread:
        shown = sorted({g.fabric_state.split(" / ")[0] for g in gpus if g.fabric_state})
        why = (f"Fabric State {', '.join(shown)}" if shown else "no Fabric section")
        why += " in `nvidia-smi -q` for every GPU"
        yield ctx.na(node, f"{why}: not an NVLink-fabric (NVSwitch / multi-node NVLink) system")
        return
    in_fabric, not_read = {id(g) for g in fabric}, {id(g) for g in unread}  # identity: GpuFacts == is field by field
    for g in gpus:
        if id(g) in in_fabric:
            yield _judge_fabric(node, g, ctx)
        elif id(g) in not_read:
            why = node.missing.get("smi_q") or "nvidia-smi -q has no block for this GPU"
            yield ctx.unknown(node, f"{g.ref}: fabric state not read ({why})", subject=g.ref)
        elif fabric:  # -q read, no fabric for this GPU while its peers have one
            yield ctx.unknown(node, f"{g.ref}: no fabric state ({g.fabric_state or 'no Fabric section'}) while other "
                                    "GPUs of this node report one", subject=g.ref)


def _judge_fabric(node: NodeFacts, g: GpuFacts, ctx: CheckContext) -> Finding:
    """State/Status first (registration), then the Health block (GB200/GB300); an unknown Health value is `error`."""
    evidence = tuple(e for e in g.evidence if "Fabric" in e)
    base = dict(subject=g.ref, expected="Completed / Success, Health not Unhealthy",
                expected_source="nvidia-smi -q Fabric section", evidence=evidence)
    if g.fabric_state != "Completed / Success":
        return ctx.fail(node, f"{g.ref} fabric {g.fabric_state}", observed=g.fabric_state, hint=ctx.spec.remediation,
                        **base)
    verdict, rows = health_verdict(dict(g.fabric_health_fields))
    if verdict == "unhealthy":
        return ctx.fail(node, f"{g.ref} fabric registered but unhealthy: {'; '.join(rows)}",
                        observed=f"{g.fabric_state}; Health {'; '.join(rows)}", hint=ctx.spec.remediation, **base)
    if verdict == "unknown":
        return ctx.unknown(node, f"{g.ref} fabric {g.fabric_state}, but its Health rows are not values preflight knows "
                                 f"({'; '.join(rows)}): not judged healthy", subject=g.ref, evidence=evidence,
                           observed=f"{g.fabric_state}; Health {'; '.join(rows)}")
    health = "Health Summary Healthy" if verdict == "healthy" else "no Health summary reported"
    return ctx.ok(node, f"{g.ref} fabric {g.fabric_state}, {health}", observed=f"{g.fabric_state}; {health}", **base)
