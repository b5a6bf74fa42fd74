"""Judge a bundle: parse every node, run the selected checks, assemble the report.

Live runs and replays take the same path (`judge`), so a saved bundle reproduces the live
verdicts exactly. No I/O here: this is a pure function of the bundle and the check set.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fnmatch
import gc
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import checks as _builtin_checks  # importing the package registers every built-in check with preflight.registry
from preflight import __version__
from preflight.collect.bundle import Bundle, NodeRaw
from preflight.facts import FleetFacts, NodeFacts
from preflight.inventory.fields import ack_matches
from preflight.merge import fleet_dependent, mark_partial, partial_reason
from preflight.parse.node import build_node_facts
from preflight.registry import ACCEPT_HINT, CheckContext, CheckSpec, all_checks, select_checks
from preflight.results import Finding, NodeReport, RunReport, Status

if getattr(_builtin_checks, "__file__", None) is None:  # a namespace package named `checks` shadows ours
    raise ImportError(f"the `checks` package found is not preflight's ({list(getattr(_builtin_checks, '__path__', []))}); "
                      "reinstall preflight (pip install -e .) or run from its checkout")

# `all_checks` and `select_checks` are re-exported: importing them from here guarantees the built-ins are registered.
__all__ = ["all_checks", "judge", "select_checks"]


def _needs_unmet(spec: CheckSpec, node: NodeFacts) -> Finding | None:
    """A needed fact is absent: `skip` when it provably does not apply, else `error` (never a pass)."""
    for key in spec.needs:
        if getattr(node, key, None) is None:
            reason = node.missing.get(key, "not collected")
            if key in node.not_applicable:
                return Finding(check=spec.id, node=node.name, status=Status.SKIP, msg=f"does not apply: {reason}")
            return Finding(check=spec.id, node=node.name, status=Status.ERROR, msg=f"no {key} facts: {reason}",
                           hint=ACCEPT_HINT)
    return None


def _acceptance(spec: CheckSpec, node: NodeFacts) -> tuple[str, str] | None:
    """(why, who said so) when the operator accepted this check's gap on this node, by check id/glob or fact key."""
    accepted = node.expect.get("accept")
    if not isinstance(accepted, dict):
        return None
    for key, why in accepted.items():
        if fnmatch.fnmatchcase(spec.id, str(key)) or key in spec.needs or key == spec.group:
            return str(why), node.expect_sources.get(f"accept.{key}", node.expect_sources.get("accept", "inventory"))
    return None


def _apply_accept(spec: CheckSpec, node: NodeFacts | None, findings: list[Finding]) -> list[Finding]:
    """An `error` (could not judge) the operator accepted becomes `accepted`, saying who accepted it and why.

    Only gaps are accepted: a pass, warn or fail stays what it is, and so does a crashed check.
    """
    if node is None or not any(f.status == Status.ERROR for f in findings):
        return findings
    acc = _acceptance(spec, node)
    if acc is None:
        return findings
    why, who = acc
    return [dataclasses.replace(f, status=Status.ACCEPTED, hint=None, expected_source=who,
                                msg=f"accepted ({who}): {why}; not judged: {f.msg}")
            if f.status == Status.ERROR and not f.msg.startswith("check crashed") else f for f in findings]


def _acks_for(spec: CheckSpec, node: NodeFacts, extra: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The acknowledgements naming this check on this node: the inventory's (already the node's) and --ack's."""
    own = [a for a in node.expect.get("acknowledge") or () if isinstance(a, Mapping)]
    own += [a for a in extra if ack_matches(a.get("nodes"), node.name, node.groups)]
    return [a for a in own if fnmatch.fnmatchcase(spec.id, str(a.get("check"))) or a.get("check") == spec.group]


def _apply_ack(spec: CheckSpec, node: NodeFacts | None, findings: list[Finding],
               extra: Sequence[Mapping[str, Any]], today: str) -> list[Finding]:
    """A judged `fail`/`warn` someone acknowledged becomes `accepted` with `acknowledged` = who, why, until when
    and what it was; once the acknowledgement has expired (its `expires` day is past) the finding fails, saying
    so. Only judged verdicts are acknowledged: a pass stays a pass, an error (could not judge) stays an error."""
    if node is None or not any(f.status in (Status.FAIL, Status.WARN) for f in findings):
        return findings
    acks = _acks_for(spec, node, extra)
    if not acks:
        return findings
    live = [a for a in acks if str(a.get("expires")) >= today]
    ack, expired = (live[0], False) if live else (max(acks, key=lambda a: str(a.get("expires"))), True)
    out = []
    for f in findings:
        if f.status not in (Status.FAIL, Status.WARN):
            out.append(f)
            continue
        info = {"by": ack.get("by"), "reason": ack.get("reason"), "expires": ack.get("expires"),
                "source": ack.get("source"), "status": f.status.value, "expired": expired}
        if expired:
            out.append(dataclasses.replace(f, status=Status.FAIL, acknowledged=info,
                                           msg=f"acknowledgement EXPIRED on {info['expires']} (acknowledged by "
                                               f"{info['by']}: {info['reason']}): {f.msg}"))
        else:
            out.append(dataclasses.replace(f, status=Status.ACCEPTED, acknowledged=info, hint=None,
                                           msg=f"acknowledged by {info['by']} until {info['expires']} "
                                               f"({info['reason']}); was {f.status.value}: {f.msg}"))
    return out


def _guard(spec: CheckSpec, produce: Iterable[Finding], node: str | None) -> list[Finding]:
    """A crashing check becomes an `error` finding for that check, never a crashed run."""
    try:
        return list(produce)
    except Exception as exc:
        return [Finding(check=spec.id, node=node, status=Status.ERROR, msg=f"check crashed: {type(exc).__name__}: {exc}")]


class FactsCache:
    """NodeFacts parsed ahead of `judge`, reused only while the node's raw is unchanged.

    A live run (preflight.session) parses each node as it answers, while the others still answer, so
    judging after the last node has nothing left to parse. An entry is used only while
    `raw.facts_key()` (collector output, outcome, expectations, thresholds) is what it was when parsed;
    the entry holds the collector output it was parsed from, so its identity cannot be reused meanwhile.
    """

    def __init__(self) -> None:
        self._by_name: dict[str, tuple[tuple[Any, ...], Any, NodeFacts]] = {}  # one dict op at a time: GIL-safe

    def add(self, raw: NodeRaw) -> None:
        """Parse now; a node that fails to parse is left for `judge` to parse (and report) again."""
        try:
            self._by_name[raw.name] = (raw.facts_key(), raw.collector, build_node_facts(raw))
        except Exception:
            pass

    def facts(self, raw: NodeRaw, memo: dict[Any, Any] | None = None) -> NodeFacts:
        hit = self._by_name.get(raw.name)
        if hit is not None and hit[0] == raw.facts_key():
            return hit[2]
        return build_node_facts(raw, memo)


@contextlib.contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while judging: a judge allocates ~100 findings per node, which makes the
    collector walk the whole heap (the bundle's documents, every node's facts) again and again: 10-30 % of a
    1,000-node judge. Reference counting still frees everything; cycles wait until the judge returns."""
    was_enabled = gc.isenabled()
    if was_enabled:
        gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def judge(bundle: Bundle, specs: list[CheckSpec] | None = None, *, cache: FactsCache | None = None,
          acks: Sequence[Mapping[str, Any]] = (), today: str | None = None,
          share_parses: bool = True) -> tuple[RunReport, FleetFacts]:
    """`acks`: acknowledgements from `--ack` files (with their `nodes` patterns), on top of each node's own;
    `today` (YYYY-MM-DD, default the local date) decides which have expired. `share_parses`: nodes whose
    collector documents are equal are parsed once (`build_node_facts(raw, memo)`); False parses every node."""
    with _cycle_collector_paused():
        return _judge(bundle, specs, cache, acks, today, share_parses)


def _judge(bundle: Bundle, specs: list[CheckSpec] | None, cache: FactsCache | None, acks: Sequence[Mapping[str, Any]],
           today: str | None, share_parses: bool) -> tuple[RunReport, FleetFacts]:
    specs = all_checks() if specs is None else specs
    today = today or datetime.date.today().isoformat()
    memo: dict[Any, Any] | None = {} if share_parses else None
    nodes = tuple(cache.facts(raw, memo) if cache is not None else build_node_facts(raw, memo) for raw in bundle.nodes)
    fleet = FleetFacts(nodes=nodes, expect=dict(bundle.inventory.get("expect") or {}))
    by_name = {n.name: n for n in nodes}
    per_node: dict[str, list[Finding]] = {n.name: [] for n in nodes}
    fleet_only: list[Finding] = []
    reachable = fleet.reachable  # a property that filters every node: once, not once per check
    # nodes where neither `_apply_accept` (an `accept` mapping) nor `_apply_ack` (an acknowledgement) can change a finding
    plain = set() if acks else {n.name for n in nodes
                                if not isinstance(n.expect.get("accept"), dict) and not n.expect.get("acknowledge")}
    for spec in specs:
        produced: dict[str, list[Finding]] = {}
        if spec.scope == "node":
            for node in reachable:
                unmet = _needs_unmet(spec, node)
                if unmet is not None:
                    produced.setdefault(node.name, []).append(unmet)
                    continue
                ctx = CheckContext(spec=spec, fleet=fleet, node=node)
                produced.setdefault(node.name, []).extend(_guard(spec, spec.fn(node, ctx), node.name))
        else:
            ready = []
            for node in reachable:
                unmet = _needs_unmet(spec, node)
                if unmet is not None:
                    produced.setdefault(node.name, []).append(unmet)
                else:
                    ready.append(node)
            sub = FleetFacts(nodes=tuple(ready), expect=fleet.expect)
            ctx = CheckContext(spec=spec, fleet=sub)
            for f in _guard(spec, spec.fn(sub, ctx), None):
                if f.node in per_node:
                    produced.setdefault(f.node, []).append(f)
                else:
                    fleet_only.append(f)
        for name, found in produced.items():
            node_facts = by_name.get(name)
            if name in plain:  # nothing accepted, nothing acknowledged on this node: the findings stay as they are
                per_node[name].extend(found)
                continue
            per_node[name].extend(_apply_ack(spec, node_facts, _apply_accept(spec, node_facts, found), acks, today))
    reports = tuple(
        NodeReport(
            name=raw.name,
            address=raw.address,
            outcome=raw.outcome,
            message=raw.message,
            duration_s=raw.duration_s,
            findings=tuple(per_node[raw.name]),
        )
        for raw in bundle.nodes
    )
    meta = {
        "tool_version": __version__,
        "bundle_created": bundle.created,
        "bundle_label": bundle.label,
        "judged": time.time(),
        "checks": [s.id for s in specs],
        "inventory": bundle.inventory.get("path"),
    }
    report = RunReport(nodes=reports, fleet_findings=tuple(fleet_only), meta=meta)
    partial = partial_reason(bundle.options)  # a shard, or a merge missing shards: no fleet-wide pass (merge.py)
    return (mark_partial(report, fleet_dependent(specs), partial) if partial else report), fleet

