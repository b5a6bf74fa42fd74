"""docs/checks.md is generated from the registry (a test fails when the two differ)."""

from __future__ import annotations

from preflight.registry import all_checks


def checks_markdown() -> str:
    lines = [
        "# Checks",
        "",
        "Generated from the registry by `preflight checks --markdown`; do not edit by hand",
        "(tests/unit/test_registry.py fails when this file and the registry differ).",
        "",
        "Every check returns findings with the same fields (`check, node, status, subject, observed, expected,",
        "expected_source, msg, evidence, hint`). `expected_source` says where the expectation came from: the",
        "inventory (file and group), a reference default (with its source), or the fleet's own majority.",
        "",
        "| id | group | scope | needs | what it judges |",
        "|---|---|---|---|---|",
    ]
    specs = all_checks()
    for s in specs:
        lines.append(f"| `{s.id}` | {s.group} | {s.scope} | {', '.join(s.needs)} | {s.summary} |")
    lines.append("")
    for s in specs:
        lines.append(f"## `{s.id}`")
        lines.append("")
        lines.append(s.summary + ".")
        lines.append("")
        if s.thresholds:
            lines.append("Thresholds (override per inventory group under `thresholds: {" + s.id + ": {...}}`):")
            lines.append("")
            for k, v in s.thresholds.items():
                src = s.threshold_sources.get(k, "")
                lines.append(f"- `{k}` = `{v}`" + (f" (source: {src})" if src else ""))
            lines.append("")
        if s.remediation:
            lines.append(f"Remediation: {s.remediation}")
            lines.append("")
    return "\n".join(lines)
