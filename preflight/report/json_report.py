"""The versioned JSON report (schema: preflight/report/schema.json, documented in docs/json-schema.md)."""

from __future__ import annotations

import json
import time
from typing import Any

from preflight.collect.bundle import scrub
from preflight.results import RunReport, Status, exit_code, worst

SCHEMA_ID = "preflight-report"
SCHEMA_VERSION = 1


def report_dict(report: RunReport, *, source: dict[str, Any], fail_on: str = "fail") -> dict[str, Any]:
    nodes = []
    for n in report.nodes:
        nodes.append({
            "name": n.name,
            "address": n.address,
            "outcome": n.outcome,
            "message": n.message,
            "duration_s": n.duration_s,
            "status": n.status.value,
            "reason": n.reason,
            "coverage": n.coverage.to_dict(),
            "findings": [f.to_dict() for f in n.findings],
        })
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
        "fleet_findings": [f.to_dict() for f in report.fleet_findings],
    }


def _default(obj: Any) -> Any:
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    return str(obj)


def _scrubbed(obj: Any) -> Any:
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, (list, tuple)):
        return [_scrubbed(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _scrubbed(v) for k, v in obj.items()}
    return obj


def _scrub_in_place(obj: Any) -> Any:
    """The same scrubbing without a second copy of a large report (the dict is ours to change)."""
    if isinstance(obj, str):
        return scrub(obj)
    if isinstance(obj, tuple):
        return [_scrub_in_place(v) for v in obj]
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            obj[i] = _scrub_in_place(v)
        return obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            obj[k] = _scrub_in_place(v)
        return obj
    return obj


def write(data: dict[str, Any], fh: Any) -> None:
    """Stream a report's JSON to an open text file: scrubbed in place, never held as one string."""
    json.dump(_scrub_in_place(data), fh, indent=2, sort_keys=False, default=_default)
    fh.write("\n")


def dumps(data: dict[str, Any]) -> str:
    """JSON text of a report; node outputs quoted as evidence pass through the same secret scrubber as bundles."""
    return json.dumps(_scrubbed(data), indent=2, sort_keys=False, default=_default) + "\n"
