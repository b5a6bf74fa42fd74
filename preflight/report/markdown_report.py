"""Markdown job summary for CI (GitHub's $GITHUB_STEP_SUMMARY, a GitLab/Jenkins artifact, a PR comment).

Layout: a verdict line (counts and the exit code), a nodes × check-groups table whose cells carry a
symbol and a word (✔ ok / ▲ warn / ✖ FAIL / ? error / – skip / ⨯ unreachable, · for "no check of
this group ran"), so it reads without colour; then one section per failed or unjudgeable finding
and per unreachable node (observed, expected and where the expectation came from, evidence in a
fenced block, hint); warnings as a short list (as sections with ``fail_on="warn"``, where they fail
the run). Optionally a baseline-drift section.

The length is bounded (GitHub caps a step summary at 1 MiB): evidence lines per finding, line
width, the number of sections and table rows are capped, and each cap says how much it cut.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from preflight.actions.suggest import ACTION_TEXT, node_action, suggestion
from preflight.results import Finding, RunReport, Status, exit_code, worst

if TYPE_CHECKING:
    from preflight.report.baseline import Drift

MAX_EVIDENCE_LINES = 20
MAX_LINE_CHARS = 300
MAX_SECTIONS = 50
MAX_TABLE_ROWS = 200
MAX_WARNINGS = 50
MAX_DRIFT_ITEMS = 100

CELL = {
    Status.PASS: "✔ ok",
    Status.WARN: "▲ warn",
    Status.FAIL: "✖ FAIL",
    Status.ERROR: "? error",
    Status.SKIP: "– skip",
    Status.ACCEPTED: "◇ accepted",
}
UNREACHABLE = "⨯ unreachable"
NOT_RUN = "·"
VERDICT = {0: "✔ passed", 1: "▲ warnings", 2: "✖ FAIL", 3: "⨯ could not run"}


def _clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clean(value: Any) -> str:
    """Text with control characters (ANSI escapes' ESC, NUL, ...) removed; tabs and newlines kept. Node text is
    already inert and scrubbed (preflight.textsafe); this guards text made elsewhere."""
    return re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", "", str(value))


def cell(value: Any) -> str:
    """Text safe inside a GitHub-flavoured Markdown table cell: one line, `|` and backticks escaped."""
    text = " ".join(_clean(value).split())
    text = text.replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def code(value: Any) -> str:
    """An inline code span that survives backticks in `value` (outside tables)."""
    text = " ".join(_clean(value).split())
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _prose(value: Any) -> str:
    """One line of free text outside a table, Markdown/HTML metacharacters escaped (backticks kept: hints quote commands)."""
    text = " ".join(_clean(value).split())
    return re.sub(r"([\\*_\[\]<>#|~])", r"\\\1", text)


def _fenced(lines: list[str], *, limit: int = MAX_EVIDENCE_LINES) -> list[str]:
    shown = [_clip(_clean(line).rstrip("\n")) for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"… {len(lines) - limit} more lines cut (all of them are in the JSON report)")
    longest = max((len(m) for line in shown for m in re.findall(r"`{3,}", line)), default=0)
    fence = "`" * max(3, longest + 1)
    return [f"{fence}text", *shown, fence]


def _groups_of() -> dict[str, str]:
    from preflight.engine import all_checks

    return {s.id: s.group for s in all_checks()}


def _cell_status(statuses: list[Status]) -> str:
    if not statuses:
        return NOT_RUN
    judged = [s for s in statuses if s != Status.SKIP]  # a skipped check does not hide the others' verdict
    return CELL[worst(judged) if judged else Status.SKIP]


def _table(report: RunReport, groups_of: dict[str, str]) -> list[str]:
    from preflight.registry import GROUPS

    findings = report.all_findings()
    used = [g for g in GROUPS if any(groups_of.get(f.check) == g for f in findings)]
    used += sorted({groups_of.get(f.check, f.check.split(".", 1)[0]) for f in findings} - set(used))
    out = ["| node | verdict | " + " | ".join(used) + " | why |", "|---|---|" + "---|" * len(used) + "---|"]
    rows: list[tuple[bool, str]] = []
    for n in report.nodes:
        if n.outcome != "ok":
            cells = [f"{UNREACHABLE} ({cell(n.outcome)})"] + [NOT_RUN] * len(used)
            rows.append((True, f"| {cell(n.name)} | " + " | ".join(cells) + f" | {cell(_clip(n.reason, 160))} |"))
            continue
        cells = [CELL[n.status]] + [
            _cell_status([f.status for f in n.findings if groups_of.get(f.check, f.check.split('.', 1)[0]) == g])
            for g in used]
        bad = n.status != Status.PASS
        why = f"{n.reason} [{n.coverage.text()}]" if bad else n.coverage.text()
        if node_action(n) != "none":
            why = f"{ACTION_TEXT[node_action(n)]}: {why}"
        rows.append((bad, f"| {cell(n.name)} | " + " | ".join(cells) + f" | {cell(_clip(why, 160))} |"))
    if report.fleet_findings:
        cells = [_cell_status([f.status for f in report.fleet_findings
                               if groups_of.get(f.check, f.check.split('.', 1)[0]) == g]) for g in used]
        rows.append((True, "| *(fleet)* | " + NOT_RUN + " | " + " | ".join(cells) + " | |"))
    hidden = 0
    if len(rows) > MAX_TABLE_ROWS:  # a large fleet: list the nodes with something to look at first
        keep = [r for bad, r in rows if bad][:MAX_TABLE_ROWS]
        hidden = len(rows) - len(keep)
        out += keep
    else:
        out += [r for _, r in rows]
    if hidden:
        out.append("")
        out.append(f"*{hidden} more rows not listed (nodes with every check ok or skipped first left out).*")
    return out


def _where(f: Finding) -> str:
    return (f.node or "fleet") + (f" · {f.subject}" if f.subject else "")


def _section(f: Finding) -> list[str]:
    head = CELL[f.status]
    lines = [f"### {head} `{f.check}` · {_prose(_where(f))}", "", _prose(f.msg or f.check), ""]
    if f.observed is not None:
        lines.append(f"- **observed:** {code(_clip(str(f.observed)))}")
    if f.expected is not None or f.expected_source:
        exp = code(_clip(str(f.expected))) if f.expected is not None else "*(see source)*"
        src = f" (from {_prose(_clip(f.expected_source))})" if f.expected_source else ""
        lines.append(f"- **expected:** {exp}{src}")
    if f.observed is not None or f.expected is not None or f.expected_source:
        lines.append("")
    if f.evidence:
        lines += _fenced(list(f.evidence))
        lines.append("")
    if f.hint:
        lines += [f"**hint:** {_prose(f.hint)}", ""]
    action, source = suggestion(f)
    if action != "none":
        lines += [f"**suggested action:** {ACTION_TEXT[action]} ({_prose(_clip(source))})", ""]
    return lines


def _drift_lines(drift: Drift) -> list[str]:
    items = list(drift.items)
    lines = ["## Drift from baseline", ""]
    if not items:
        return lines + ["No drift: every node, version, NVLink count and bus bandwidth matches the baseline.", ""]
    lines += [f"Drift exit code **{drift.exit_code}**; {len(items)} item(s).", "",
              "| kind | node | check | before | after |", "|---|---|---|---|---|"]
    for it in items[:MAX_DRIFT_ITEMS]:
        lines.append(f"| {cell(it.kind)} | {cell(it.node or 'fleet')} | {cell(it.check or '')} | "
                     f"{cell(_clip(str(it.before if it.before is not None else ''), 120))} | "
                     f"{cell(_clip(str(it.after if it.after is not None else ''), 120))} |")
    if len(items) > MAX_DRIFT_ITEMS:
        lines.append(f"\n*{len(items) - MAX_DRIFT_ITEMS} more drift items not shown; see the drift JSON.*")
    return lines + [""]


def markdown_summary(report: RunReport, *, fail_on: str = "fail", title: str = "preflight",
                     drift: Drift | None = None) -> str:
    """A Markdown job summary of `report` (see the module docstring for its layout and bounds)."""
    if fail_on not in ("fail", "warn"):
        raise ValueError(f"fail_on must be 'fail' or 'warn', not {fail_on!r}")
    groups_of = _groups_of()
    code_ = exit_code(report, fail_on)
    c = report.counts()
    out = [f"## {_prose(title)}: {VERDICT.get(code_, str(code_))} (exit code {code_})", ""]
    out.append(f"**{len(report.nodes)} nodes**, {report.reachable} reached · {c['pass']} passed · "
               f"{c['warn']} warnings · {c['fail']} failed · {c['error']} could not judge · "
               f"{c['accepted']} accepted · {c['skip']} not applicable · "
               f"{c['unreachable']} unreachable · `--fail-on {fail_on}`")
    out.append("")
    out += _table(report, groups_of)
    out.append("")

    sections: list[list[str]] = []
    for n in report.nodes:
        if n.outcome != "ok":
            sections.append([f"### {UNREACHABLE} {_prose(n.name)} ({_prose(n.address)})", "",
                             f"**{_prose(n.outcome)}**: {_prose(n.message or n.outcome)}", "",
                             "No check ran on this node.", ""])
    wanted = {Status.FAIL, Status.ERROR} | ({Status.WARN} if fail_on == "warn" else set())
    problems = sorted((f for f in report.all_findings() if f.status in wanted),
                      key=lambda f: (-f.status.rank, f.node or "", f.check, f.subject or ""))
    sections += [_section(f) for f in problems]
    if sections:
        out += ["## Failures", ""] if fail_on == "fail" else ["## Failures and warnings", ""]
        for s in sections[:MAX_SECTIONS]:
            out += s
        if len(sections) > MAX_SECTIONS:
            out += [f"*{len(sections) - MAX_SECTIONS} more failures not shown; every one is in the JUnit and "
                    "JSON reports.*", ""]

    if fail_on != "warn":
        warnings = sorted((f for f in report.all_findings() if f.status == Status.WARN),
                          key=lambda f: (f.node or "", f.check, f.subject or ""))
        if warnings:
            out += ["## Warnings", ""]
            for f in warnings[:MAX_WARNINGS]:
                out.append(f"- {CELL[Status.WARN]} `{f.check}` · {_prose(_where(f))}: {_prose(_clip(f.msg or f.check))}")
            if len(warnings) > MAX_WARNINGS:
                out.append(f"- … {len(warnings) - MAX_WARNINGS} more warnings not shown")
            out.append("")

    acked = [f for f in report.all_findings() if f.acknowledged and not f.acknowledged.get("expired")]
    if acked:  # acknowledge: / --ack: judged findings someone owns until a date (expired ones are failures above)
        out += ["## Acknowledged", ""]
        for f in acked[:MAX_WARNINGS]:
            a = f.acknowledged or {}
            out.append(f"- ◇ acknowledged `{f.check}` · {_prose(_where(f))}: by {_prose(a.get('by'))} until "
                       f"{_prose(a.get('expires'))} ({_prose(_clip(str(a.get('reason'))))}); was {a.get('status')}")
        out.append("")
    if drift is not None:
        out += _drift_lines(drift)
    return "\n".join(out).rstrip("\n") + "\n"
