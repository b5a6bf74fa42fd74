"""Fleet-wide software versions: every node should run the same driver, CUDA and NCCL."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from preflight.facts import FleetFacts
from preflight.registry import CheckContext, check, consistency
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


# (check id, Versions attribute, inventory expect key, label, summary, remediation, also the finding's hint)
_VERSION_CHECKS = (
    ("versions.driver.consistent", "driver", "driver_version", "driver",
     "Every node runs the same NVIDIA driver (the inventory's pinned version, else the fleet majority)", _MULTI),
    ("versions.cuda.consistent", "cuda", "cuda_version", "CUDA",
     "Every node reports the same CUDA driver API version (nvidia-smi 'CUDA Version')", _MULTI),
    ("versions.nccl.consistent", "nccl", "nccl_version", "NCCL",
     "Every node has the same system NCCL library (libnccl.so.X.Y.Z); unknown when NCCL ships only inside containers",
     "Install one NCCL version fleet-wide (or pin it in the container image) so every rank runs the same protocol."),
    ("versions.ofed.consistent", "ofed", "x_ofed_version", "OFED",
     "Every node runs the same OFED / DOCA-OFED / rdma-core stack (`ofed_info -s`)",
     "Install the same MLNX_OFED/DOCA version everywhere; mixed stacks give IB verbs errors and hangs."),
    ("versions.kernel.consistent", "kernel", "x_kernel", "kernel",
     "Every node runs the same kernel (`uname -r`); a different kernel often means a node missed an image update",
     "Re-image or update the odd node so the driver, OFED and kernel modules match the fleet."),
    ("versions.os.consistent", "os", "x_os", "OS",
     "Every node runs the same OS release (/etc/os-release PRETTY_NAME)",
     "Re-image the odd node from the fleet's base image."),
)


_GPU_ATTRS = ("driver", "cuda", "nccl")


def _not_applicable(fleet: FleetFacts, attr: str) -> dict[str, str]:
    """Nodes where this version does not exist by evidence: no GPUs declared (driver/CUDA/NCCL), no IB ports (OFED)."""
    out: dict[str, str] = {}
    for n in fleet.reachable:
        if attr in _GPU_ATTRS and "gpus" in n.not_applicable:
            out[n.name] = n.missing.get("gpus", "no GPUs on this node")
        elif attr == "ofed" and n.ib == ():
            out[n.name] = "no IB/RoCE devices on this node"
    return out


def _same(attr: str, key: str, label: str, hint: str) -> Callable[[FleetFacts, CheckContext], Iterator[Finding]]:
    def fn(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
        values, evidence = _versions(fleet, attr)
        yield from consistency(fleet, ctx, key, values, label=label, hint=hint, evidence=evidence,
                               not_applicable=_not_applicable(fleet, attr))

    return fn


for _id, _attr, _key, _label, _summary, _fix in _VERSION_CHECKS:
    check(id=_id, group="versions", scope="fleet", needs=("versions",), summary=_summary, remediation=_fix,
          na_when={"driver": "the inventory says gpus_per_node: 0", "cuda": "the inventory says gpus_per_node: 0",
                   "nccl": "the inventory says gpus_per_node: 0", "ofed": "the node has no IB/RoCE devices"}.get(_attr, ""))(
        _same(_attr, _key, _label, _fix))


@check(id="versions.vbios.consistent", group="versions", scope="fleet", needs=("gpus",),
       summary="Every node's GPUs run the same VBIOS as the fleet majority (nvidia-smi vbios_version / -q VBIOS Version)",
       remediation="Flash the fleet's VBIOS (nvflash, or the OEM's firmware bundle); mixed VBIOS changes clocks, power limits and NVLink behaviour.")
def vbios_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values = {n.name: (" + ".join(sorted({g.vbios_version for g in n.gpus or () if g.vbios_version})) or None)
              for n in fleet.reachable}
    yield from consistency(fleet, ctx, "x_vbios", values, label="VBIOS", hint=ctx.spec.remediation)
