"""Shards joined: bundles merged into one bundle the engine judges whole, reports joined verdict by verdict.

`preflight run --shard K/N` checks one slice of a fleet (preflight/inventory/shard.py). A slice alone is a
*partial set*: the fleet-wide checks (versions and topology against the fleet majority, the fleet's port
rate, peer-name agreement ...) compare a node with the others, so on a slice they would compare it with a
part of the fleet. `mark_partial` (called by `engine.judge` for every bundle whose shard record lacks a
shard) turns each such verdict that was judged against the fleet into `error` ("not judged across the
fleet"), keeping what the slice alone said in its message; a verdict against a value the inventory pins
stays (it does not depend on the other nodes). So a fleet-wide check never passes on a partial set.

`merge_bundles` joins shards' bundles (raw facts): same selection, same probes, every shard at most once,
every node in exactly its shard. The merged bundle lists the nodes in the selection's order, so
`engine.judge` on it is the unsharded run's judgement; a missing shard's nodes are listed as not collected
(outcome `error`) and its record says which shards are missing, so the merge is judged partial.

`merge_reports` joins JSON reports: per-node verdicts join, but a report holds verdicts, not facts, so the
fleet-wide checks cannot be judged again across shards: they read `error` with the hint to merge bundles.
No I/O here: callers load the files (cli/merge.py) and hand the documents in.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.inventory.shard import METHOD, describe, members, missing_shards, selection_digest, shard_record
from preflight.results import Finding, NodeReport, RunReport, Status

# Node-scope checks whose expectation can come from the other nodes (the fleet's most common port rate);
# tests/unit/test_merge.py keeps this list true against the checks' source.
FLEET_READING_NODE_CHECKS = frozenset({"ib.port.state"})
PARTIAL_PREFIX = "not judged across the fleet"
MERGE_HINT = ("join every shard's bundle with `preflight merge DIR...` (each shard run with --save DIR), or pin the "
              "expectation in the inventory, to judge it across the fleet")
REPORTS_WHY = "merged from JSON reports, which carry verdicts, not the facts to judge again across shards"
REPORTS_HINT = ("could not judge across shards from reports: merge the shards' bundles instead (run each shard with "
                "--save DIR, then `preflight merge DIR1 DIR2 ...`)")
MISSING_TRANSPORT = "merge:missing"  # a placeholder for a node of a shard that was not merged
MISSING_MSG = "not collected in this merge"


class MergeError(ValueError):
    """Shards that cannot be joined: one line naming the inputs and what is wrong."""


def fleet_dependent(specs: Iterable[Any]) -> frozenset[str]:
    """The ids of the checks whose verdict on a node depends on the other nodes."""
    return frozenset(s.id for s in specs if s.scope == "fleet" or s.id in FLEET_READING_NODE_CHECKS)


def partial_reason(options: dict[str, Any]) -> str | None:
    """Why a bundle (its `options`) is a partial set of its selection, or None when it is whole or not a shard."""
    record = options.get("shard")
    if not isinstance(record, dict):
        return None
    missing = missing_shards(record)
    if not missing:
        return None
    n = record.get("n")
    return f"{describe(record)}; shard(s) {', '.join(f'{k}/{n}' for k in missing)} not in this judgement"


def _relative(f: Finding) -> bool:
    """A verdict judged against the other nodes (the fleet majority, the fleet's rate), not a pinned value."""
    return f.expected_source is None or str(f.expected_source).lower().startswith("fleet")


def _marked(f: Finding, why: str, held: int) -> Finding:
    return dataclasses.replace(f, status=Status.ERROR, hint=MERGE_HINT,
                               msg=f"{PARTIAL_PREFIX} ({why}); on these {held} node(s) alone it reads "
                                   f"{f.status.value}: {f.msg}")


def mark_partial(report: RunReport, fleet_checks: frozenset[str], why: str) -> RunReport:
    """Every verdict of a fleet-dependent check judged against the other nodes becomes `error` (see module doc)."""
    held = sum(1 for n in report.nodes if n.outcome == "ok")
    judged = (Status.PASS, Status.WARN, Status.FAIL)

    def fix(findings: Iterable[Finding]) -> tuple[Finding, ...]:
        return tuple(_marked(f, why, held) if f.check in fleet_checks and f.status in judged and _relative(f) else f
                     for f in findings)

    nodes = tuple(dataclasses.replace(n, findings=fix(n.findings)) for n in report.nodes)
    return dataclasses.replace(report, nodes=nodes, fleet_findings=fix(report.fleet_findings),
                               meta={**report.meta, "partial": why})


# ---- joining shards -------------------------------------------------------------------------------------------

def _record_of(where: str, record: Any) -> dict[str, Any]:
    if not isinstance(record, dict) or not record.get("selection_sha256"):
        raise MergeError(f"{where}: not a shard (no shard record: collect it with `preflight run --shard K/N`)")
    if record.get("method") != METHOD:
        raise MergeError(f"{where}: split by {record.get('method')!r}, which this preflight does not join ({METHOD})")
    names = record.get("names")
    if not isinstance(names, list) or selection_digest(str(x) for x in names) != record["selection_sha256"] \
            or len(names) != record.get("total"):
        raise MergeError(f"{where}: its shard record is inconsistent (names do not match their digest or count)")
    return record


def _check_same(records: Sequence[tuple[str, dict[str, Any]]]) -> None:
    first_where, first = records[0]
    for where, rec in records[1:]:
        if rec["selection_sha256"] != first["selection_sha256"] or rec.get("n") != first.get("n"):
            raise MergeError(f"mixed inventories: {first_where} is {describe(first)} (selection "
                             f"{first['selection_sha256'][:12]}), {where} is {describe(rec)} (selection "
                             f"{rec['selection_sha256'][:12]}); join shards cut from one selection with one N")
        a, b = first.get("inventory_sha256"), rec.get("inventory_sha256")
        if a and b and a != b:
            raise MergeError(f"mixed inventories: {first_where} and {where} hold the same hosts but were read from "
                             f"different inventory files (sha256 {a[:12]} vs {b[:12]}): their expectations may differ")


def _check_disjoint(parts: Sequence[tuple[str, dict[str, Any], list[str]]]) -> None:
    """Every shard at most once, every node in exactly one input and in the shard its input holds."""
    seen_shard: dict[int, str] = {}
    seen_node: dict[str, str] = {}
    for where, rec, names in parts:
        for k in rec.get("shards") or ():
            if int(k) in seen_shard:
                raise MergeError(f"shard {k}/{rec.get('n')} given twice: {seen_shard[int(k)]} and {where}")
            seen_shard[int(k)] = where
        for name in names:
            if name in seen_node:
                raise MergeError(f"node {name!r} is in both {seen_node[name]} and {where}: overlapping shards")
            seen_node[name] = where
    for where, rec, names in parts:
        want: set[str] = set()
        for k in rec.get("shards") or ():
            want |= set(_members(rec, int(k)))
        if set(names) != want:
            extra, lost = sorted(set(names) - want), sorted(want - set(names))
            raise MergeError(f"{where}: its nodes are not its shard's ({describe(rec)}): "
                             + "; ".join(x for x in (f"not in it: {', '.join(extra[:5])}" if extra else "",
                                                     f"missing: {', '.join(lost[:5])}" if lost else "") if x))


def _members(record: dict[str, Any], k: int) -> list[str]:
    from preflight.inventory.shard import Shard

    return members([str(x) for x in record["names"]], Shard(k, int(record["n"])))


def _union(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    first = records[0]
    held = [int(k) for rec in records for k in rec.get("shards") or ()]
    sha = next((r["inventory_sha256"] for r in records if r.get("inventory_sha256")), None)
    return shard_record([str(x) for x in first["names"]], held, int(first["n"]), inventory_sha256=sha)


def _held(nodes: Iterable[Any], placeholder: Any) -> list[str]:
    """The names an input holds, less the placeholders a partial merge listed for its missing shards."""
    return [n.name for n in nodes if not placeholder(n)]


def _missing_names(record: dict[str, Any]) -> dict[str, int]:
    return {name: k for k in missing_shards(record) for name in _members(record, k)}


def merge_bundles(items: Sequence[tuple[str, Bundle]]) -> Bundle:
    """Shards' bundles (`(where, bundle)`, `where` names it in errors) -> one bundle of the whole selection.

    Refused (MergeError): an input that is no shard, mixed selections or N, a shard given twice, a node in two
    inputs or outside its shard, different probes. Nodes of missing shards are listed as not collected."""
    if not items:
        raise MergeError("nothing to merge: give the shards' bundles")
    records = [(where, _record_of(where, b.options.get("shard"))) for where, b in items]
    _check_same(records)
    parts = [(where, rec, _held(b.nodes, lambda n: n.transport == MISSING_TRANSPORT))
             for (where, rec), (_w, b) in zip(records, items)]
    _check_disjoint(parts)
    _check_alike(items)
    union = _union([rec for _w, rec in records])
    raws = {n.name: n for (_w, b), (_w2, _r, held) in zip(items, parts) for n in b.nodes if n.name in set(held)}
    missing = _missing_names(union)
    nodes = [raws[name] if name in raws else _placeholder(name, missing[name], int(union["n"]))
             for name in union["names"]]
    first = items[0][1]
    versions = sorted({b.tool_version for _w, b in items})
    options = {k: v for k, v in first.options.items() if k not in ("shard", "merged_from")}
    options["shard"] = union
    options["merged_from"] = [{"input": where, "shards": rec.get("shards"), "created": b.created,
                               "tool_version": b.tool_version, "nodes": len(b.nodes)}
                              for (where, rec), (_w, b) in zip(records, items)]
    return Bundle(nodes=nodes, created=min(b.created for _w, b in items), tool_version=", ".join(versions),
                  inventory=dict(first.inventory), options=options, label="merge")


def _check_alike(items: Sequence[tuple[str, Bundle]]) -> None:
    """The same probes and fleet expectations: otherwise a node's gap would be the run's, not the node's."""
    where0, b0 = items[0]
    for where, b in items[1:]:
        if list(b.options.get("probes") or ()) != list(b0.options.get("probes") or ()):
            raise MergeError(f"{where0} and {where} ran different probes (another --level, --nccl or preflight "
                             "version): run every shard alike")
        if (b.inventory.get("expect") or {}) != (b0.inventory.get("expect") or {}):
            raise MergeError(f"mixed inventories: {where0} and {where} expect different things of the fleet")


def _placeholder(name: str, k: int, n: int) -> NodeRaw:
    return NodeRaw(name=name, address="", port=None, user=None, groups=[], outcome="error",
                   message=f"{MISSING_MSG}: shard {k}/{n} is missing", started=0.0, duration_s=0.0,
                   transport=MISSING_TRANSPORT)


def merge_label(record: dict[str, Any], count: int) -> str:
    """The console line of a merge: what it holds and, when partial, which shards are missing."""
    missing = missing_shards(record)
    head = f"MERGE of {count} input(s): {describe(record)}"
    if not missing:
        return head
    n = record.get("n")
    return (f"{head}. PARTIAL: shard(s) {', '.join(f'{k}/{n}' for k in missing)} missing; their nodes read "
            "'not collected' and the fleet-wide checks are not judged across the fleet")


def shard_label(record: dict[str, Any]) -> str:
    """The console line of one shard's run (or its replay)."""
    if not missing_shards(record):
        return describe(record)
    return (f"SHARD: {describe(record)}. Fleet-wide checks are not judged across the fleet here: join every "
            "shard's bundle with `preflight merge`")


# ---- joining JSON reports -------------------------------------------------------------------------------------

def finding_from_dict(d: dict[str, Any]) -> Finding:
    return Finding(check=str(d["check"]), node=d.get("node"), status=Status(d["status"]), subject=d.get("subject"),
                   observed=d.get("observed"), expected=d.get("expected"), expected_source=d.get("expected_source"),
                   msg=str(d.get("msg") or ""), evidence=tuple(d.get("evidence") or ()), hint=d.get("hint"),
                   acknowledged=d.get("acknowledged"))


def _node_from_dict(d: dict[str, Any]) -> NodeReport:
    return NodeReport(name=str(d["name"]), address=str(d.get("address") or ""), outcome=str(d["outcome"]),
                      message=str(d.get("message") or ""), duration_s=float(d.get("duration_s") or 0.0),
                      findings=tuple(finding_from_dict(f) for f in d.get("findings") or ()))


def merge_reports(items: Sequence[tuple[str, dict[str, Any]]], fleet_checks: frozenset[str]) -> tuple[RunReport, dict[str, Any]]:
    """Shards' JSON reports -> (one report of the selection, the merged shard record).

    Per-node verdicts are joined as they are; the fleet-dependent checks' verdicts judged against the other
    nodes read `error` (REPORTS_HINT): a report has no facts to judge them again across shards."""
    if not items:
        raise MergeError("nothing to merge: give the shards' reports")
    records = [(where, _record_of(where, (doc.get("source") or {}).get("shard"))) for where, doc in items]
    _check_same(records)
    try:
        reports = {where: [_node_from_dict(n) for n in doc.get("nodes") or ()] for where, doc in items}
        fleet_only = [finding_from_dict(f) for _w, doc in items for f in doc.get("fleet_findings") or ()]
    except (KeyError, TypeError, ValueError) as exc:
        raise MergeError(f"a report is malformed: {exc}") from exc
    parts = [(where, rec, _held(reports[where], lambda n: n.outcome == "error" and n.message.startswith(MISSING_MSG)))
             for where, rec in records]
    _check_disjoint(parts)
    union = _union([rec for _w, rec in records])
    by_name = {n.name: n for where, _rec, names in parts for n in reports[where] if n.name in set(names)}
    missing = _missing_names(union)
    nodes = tuple(by_name[name] if name in by_name else _missing_report(name, missing[name], int(union["n"]))
                  for name in union["names"])
    checks = list(dict.fromkeys(c for _w, doc in items for c in doc.get("checks") or ()))
    meta = {"tool_version": ", ".join(sorted({str(doc.get("tool_version")) for _w, doc in items})), "checks": checks}
    report = mark_partial(RunReport(nodes=nodes, fleet_findings=tuple(fleet_only), meta=meta), fleet_checks,
                          REPORTS_WHY)

    def rehint(findings: Iterable[Finding]) -> tuple[Finding, ...]:
        return tuple(dataclasses.replace(f, hint=REPORTS_HINT) if f.check in fleet_checks and f.status == Status.ERROR
                     and f.msg.startswith(PARTIAL_PREFIX) else f for f in findings)

    report = dataclasses.replace(report, nodes=tuple(dataclasses.replace(n, findings=rehint(n.findings))
                                                     for n in report.nodes),
                                 fleet_findings=rehint(report.fleet_findings))
    return report, union


def _missing_report(name: str, k: int, n: int) -> NodeReport:
    return NodeReport(name=name, address="", outcome="error", duration_s=0.0,
                      message=f"{MISSING_MSG}: shard {k}/{n} is missing")


__all__ = ["FLEET_READING_NODE_CHECKS", "MERGE_HINT", "MISSING_TRANSPORT", "PARTIAL_PREFIX", "REPORTS_HINT",
           "MergeError", "finding_from_dict", "fleet_dependent", "mark_partial", "merge_bundles", "merge_label",
           "merge_reports", "partial_reason", "shard_label"]
