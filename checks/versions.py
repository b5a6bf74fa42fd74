"""Fleet-wide software versions: every node should run the same driver, CUDA and NCCL."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.engine import CheckContext, consistency
from preflight.facts import FleetFacts
from preflight.registry import check
from preflight.results import Finding

_MULTI = "Multi-node NCCL jobs need identical versions on every node; upgrade or pin the odd nodes, then reboot or reload the module."


def _versions(fleet: FleetFacts, attr: str) -> tuple[dict[str, object], dict[str, tuple[str, ...]]]:
    values: dict[str, object] = {}
    evidence: dict[str, tuple[str, ...]] = {}
    for n in fleet.reachable:
        v = getattr(n.versions, attr, None) if n.versions else None
        values[n.name] = v
        if n.versions and attr in n.versions.evidence:
            evidence[n.name] = (n.versions.evidence[attr],)
    return values, evidence


@check(id="versions.driver.consistent", group="versions", scope="fleet", needs=("versions",),
       summary="Every node runs the same NVIDIA driver (the inventory's pinned version, else the fleet majority)",
       remediation=_MULTI)
def driver_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values, evidence = _versions(fleet, "driver")
    yield from consistency(fleet, ctx, "driver_version", values, label="driver", hint=_MULTI, evidence=evidence)


@check(id="versions.cuda.consistent", group="versions", scope="fleet", needs=("versions",),
       summary="Every node reports the same CUDA driver API version (nvidia-smi 'CUDA Version')",
       remediation=_MULTI)
def cuda_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values, evidence = _versions(fleet, "cuda")
    yield from consistency(fleet, ctx, "cuda_version", values, label="CUDA", hint=_MULTI, evidence=evidence)


@check(id="versions.nccl.consistent", group="versions", scope="fleet", needs=("versions",),
       summary="Every node has the same system NCCL library (libnccl.so.X.Y.Z); unknown when NCCL ships only inside containers",
       remediation="Install one NCCL version fleet-wide (or pin it in the container image) so every rank runs the same protocol.")
def nccl_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values, evidence = _versions(fleet, "nccl")
    yield from consistency(fleet, ctx, "nccl_version", values, label="NCCL", evidence=evidence,
                           hint="Install one NCCL version fleet-wide (or pin it in the container image).")


def _same(attr: str, key: str, label: str, hint: str):
    def fn(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
        values, evidence = _versions(fleet, attr)
        yield from consistency(fleet, ctx, key, values, label=label, hint=hint, evidence=evidence)

    return fn


check(id="versions.ofed.consistent", group="versions", scope="fleet", needs=("versions",),
      summary="Every node runs the same OFED / DOCA-OFED / rdma-core stack (`ofed_info -s`)",
      remediation="Install the same MLNX_OFED/DOCA version everywhere; mixed stacks give IB verbs errors and hangs.")(
    _same("ofed", "x_ofed_version", "OFED", "Install the same MLNX_OFED/DOCA version everywhere."))
check(id="versions.kernel.consistent", group="versions", scope="fleet", needs=("versions",),
      summary="Every node runs the same kernel (`uname -r`); a different kernel often means a node missed an image update",
      remediation="Re-image or update the odd node so the driver, OFED and kernel modules match the fleet.")(
    _same("kernel", "x_kernel", "kernel", "Re-image or update the odd node."))
check(id="versions.os.consistent", group="versions", scope="fleet", needs=("versions",),
      summary="Every node runs the same OS release (/etc/os-release PRETTY_NAME)",
      remediation="Re-image the odd node from the fleet's base image.")(
    _same("os", "x_os", "OS", "Re-image the odd node from the fleet's base image."))


@check(id="versions.vbios.consistent", group="versions", scope="fleet", needs=("gpus",),
       summary="Every node's GPUs run the same VBIOS as the fleet majority (nvidia-smi vbios_version / -q VBIOS Version)",
       remediation="Flash the fleet's VBIOS (nvflash, or the OEM's firmware bundle); mixed VBIOS changes clocks, power limits and NVLink behaviour.")
def vbios_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values = {n.name: (" + ".join(sorted({g.vbios_version for g in n.gpus or () if g.vbios_version})) or None)
              for n in fleet.reachable}
    yield from consistency(fleet, ctx, "x_vbios", values, label="VBIOS", hint=ctx.spec.remediation)
