"""docs/checks.md is generated from the registry (a test fails when the two differ)."""

from __future__ import annotations

from preflight.engine import all_checks
from preflight.registry import FACT_DOCS


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
        "**Pass means proven.** A check whose facts are missing because the tool is absent, timed out, failed",
        "or printed something that does not parse is `error` (could not judge), never `skip`, and its node is",
        "not `pass`. `skip` is only for a check that does not apply, for the reason each section names. Where a",
        "fact cannot be had by design, say so once (`expect: {accept: {CHECK_OR_FACT: why}}` in the inventory,",
        "or `--accept CHECK_OR_FACT=why`): the check then reads `accepted`, with who said so.",
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
        if s.needs:
            lines.append("Needs (a missing fact makes this check `error`, except where it does not apply):")
            lines.append("")
            for key in s.needs:
                source, na = FACT_DOCS.get(key, ("", "never"))
                lines.append(f"- `{key}` from {source}; does not apply when: {na}")
            lines.append("")
        if s.na_when:
            lines.append(f"Does not apply (`skip`) when: {s.na_when}.")
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
