"""The check-authoring API and the check registry: checks declare themselves; engines and UIs only read it.

A check module imports this module (plus `preflight.facts` and `preflight.results`) and nothing above
it: `@check`, `CheckContext` (thresholds, expectations and the `ok/warn/fail/skip/na/unknown` finding
helpers), `consistency` (the fleet-majority logic) and the few reference look-ups checks need.

This module is a leaf on purpose: it imports neither `checks`, nor `preflight.engine`, nor
`preflight.parse`. `preflight.engine` imports the built-in `checks` package (which registers them
here), so whoever judges has them; `all_checks()` only reads what is registered. Were the registry
to import the checks, every check module importing the registry would close a circle
(checks -> registry -> checks), hidden only by function-level imports.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from preflight.facts import P2P_STATUS, FleetFacts, NodeFacts, describe_xid, health_verdict, majority
from preflight.ib_link import EFFECTIVE_BER_FAIL, RAW_BER_FAIL_FEC, SRC_IBDIAG, SRC_IEEE_PREFEC, judge_port
from preflight.reference import gpu_spec_for
from preflight.results import Finding, Status

__all__ = [
    "ACCEPT_HINT", "EFFECTIVE_BER_FAIL", "FACT_DOCS", "GROUPS", "KNOWN_FACTS", "P2P_STATUS", "RAW_BER_FAIL_FEC",
    "SRC_IBDIAG", "SRC_IEEE_PREFEC", "CheckContext", "CheckSpec", "all_checks", "check", "consistency",
    "describe_xid", "gpu_spec_for", "health_verdict", "judge_port", "select_checks",
]

# Fact keys a check may declare in `needs` (attributes of NodeFacts).
KNOWN_FACTS = frozenset(
    {
        "versions", "gpus", "topology", "nvlink", "ib", "memory", "xid", "nccl_tests", "peermem", "gpu_processes",
        "clock_offset_s", "p2p", "acs", "netifs", "fabricmanager", "resolved", "nvlink_errors",
        "dcgm", "copy_bw", "ib_loopback", "link_quality",
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
    "dcgm": ("dcgmi diag -r 1 (--level quick), -r 2 (standard), -r 3 (deep)",
             "the level runs no DCGM diagnostic, or at --level quick DCGM is not installed"),
    "copy_bw": ("nvbandwidth -t host_to_device_memcpy_ce / device_to_host_memcpy_ce / device_to_device_memcpy_read_ce "
                "(--level standard, deep)", "the level runs no copy test (quick)"),
    "ib_loopback": ("ib_write_bw server + client per HCA on the node, 8 MiB, GPUDirect when nvidia_peermem is loaded "
                    "(--level standard, deep)", "the level runs no loopback test (quick), or the node has no IB/RoCE HCA"),
    "link_quality": ("mlxlink -d DEV -p PORT -m -c --json per /sys/class/infiniband port (run --mlxlink; preflight "
                     "hang always)", "--mlxlink was not given, or the node has no /sys/class/infiniband"),
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
    """Every registered check, by id. The built-ins register when `preflight.engine` is imported.

    An empty registry is an error, not "no checks": it means nothing loaded the built-ins (import
    `all_checks` from `preflight.engine`, or import `preflight.engine` first), and an empty check set
    would judge every node as "nothing judged".
    """
    if not _REGISTRY:
        raise RuntimeError("no checks are registered: import preflight.engine (it loads the built-in checks) "
                           "before asking for the check set")
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


ACCEPT_HINT = ("Fix the probe (install the tool, give it time, run with the rights it needs); or, where this fact "
               "cannot be had by design, say so once: inventory `expect: {accept: {CHECK_OR_FACT: why}}` or "
               "`--accept CHECK_OR_FACT=why`.")


@dataclass
class CheckContext:
    """What a check may know besides facts: its thresholds, where expectations come from, and how to say a verdict.

    The finding helpers fill `check` (this check's id) and `node` (the node judged) themselves, so a
    check states only what it judged.
    """

    spec: CheckSpec
    fleet: FleetFacts
    node: NodeFacts | None = None
    overrides: dict[str, Any] = field(default_factory=dict)

    def finding(self, node: NodeFacts, status: Status, msg: str = "", **kw: Any) -> Finding:
        """A finding of this check on `node` with the status given (for a status computed by the check)."""
        return Finding(check=self.spec.id, node=node.name, status=status, msg=msg, **kw)

    def ok(self, node: NodeFacts, msg: str = "", **kw: Any) -> Finding:
        """Judged and healthy: `pass`."""
        return Finding(check=self.spec.id, node=node.name, status=Status.PASS, msg=msg, **kw)  # most findings

    def warn(self, node: NodeFacts, msg: str = "", **kw: Any) -> Finding:
        """Judged: worth a look, not proven broken."""
        return self.finding(node, Status.WARN, msg, **kw)

    def fail(self, node: NodeFacts, msg: str = "", **kw: Any) -> Finding:
        """Judged and broken, on the evidence given."""
        return self.finding(node, Status.FAIL, msg, **kw)

    def skip(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """`skip` with the reason given; the same finding as `na` (the name checks use for "does not apply")."""
        return self.finding(node, Status.SKIP, msg, **kw)

    def na(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """This check does not apply to this node, for the reason given (`skip`): never a gap in the evidence."""
        return self.skip(node, msg, **kw)

    def error(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """`error` exactly as given (no default hint): the check could not judge, for a reason it explains."""
        return self.finding(node, Status.ERROR, msg, **kw)

    def unknown(self, node: NodeFacts, msg: str, **kw: Any) -> Finding:
        """This check applies but cannot judge this node (a fact missing, partial or unparseable): `error`."""
        kw.setdefault("hint", ACCEPT_HINT)
        return self.error(node, msg, **kw)

    def threshold(self, name: str) -> tuple[Any, str]:
        """(value, source) of a threshold: inventory override, else the check's documented default."""
        if self.node is not None:
            per = self.node.thresholds.get(self.spec.id, {})
            if isinstance(per, dict) and name in per:
                return per[name], f"inventory thresholds.{self.spec.id}.{name}"
        if name in self.overrides:
            return self.overrides[name], "inventory thresholds"
        return self.spec.thresholds.get(name), self.spec.threshold_sources.get(name, f"default of {self.spec.id}")

    def expected(self, node: NodeFacts, key: str) -> tuple[Any, str | None]:
        """A pinned expectation for this node from the inventory, with its source; (None, None) if unpinned."""
        value = node.expect.get(key)
        if value is None:
            return None, None
        return value, node.expect_sources.get(key, "inventory")


def consistency(
    fleet: FleetFacts,
    ctx: CheckContext,
    key: str,
    values: dict[str, Any],
    *,
    label: str,
    hint: str,
    evidence: dict[str, tuple[str, ...]] | None = None,
    not_applicable: dict[str, str] | None = None,
) -> list[Finding]:
    """Shared logic of fleet consistency checks: pinned value if the inventory has one, else majority.

    Each reachable node gets one finding; a mismatch names the value → nodes table in `msg`. A node
    without a value is `error` (unknown is never consistent) unless `not_applicable` gives the reason
    the value does not exist there (e.g. no HCA firmware on a node without IB ports): then `skip`.
    """
    not_applicable = not_applicable or {}
    out: list[Finding] = []
    evidence = evidence or {}
    maj = majority(values)
    groups: dict[Any, list[str]] = {}
    for name, v in values.items():
        groups.setdefault(v, []).append(name)
    table = "; ".join(f"{v if v is not None else 'unknown'} → {', '.join(sorted(ns))}" for v, ns in groups.items())
    known = sum(1 for v in values.values() if v is not None)
    for node in fleet.reachable:
        observed = values.get(node.name)
        pinned, source = ctx.expected(node, key)
        if pinned is not None:
            expected, exp_source = pinned, source
        elif maj is not None:
            expected = maj[0]
            exp_source = f"fleet majority ({maj[1]} of {known} nodes)"
        else:
            expected, exp_source = None, None
        if observed is None:
            if node.name in not_applicable:
                out.append(ctx.na(node, f"does not apply: {not_applicable[node.name]}"))
                continue
            reason = node.missing.get(key, f"{label} not reported")
            out.append(ctx.unknown(node, f"{label} unknown: {reason}", expected=expected, expected_source=exp_source))
            continue
        if expected is None or str(observed) == str(expected):
            out.append(ctx.ok(node, f"{label} {observed}", observed=observed, expected=expected,
                              expected_source=exp_source, evidence=evidence.get(node.name, ())))
        else:
            out.append(ctx.fail(node, f"{label} {observed} differs from {expected} ({exp_source}); fleet: {table}",
                                observed=observed, expected=expected, expected_source=exp_source,
                                evidence=evidence.get(node.name, ()), hint=hint))
    return out
