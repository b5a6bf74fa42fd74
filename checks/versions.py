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
