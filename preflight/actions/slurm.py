"""Slurm drain and resume, as argv lists (never a shell line), from the one verdict.

- drain: every node the verdict excludes (`plan.judged_fleet.exclusions`, the planner's list), with the reason
  `preflight: <check id> <short observed>` (sanitised to plain printable text, capped at REASON_MAX);
  a node already drained by someone else keeps that person's reason (never overwritten).
- resume: a node that now passes AND is drained with a reason preflight wrote (it starts with `preflight:`).
  A node drained by a person is never resumed.

`parse_show_node` reads `scontrol show node -o` (one line per node) into NodeState.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from preflight.actions.suggest import node_action
from preflight.plan.judged_fleet import exclusions
from preflight.results import NodeReport, RunReport

REASON_PREFIX = "preflight:"
REASON_MAX = 160  # characters; Slurm keeps longer reasons, but sinfo/squeue columns cut them anyway
_SAFE = re.compile(r"[^A-Za-z0-9 ._:/,+=()%@#\[\]-]")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_STAMP = re.compile(r"\s*\[[^\[\]]*@[^\[\]]*\]\s*$")  # the ` [user@2024-01-01T00:00:00]` scontrol appends


@dataclass(frozen=True)
class NodeState:
    name: str
    state: str  # as scontrol prints it: IDLE, IDLE+DRAIN, DOWN+DRAIN, MIXED+DRAIN ...
    reason: str = ""

    @property
    def drained(self) -> bool:
        return "DRAIN" in self.state.upper().split("+") or self.state.upper().startswith("DRAIN")

    @property
    def ours(self) -> bool:
        return self.reason.startswith(REASON_PREFIX)


@dataclass(frozen=True)
class Action:
    node: str
    verb: str  # drain | resume | skip
    argv: tuple[str, ...] = ()
    why: str = ""

    def line(self) -> str:
        return shlex.join(self.argv) if self.argv else f"# {self.node}: {self.why}"


def sanitise(text: str, limit: int = REASON_MAX) -> str:
    """Plain printable text on one line: no quotes, no control or shell characters, at most `limit` chars."""
    flat = " ".join(_SAFE.sub(" ", str(text).replace("×", "x")).split())
    return flat if len(flat) <= limit else flat[: limit - 3].rstrip() + "..."


def drain_reason(node: NodeReport) -> str:
    """`preflight: <check id> <short observed>` from the finding behind the node's verdict."""
    if node.outcome != "ok":
        return sanitise(f"{REASON_PREFIX} {node.outcome} {node.message}")
    bad = [f for f in node.findings if f.status == node.status]
    if not bad:
        return sanitise(f"{REASON_PREFIX} {node.reason}")
    first = bad[0]
    observed = first.observed if isinstance(first.observed, (str, int, float)) and str(first.observed) else first.msg
    subject = f"{first.subject}: " if first.subject and first.subject not in str(observed) else ""
    more = len({f.check for f in bad}) - 1
    return sanitise(f"{REASON_PREFIX} {first.check} {subject}{observed}" + (f" (+{more} more)" if more else ""))


def scontrol_drain(name: str, reason: str, scontrol: str = "scontrol") -> tuple[str, ...]:
    return (scontrol, "update", f"nodename={name}", "state=drain", f"reason={reason}")


def scontrol_resume(name: str, scontrol: str = "scontrol") -> tuple[str, ...]:
    return (scontrol, "update", f"nodename={name}", "state=resume")


def plan_drain(report: RunReport, states: Mapping[str, NodeState] | None = None,
               scontrol: str = "scontrol") -> list[Action]:
    """One drain per excluded node; a node someone else drained keeps its reason (skip, with why)."""
    excluded = exclusions(report)
    now = states or {}
    out = []
    for node in report.nodes:
        if node.name not in excluded:
            continue
        if not _NAME.match(node.name):
            out.append(Action(node.name, "skip", why="not a plain Slurm node name; not passed to scontrol"))
            continue
        cur = now.get(node.name)
        if cur is not None and cur.drained and not cur.ours:
            out.append(Action(node.name, "skip", why=f"already drained by someone else ({sanitise(cur.reason, 80)})"))
            continue
        reason = drain_reason(node)
        out.append(Action(node.name, "drain", scontrol_drain(node.name, reason, scontrol),
                          why=f"{node_action(node)}: {node.reason}"))
    return out


def plan_resume(report: RunReport, states: Mapping[str, NodeState], scontrol: str = "scontrol") -> list[Action]:
    """Resume each node that passes now and is drained with preflight's own reason; say why for the others."""
    excluded = exclusions(report)
    out = []
    for node in report.nodes:
        cur = states.get(node.name)
        if cur is None or not cur.drained:
            continue
        if not cur.ours:
            out.append(Action(node.name, "skip", why=f"drained by someone else, left drained ({sanitise(cur.reason, 80)})"))
        elif node.name in excluded:
            out.append(Action(node.name, "skip", why=f"still failing: {excluded[node.name]}"))
        elif _NAME.match(node.name):
            out.append(Action(node.name, "resume", scontrol_resume(node.name, scontrol), why="passes now"))
    return out


def parse_show_node(text: str) -> dict[str, NodeState]:
    """`scontrol show node -o` output -> {name: NodeState}; lines without NodeName= are ignored."""
    out = {}
    for line in text.splitlines():
        m = re.search(r"(?:^|\s)NodeName=(\S+)", line)
        if not m:
            continue
        state = re.search(r"(?:^|\s)State=(\S+)", line)
        reason = ""
        r = re.search(r"(?:^|\s)Reason=(.*)$", line)
        if r and r.group(1).strip() not in ("(null)", ""):
            reason = _STAMP.sub("", r.group(1)).strip()
        out[m.group(1)] = NodeState(m.group(1), state.group(1) if state else "", reason)
    return out


def names_of(report: RunReport) -> Iterable[str]:
    return [n.name for n in report.nodes if _NAME.match(n.name)]
