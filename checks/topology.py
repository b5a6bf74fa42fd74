"""GPU interconnect: the topology matrix of each node, the same on every node, and NVLink health."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.engine import CheckContext, consistency
from preflight.facts import FleetFacts, NodeFacts
from preflight.reference import gpu_spec_for
from preflight.registry import check
from preflight.results import Finding, Status


@check(id="topology.read", group="topology", needs=("topology",),
       summary="`nvidia-smi topo -m` was read: GPU count, NVLink domain size, GPU↔GPU link types",
       remediation="Run `nvidia-smi topo -m` by hand; a missing matrix usually means the driver is not loaded.")
def topology_read(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    topo = node.topology
    assert topo is not None
    kinds = sorted(set(topo.links.values()))
    msg = f"{topo.gpu_count} GPUs, NVLink domain of {topo.nvlink_domain}, GPU↔GPU links: {', '.join(kinds) or 'none'}"
    gpus = len(node.gpus) if node.gpus is not None else None
    if gpus is not None and gpus != topo.gpu_count and not topo.fragment:
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.FAIL, observed=topo.gpu_count, expected=gpus,
                      expected_source="GPUs listed by nvidia-smi --query-gpu on the same node",
                      msg=f"topology shows {topo.gpu_count} GPUs but nvidia-smi lists {gpus}", evidence=topo.evidence,
                      hint=ctx.spec.remediation)
        return
    status = Status.WARN if topo.fragment else Status.PASS
    yield Finding(check=ctx.spec.id, node=node.name, status=status, observed=msg,
                  msg=msg + (" (matrix incomplete: columns inferred)" if topo.fragment else ""), evidence=topo.evidence[:3])


@check(id="topology.consistent", group="topology", scope="fleet", needs=("topology",),
       summary="Every node has the same GPU↔GPU topology (link type of every GPU pair) as the fleet majority",
       remediation="A node whose matrix differs has a degraded or missing NVLink/NVSwitch path or a GPU in another slot: "
                   "compare `nvidia-smi topo -m` with a good node and reseat, or exclude it from multi-node jobs.")
def topology_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values = {n.name: (n.topology.signature if n.topology else None) for n in fleet.reachable}
    evidence = {n.name: n.topology.evidence[:9] for n in fleet.reachable if n.topology}
    for f in consistency(fleet, ctx, "topology_signature", values, label="topology", evidence=evidence,
                         hint=ctx.spec.remediation):
        if f.status == Status.FAIL:  # the signature is long: keep the message readable
            f = Finding(check=f.check, node=f.node, status=f.status, observed=f.observed, expected=f.expected,
                        expected_source=f.expected_source,
                        msg=f"GPU↔GPU topology differs from the fleet majority ({f.expected_source})",
                        evidence=f.evidence, hint=f.hint)
        yield f


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
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, observed=0, expected=0,
                      expected_source=source, msg="no NVLink on this node (PCIe only)")
        return
    for l in links:
        subject = f"GPU{l.gpu_index}"
        if l.active >= expected:
            yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, subject=subject, observed=l.active,
                          expected=expected, expected_source=source, msg=f"{subject}: {l.active} NVLinks active")
        else:
            down = ", ".join(str(i) for i in l.inactive_links) or "unknown"
            yield Finding(check=ctx.spec.id, node=node.name, status=Status.FAIL, subject=subject,
                          observed=f"{l.active} of {l.total}", expected=f"{expected} active", expected_source=source,
                          msg=f"{subject} has {l.active} of {expected} NVLinks active (down: {down}); TP across this node is unsafe",
                          evidence=l.evidence, hint=ctx.spec.remediation)


@check(id="topology.gpu_nic_affinity", group="topology", needs=("topology",),
       summary="Every GPU has a NIC close to it in the topology matrix (PIX/PXB best; PHB/NODE warn; SYS, across the CPU interconnect, warns) when the node has NICs",
       remediation="GPUDirect RDMA between a GPU and a NIC across the SMP interconnect is slow; check NIC placement and NCCL_IB_HCA, "
                   "or accept it on PCIe servers where that is the design.")
def gpu_nic_affinity(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    topo = node.topology
    assert topo is not None
    if not topo.nic_affinity:
        yield ctx.skip(node, "no NIC columns in the topology matrix")
        return
    rows = topo.matrix.raw_rows if topo.matrix is not None else {}
    far = {g: v for g, v in topo.nic_affinity.items() if v[1] not in ("PIX", "PXB")}
    for g, (nic, kind) in sorted(topo.nic_affinity.items()):
        if g in far:
            yield Finding(check=ctx.spec.id, node=node.name, status=Status.WARN, subject=f"GPU{g}",
                          observed=f"nearest NIC {nic} via {kind}", expected="a NIC at PIX or PXB",
                          expected_source="nvidia-smi topo -m legend (PIX/PXB: same PCIe switch)",
                          msg=f"GPU{g}'s nearest NIC is {nic} via {kind}", evidence=(rows.get(f"GPU{g}", ""),),
                          hint=ctx.spec.remediation)
        else:
            yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, subject=f"GPU{g}",
                          observed=f"{nic} via {kind}")


@check(id="topology.p2p", group="topology", needs=("p2p",),
       summary="Every GPU pair reports CUDA peer-to-peer read access OK (`nvidia-smi topo -p2p r`); vLLM's and SGLang's custom all-reduce kernels need P2P",
       remediation="P2P 'not supported' on a multi-GPU inference node disables the custom all-reduce (slower decode); check IOMMU/ACS "
                   "settings, the platform's P2P support, and that GPUs are not consumer cards without P2P.")
def p2p(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    m = node.p2p
    bad = m.not_ok()
    if not bad:
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, observed=f"OK for all {len(m.gpus)} GPUs")
        return
    from preflight.parse.topo import P2P_STATUS

    pairs = sorted({tuple(sorted((a, b))) + (s,) for a, b, s in bad})
    yield Finding(check=ctx.spec.id, node=node.name, status=Status.WARN, subject=",".join(f"{a}-{b}" for a, b, _ in pairs[:8]),
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
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, observed=f"ACS redirect off on {len(node.acs or ())} bridges")
        return
    yield Finding(check=ctx.spec.id, node=node.name, status=Status.WARN, observed=f"ACS redirect on for {len(on)} of {len(node.acs or ())} bridges",
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
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.SKIP,
                      msg="not an NVSwitch system (by GPU model and count): fabric manager not needed")
    elif state == "active":
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, observed="active")
    else:
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.FAIL, observed=state, expected="active",
                      expected_source=f"reference gpus.yaml {spec['id']} (nvswitch: true)",
                      msg=f"nvidia-fabricmanager is {state} on an NVSwitch system", evidence=lines[:6], hint=ctx.spec.remediation)


@check(id="nvlink.errors", group="nvlink", needs=("nvlink_errors",),
       summary="NVLink error counters (`nvidia-smi nvlink -e`: replay, recovery, CRC) stay at or under their thresholds since the driver loaded",
       remediation="Counters that grow point at a marginal link: reset them (`nvidia-smi nvlink -r`), run an NCCL all-reduce, re-read; "
                   "if they grow again, reseat or RMA the GPU/baseboard and keep TP off this node.",
       thresholds={"Replay Errors": 0, "Recovery Errors": 0, "CRC Errors": 0},
       threshold_sources={k: "preflight default: any error since driver load is worth a look (stas00/ml-engineering debug.md "
                             "recommends checking these counters)" for k in ("Replay Errors", "Recovery Errors", "CRC Errors")})
def nvlink_errors(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    for gpu, links in sorted((node.nvlink_errors or {}).items()):
        over = []
        for link, counters in sorted(links.items()):
            for name, value in counters.items():
                limit, _ = ctx.threshold(name)
                if limit is not None and value > int(limit):
                    over.append(f"Link {link}: {name}: {value}")
        if over:
            yield Finding(check=ctx.spec.id, node=node.name, status=Status.WARN, subject=f"GPU{gpu}",
                          observed="; ".join(over[:6]), expected="0 errors", expected_source=ctx.threshold("CRC Errors")[1],
                          msg=f"GPU{gpu}: {len(over)} NVLink error counters above threshold", evidence=tuple(over[:12]),
                          hint=ctx.spec.remediation)
        else:
            yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, subject=f"GPU{gpu}",
                          observed=f"{len(links)} links, no errors")


@check(id="nvlink.fabric_state", group="nvlink", needs=("gpus",),
       summary="On NVSwitch systems every GPU's fabric registration completed successfully (`nvidia-smi -q` Fabric State Completed, Status Success)",
       remediation="A GPU whose fabric state is not Completed/Success is not part of the NVLink fabric: check nvidia-fabricmanager's journal "
                   "(version mismatch, 'Insufficient Resources'), then restart the fabric manager or reset the GPUs.")
def fabric_state(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    gpus = [g for g in node.gpus or () if g.fabric_state and not g.fabric_state.startswith("N/A")]
    if not gpus:
        yield ctx.skip(node, "no fabric state reported (not an NVSwitch system, or no nvidia-smi -q)")
        return
    for g in gpus:
        ok = g.fabric_state == "Completed / Success"
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS if ok else Status.FAIL, subject=g.ref,
                      observed=g.fabric_state, expected="Completed / Success", expected_source="nvidia-smi -q Fabric section",
                      msg=f"{g.ref} fabric {g.fabric_state}",
                      evidence=tuple(e for e in g.evidence if "Fabric" in e), hint=None if ok else ctx.spec.remediation)
