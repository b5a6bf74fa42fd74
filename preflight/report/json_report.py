"""The versioned JSON report (schema: preflight/report/schema.json, documented in docs/json-schema.md)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any, overload

from preflight.actions.suggest import node_action, suggestion
from preflight.results import Finding, NodeReport, RunReport, Status, exit_code, worst

SCHEMA_ID = "preflight-report"
SCHEMA_VERSION = 1


def node_dict(n: NodeReport) -> dict[str, Any]:
    """One node of the report as the schema has it."""
    return {
        "name": n.name,
        "address": n.address,
        "outcome": n.outcome,
        "message": n.message,
        "duration_s": n.duration_s,
        "status": n.status.value,
        "reason": n.reason,
        "coverage": n.coverage.to_dict(),
        "findings": [finding_dict(f) for f in n.findings],
        "action": node_action(n),
    }


class NodeDicts(Sequence[dict[str, Any]]):
    """The report's `nodes`, each node's dict made when it is read and not kept: `write` streams them one at a
    time, so a 10,000-node report never holds every node's dicts at once (~67 KiB a node). `list(...)` gives the
    plain list where a reader needs one (a baseline comparison, `dumps`)."""

    def __init__(self, nodes: Sequence[NodeReport]) -> None:
        self._nodes = nodes

    def __len__(self) -> int:
        return len(self._nodes)

    @overload
    def __getitem__(self, i: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, i: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(i, slice):
            return [node_dict(n) for n in self._nodes[i]]
        return node_dict(self._nodes[i])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (node_dict(n) for n in self._nodes)


def report_dict(report: RunReport, *, source: dict[str, Any], fail_on: str = "fail",
                lazy: bool = False) -> dict[str, Any]:
    """The report document. `lazy`: its `nodes` are a `NodeDicts`, made as they are written (a run's --json)."""
    nodes: Sequence[dict[str, Any]] = NodeDicts(report.nodes) if lazy else [node_dict(n) for n in report.nodes]
    worst_status = worst(n.status for n in report.nodes).value if report.nodes else Status.SKIP.value
    return {
        "schema": SCHEMA_ID,
        "schema_version": SCHEMA_VERSION,
        "tool_version": report.meta.get("tool_version"),
        "generated": time.time(),
        "source": source,
        "summary": {
            "nodes": len(report.nodes),
            "reachable": report.reachable,
            "counts": report.counts(),
            "status": worst_status,
            "exit_code": exit_code(report, fail_on),
            "fail_on": fail_on,
        },
        "checks": list(report.meta.get("checks", [])),
        "nodes": nodes,
        "fleet_findings": [finding_dict(f) for f in report.fleet_findings],
    }


def finding_dict(f: Finding) -> dict[str, Any]:
    """A finding as the schema has it, with its suggested action class and where that comes from."""
    action, source = suggestion(f)
    return {**f.to_dict(), "action": action, "action_source": source}


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple, NodeDicts)):
        return list(obj)
    return str(obj)


def write(data: dict[str, Any], fh: Any) -> None:
    """Stream a report's JSON to an open text file, never held as one string. Node text in it was made inert and
    scrubbed where it entered the model (preflight.textsafe, applied by NodeRaw): nothing to scrub here."""
    # json.dump with indent runs the pure-Python encoder (~6 ms a node); here the top two levels are indented and
    # each list item (a node, a finding) is one compact line from the C encoder: the same JSON value
    one = json.JSONEncoder(default=_default, separators=(", ", ": ")).encode
    fh.write("{")
    for i, (key, value) in enumerate(data.items()):
        fh.write(("," if i else "") + "\n  " + one(key) + ": ")
        if isinstance(value, (list, NodeDicts)) and value:
            fh.write("[")  # item by item: a NodeDicts' node is made, written and let go
            for j, item in enumerate(value):
                fh.write(("," if j else "") + "\n    " + one(item))
            fh.write("\n  ]")
        else:
            fh.write(one(value))
    fh.write("\n}\n")


def dumps(data: dict[str, Any]) -> str:
    """JSON text of a report (node text in it is already inert and scrubbed, see write())."""
    return json.dumps(data, indent=2, sort_keys=False, default=_default) + "\n"
