"""Host limits that break NCCL in practice: /dev/shm size, memlock, GPUDirect RDMA module."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import NodeFacts
from preflight.registry import CheckContext, check
from preflight.results import Finding, Status

GIB = 1024**3
_NCCL_TROUBLESHOOTING = "NVIDIA NCCL docs, Troubleshooting: Docker (shared memory, --shm-size=1g --ulimit memlock=-1)"


@check(id="memory.shm", group="memory", needs=("memory",),
       summary="/dev/shm is large enough for NCCL's shared-memory transport (inventory shm_gib_min, else 1 GiB); Docker's 64 MB default breaks it",
       remediation="Run containers with `--shm-size=16g` (or `--ipc=host`); on Kubernetes mount an emptyDir with medium: Memory at /dev/shm.",
       thresholds={"min_gib": 1.0}, threshold_sources={"min_gib": _NCCL_TROUBLESHOOTING})
def shm_size(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    size = node.memory.shm_size_bytes if node.memory else None
    pinned, source = ctx.expected(node, "shm_gib_min")
    minimum, src = (float(pinned), source) if pinned is not None else ctx.threshold("min_gib")
    if node.memory is not None and node.memory.shm_absent:
        yield ctx.fail(node, observed="no /dev/shm",
                       expected=f">= {minimum:g} GiB", expected_source=src,
                       msg="/dev/shm does not exist: NCCL's shared-memory transport cannot create its segments",
                       hint=ctx.spec.remediation)
    elif size is None:
        yield ctx.unknown(node, "/dev/shm size not reported (statvfs of /dev/shm failed or was not collected)")
    elif size < float(minimum) * GIB:
        yield ctx.fail(node, observed=f"{size / GIB:.2f} GiB",
                       expected=f">= {minimum:g} GiB", expected_source=src, msg=f"/dev/shm is only {size / GIB:.2f} GiB",
                       hint=ctx.spec.remediation)
    else:
        yield ctx.ok(node, observed=f"{size / GIB:.1f} GiB",
                     expected=f">= {minimum:g} GiB", expected_source=src)


@check(id="memory.memlock", group="memory", needs=("memory",),
       summary="The locked-memory limit is unlimited (or at least min_gib_when_limited) on nodes with IB/RoCE ports (RDMA registers GPU and host buffers)",
       remediation="Set `* - memlock unlimited` in /etc/security/limits.conf (and LimitMEMLOCK=infinity for systemd/slurmd); in containers `--ulimit memlock=-1`.",
       thresholds={"min_gib_when_limited": 16.0},
       threshold_sources={"min_gib_when_limited": "aws-samples/awsome-distributed-training health-check README (ulimit -l >= 16 GiB), via shared/reference/thresholds.md"})
def memlock(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    mem = node.memory
    if mem is None or mem.memlock_unlimited is None:
        yield ctx.unknown(node, "memlock limit not reported (RLIMIT_MEMLOCK not collected)")
        return
    has_rdma = bool(node.ib)
    if mem.memlock_unlimited:
        yield ctx.ok(node, observed="unlimited", expected="unlimited")
        return
    limit = mem.memlock_bytes or 0
    floor, src = ctx.threshold("min_gib_when_limited")
    status = Status.FAIL if has_rdma and limit < float(floor) * GIB else Status.PASS
    yield ctx.finding(node, status, observed=f"{limit / GIB:.3g} GiB",
                      expected="unlimited" + (f" (at least {floor:g} GiB)" if has_rdma else " (no RDMA ports: not required)"),
                      expected_source=src, msg=f"memlock limited to {limit / GIB:.3g} GiB" + (" on an RDMA node" if has_rdma else ""),
                      hint=ctx.spec.remediation if has_rdma else None)


@check(id="ib.gpudirect", group="ib", needs=("ib", "peermem"),
       summary="GPUDirect RDMA is possible on nodes with IB/RoCE ports: the nvidia_peermem module is loaded (or NCCL uses dma-buf, kernel >= 5.12 with the open driver)",
       remediation="`modprobe nvidia_peermem` (ships with the driver) and add it to /etc/modules-load.d; without it NCCL bounces through host memory (NET/IB without GDRDMA).",
       na_when="the node has no IB/RoCE ports")
def gpudirect(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    if not node.ib:
        yield ctx.na(node, "no IB/RoCE ports on this node: GPUDirect RDMA does not apply")
    elif node.peermem:
        yield ctx.ok(node, observed="nvidia_peermem loaded")
    else:
        yield ctx.warn(node, observed="nvidia_peermem not loaded",
                       expected="loaded (or dma-buf)", msg="nvidia_peermem is not loaded: GPUDirect RDMA needs it unless NCCL uses dma-buf",
                       evidence=("/sys/module/nvidia_peermem: absent",), hint=ctx.spec.remediation)
