"""The check registry: checks declare themselves; engines and UIs only read the registry."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from preflight.results import Finding

# Fact keys a check may declare in `needs` (attributes of NodeFacts).
KNOWN_FACTS = frozenset(
    {
        "versions", "gpus", "topology", "nvlink", "ib", "memory", "xid", "nccl_tests", "peermem", "gpu_processes",
        "clock_offset_s", "p2p", "acs", "netifs", "fabricmanager", "resolved", "nvlink_errors",
    }
)
GROUPS = ("versions", "gpu", "nvlink", "topology", "ib", "memory", "nccl", "network")

# Where each fact comes from, and the only evidence that makes its absence "does not apply" (`skip`);
# any other absence (tool missing, timed out, failed, unparseable) makes the checks needing it `error`.
FACT_DOCS: dict[str, tuple[str, str]] = {
    "versions": ("nvidia-smi (CSV, table), /proc/driver/nvidia/version, NVML, ldconfig/libnccl, ofed_info, uname, "
                 "/etc/os-release", "never: each version is judged on its own (see the check)"),
    "gpus": ("nvidia-smi --query-gpu, else the default table; -q, -q -d ECC/PERFORMANCE add per-GPU sections",
             "the inventory says gpus_per_node: 0"),
    "topology": ("nvidia-smi topo -m", "the inventory says gpus_per_node: 0"),
    "nvlink": ("nvidia-smi nvlink -s", "the inventory says gpus_per_node: 0"),
    "nvlink_errors": ("nvidia-smi nvlink -e", "the inventory says gpus_per_node: 0"),
    "p2p": ("nvidia-smi topo -p2p r", "the inventory says gpus_per_node: 0"),
    "fabricmanager": ("systemctl is-active nvidia-fabricmanager, journalctl -u nvidia-fabricmanager",
                      "the inventory says gpus_per_node: 0"),
    "ib": ("ibstat, else /sys/class/infiniband", "neither ibstat ports nor /sys/class/infiniband exist: no IB/RoCE "
           "devices (then the IB checks say so)"),
    "memory": ("/proc/meminfo, statvfs(/dev/shm), RLIMIT_MEMLOCK", "never"),
    "xid": ("dmesg --ctime, else journalctl -k (NVRM/Xid/mlx5 lines only)", "the inventory says gpus_per_node: 0"),
    "nccl_tests": ("all_reduce_perf, run twice (--nccl)", "--nccl was not given (nothing was measured)"),
    "peermem": ("/sys/module/nvidia_peermem", "never (absent means not loaded)"),
    "gpu_processes": ("the nvidia-smi table's Processes section", "the inventory says gpus_per_node: 0"),
    "clock_offset_s": ("the collector's start time against the controller's", "never"),
    "acs": ("lspci -vvv (ACSCtl lines)", "lspci lists the devices and none has an ACS capability"),
    "netifs": ("/sys/class/net", "never"),
    "resolved": ("getaddrinfo of every peer host name on the node", "the inventory names nodes by address"),
}


@dataclass(frozen=True)
class CheckSpec:
    id: str
    group: str
    scope: str  # "node" (fn(node, ctx)) or "fleet" (fn(fleet, ctx))
    needs: tuple[str, ...]
    summary: str
    fn: Callable[..., Iterable[Finding]]
    remediation: str = ""
    thresholds: dict[str, Any] = field(default_factory=dict)  # defaults, overridable per inventory group
    threshold_sources: dict[str, str] = field(default_factory=dict)
    na_when: str = ""  # evidence that makes the check not apply to a node (`skip`), beyond its facts' own


_REGISTRY: dict[str, CheckSpec] = {}


def check(
    *,
    id: str,
    group: str,
    summary: str,
    needs: tuple[str, ...],
    scope: str = "node",
    remediation: str = "",
    thresholds: dict[str, Any] | None = None,
    threshold_sources: dict[str, str] | None = None,
    na_when: str = "",
) -> Callable[[Callable[..., Iterable[Finding]]], Callable[..., Iterable[Finding]]]:
    """Register a check. A duplicate id or an unknown fact key is an import-time error."""

    def deco(fn: Callable[..., Iterable[Finding]]) -> Callable[..., Iterable[Finding]]:
        if id in _REGISTRY:
            raise ValueError(f"duplicate check id {id!r}")
        unknown = set(needs) - KNOWN_FACTS
        if unknown:
            raise ValueError(f"check {id!r} needs unknown facts {sorted(unknown)}")
        if group not in GROUPS:
            raise ValueError(f"check {id!r} has unknown group {group!r}")
        if scope not in ("node", "fleet"):
            raise ValueError(f"check {id!r} has unknown scope {scope!r}")
        _REGISTRY[id] = CheckSpec(
            id=id, group=group, scope=scope, needs=tuple(needs), summary=summary, fn=fn,
            remediation=remediation, thresholds=dict(thresholds or {}), threshold_sources=dict(threshold_sources or {}),
            na_when=na_when,
        )
        return fn

    return deco


def all_checks() -> list[CheckSpec]:
    import checks  # (imports every check module, which registers them)

    if getattr(checks, "__file__", None) is None:  # a namespace package named `checks` shadows ours
        raise ImportError(f"the `checks` package found is not preflight's ({list(getattr(checks, '__path__', []))}); "
                          "reinstall preflight (pip install -e .) or run from its checkout")

    return sorted(_REGISTRY.values(), key=lambda c: c.id)


def select_checks(include: str | None = None, skip: str | None = None) -> list[CheckSpec]:
    """Filter by comma-separated glob patterns (`topology.*,ib.*`); unknown patterns are an error."""
    specs = all_checks()

    def pats(text: str | None) -> list[str]:
        return [p.strip() for p in (text or "").split(",") if p.strip()]

    for p in pats(include) + pats(skip):
        if not any(fnmatch.fnmatchcase(s.id, p) or s.group == p for s in specs):
            raise ValueError(f"--checks/--skip pattern {p!r} matches no check (see `preflight checks`)")
    inc, exc = pats(include), pats(skip)
    out = []
    for s in specs:
        if inc and not any(fnmatch.fnmatchcase(s.id, p) or s.group == p for p in inc):
            continue
        if any(fnmatch.fnmatchcase(s.id, p) or s.group == p for p in exc):
            continue
        out.append(s)
    return out
