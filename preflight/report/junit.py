"""JUnit XML for CI test reporters (GitLab `artifacts:reports:junit`, Jenkins `junit`, GitHub test-report actions).

Layout
------
One ``<testsuite name="preflight.<group>">`` per check group (versions, gpu, nvlink, topology, ib,
memory, nccl, network), one ``<testcase classname="preflight.<check id>" name="<node>[ <subject>]">``
per finding. Groups rather than single checks, because the reporters list suites as the top-level
rows: GitLab's "Tests" tab shows one row per suite with its counts, GitHub actions render one
collapsible section per suite, and ~8 rows named like the console table's columns read at a glance
where ~45 one-check suites do not. The check is still visible per test: Jenkins splits
``classname`` into package/class, GitLab shows it beside the test name, and ``type`` on each
``<failure>`` is the check id. A ``preflight.node`` suite holds one testcase per node: the node's
one verdict (``NodeReport.status``) with its reason as the message, the same text the console,
JSON, Markdown and TUI show (fail → ``<failure>``, could not judge → ``<error>``, nothing judged →
``<skipped>``). Nodes that could not be checked at all are ``<error>`` testcases there.

Statuses: fail → ``<failure>``; error (could not judge) → ``<error>``; skip → ``<skipped>``;
warn passes (its text in ``<system-out>``) unless ``fail_on == "warn"``, then ``<failure>``.

Counts: every ``<testsuite>`` carries tests/failures/errors/skipped/time; the ``<testsuites>`` root
carries tests/failures/errors/time. ``skipped`` is left off the root on purpose: the Jenkins
xunit plugin's ``junit-10.xsd`` (tests/fixtures/junit/) allows no such attribute there, and the
reporters count skips from the suites anyway.

Time: preflight measures time per node (collection), not per check, so a finding's testcase has
``time="0.000"``; an unreachable node's testcase carries the time spent trying it; each suite's
time is the sum of its testcases and the root's the longest node collection (nodes run in
parallel), i.e. the run's wall time as far as the report knows it.

Node text is already inert and scrubbed where it entered the model (preflight.textsafe); characters that
XML 1.0 cannot carry (NUL, other C0 controls, ANSI escapes' ESC, lone surrogates) are still removed from any text.
"""

from __future__ import annotations

import re
import time as _time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any

from preflight.actions.suggest import ACTION_TEXT, node_action, suggestion
from preflight.results import Finding, NodeReport, RunReport, Status

MAX_EVIDENCE_LINES = 60
MAX_MESSAGE_CHARS = 500
REACHABILITY = "node"  # one testcase per node: its verdict (unreachable nodes are errors here)

# Everything outside XML 1.0's Char production: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_ILLEGAL_XML = re.compile("[^\u0009\u000a\u000d\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: Any) -> str:
    """`text` as a string XML 1.0 can carry."""
    return _ILLEGAL_XML.sub("", str(text))


def _groups_of() -> dict[str, str]:
    from preflight.engine import all_checks

    return {s.id: s.group for s in all_checks()}


def _group_order() -> tuple[str, ...]:
    from preflight.registry import GROUPS

    return GROUPS


def _group(check: str, groups_of: dict[str, str]) -> str:
    return groups_of.get(check) or check.split(".", 1)[0]


def _case_name(f: Finding) -> str:
    name = f.node or "fleet"
    return f"{name} {f.subject}" if f.subject else name


def _message(f: Finding) -> str:
    text = (f.msg or f.check).strip().splitlines()[0] if (f.msg or f.check).strip() else f.check
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 1] + "…"


def finding_body(f: Finding, *, max_evidence: int = MAX_EVIDENCE_LINES) -> str:
    """The text a reporter shows under a failed test: what, observed vs expected (and why), evidence, hint."""
    where = (f.node or "fleet") + (f" {f.subject}" if f.subject else "")
    lines = [f"{f.status.value.upper()} {f.check} on {where}: {f.msg or f.check}"]
    if f.observed is not None:
        lines.append(f"observed: {f.observed}")
    if f.expected is not None or f.expected_source:
        exp = f"expected: {f.expected if f.expected is not None else '(see source)'}"
        if f.expected_source:
            exp += f" (from {f.expected_source})"
        lines.append(exp)
    if f.evidence:
        lines.append("evidence:")
        for ev in f.evidence[:max_evidence]:
            lines.append("  | " + str(ev).rstrip("\n"))
        if len(f.evidence) > max_evidence:
            lines.append(f"  | ... {len(f.evidence) - max_evidence} more lines in the JSON report")
    if f.hint:
        lines.append(f"hint: {f.hint}")
    action, source = suggestion(f)
    if action != "none":
        lines.append(f"suggested action: {ACTION_TEXT[action]} ({source})")
    return "\n".join(lines) + "\n"


class _Suite:
    def __init__(self, name: str) -> None:
        self.name = name
        self.cases: list[ET.Element] = []
        self.failures = self.errors = self.skipped = 0
        self.time = 0.0

    def add(self, case: ET.Element, *, seconds: float = 0.0) -> None:
        self.cases.append(case)
        self.time += seconds
        kinds = {child.tag for child in case}
        self.failures += "failure" in kinds
        self.errors += "error" in kinds
        self.skipped += "skipped" in kinds


def _finding_case(f: Finding, fail_on: str) -> ET.Element:
    case = ET.Element("testcase", {"classname": xml_safe(f"preflight.{f.check}"),
                                   "name": xml_safe(_case_name(f)), "time": "0.000"})
    status = f.status
    if status == Status.FAIL or (status == Status.WARN and fail_on == "warn"):
        el = ET.SubElement(case, "failure", {"message": xml_safe(_message(f)), "type": xml_safe(f.check)})
        el.text = xml_safe(finding_body(f))
    elif status == Status.ERROR:
        el = ET.SubElement(case, "error", {"message": xml_safe(_message(f)), "type": xml_safe(f.check)})
        el.text = xml_safe(finding_body(f))
    elif status in (Status.SKIP, Status.ACCEPTED):  # accepted: not judged, by the operator's word (in the message)
        ET.SubElement(case, "skipped", {"message": xml_safe(_message(f))})
    elif status == Status.WARN:
        out = ET.SubElement(case, "system-out")
        out.text = xml_safe(finding_body(f))
    return case


def _node_case(n: NodeReport, fail_on: str) -> ET.Element:
    """One testcase per node: its verdict (`NodeReport.status`) and reason; unreachable nodes are errors."""
    case = ET.Element("testcase", {"classname": f"preflight.{REACHABILITY}", "name": xml_safe(n.name),
                                   "time": f"{max(n.duration_s, 0.0):.3f}"})
    if n.outcome != "ok":
        msg = f"{n.outcome}: {n.message}" if n.message else n.outcome
        err = ET.SubElement(case, "error", {"message": xml_safe(msg.splitlines()[0] if msg.strip() else n.outcome),
                                            "type": xml_safe(n.outcome)})
        err.text = xml_safe(f"{n.name} ({n.address}) could not be checked: {n.outcome}\n{n.message}\n"
                            "No check ran on this node.\n")
        return case
    status, body = n.status, f"{n.name}: {n.status.value}: {n.reason}\ncoverage: {n.coverage.text()}\n"
    if node_action(n) != "none":
        body += f"suggested action: {ACTION_TEXT[node_action(n)]}\n"
    if status == Status.FAIL or (status == Status.WARN and fail_on == "warn"):
        ET.SubElement(case, "failure", {"message": xml_safe(n.reason), "type": "node"}).text = xml_safe(body)
    elif status == Status.ERROR:
        ET.SubElement(case, "error", {"message": xml_safe(n.reason), "type": "node"}).text = xml_safe(body)
    elif status in (Status.SKIP, Status.ACCEPTED):
        ET.SubElement(case, "skipped", {"message": xml_safe(n.reason)})
    else:
        ET.SubElement(case, "system-out").text = xml_safe(body)
    return case


def _suite_element(suite: _Suite, index: int, properties: dict[str, str], timestamp: str) -> ET.Element:
    el = ET.Element("testsuite", {
        "name": xml_safe(f"preflight.{suite.name}"),
        "tests": str(len(suite.cases)),
        "failures": str(suite.failures),
        "errors": str(suite.errors),
        "skipped": str(suite.skipped),
        "time": f"{suite.time:.3f}",
        "timestamp": timestamp,
        "id": str(index),
    })
    if properties:
        props = ET.SubElement(el, "properties")
        for k, v in properties.items():
            ET.SubElement(props, "property", {"name": xml_safe(k), "value": xml_safe(v)})
    el.extend(suite.cases)
    return el


def _timestamp(report: RunReport) -> str:
    when = report.meta.get("bundle_created") or report.meta.get("judged")
    try:
        t = float(when) if when is not None else _time.time()
    except (TypeError, ValueError):
        t = _time.time()
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(t))


def junit_suites(report: RunReport, *, fail_on: str = "fail") -> ET.Element:
    """The ``<testsuites>`` element (for callers that want to add to it before writing)."""
    if fail_on not in ("fail", "warn"):
        raise ValueError(f"fail_on must be 'fail' or 'warn', not {fail_on!r}")
    groups_of = _groups_of()
    suites: dict[str, _Suite] = {}

    def suite(name: str) -> _Suite:
        if name not in suites:
            suites[name] = _Suite(name)
        return suites[name]

    # stable sort: one check's nodes sit together, each node's subjects stay in collection order
    findings: Iterable[Finding] = sorted(report.all_findings(), key=lambda f: f.check)
    for f in findings:
        suite(_group(f.check, groups_of)).add(_finding_case(f, fail_on))
    for n in report.nodes:  # each node's one verdict, with the reason text every surface shows
        suite(REACHABILITY).add(_node_case(n, fail_on), seconds=max(n.duration_s, 0.0))

    order = {g: i for i, g in enumerate((REACHABILITY,) + tuple(_group_order()))}
    ordered = sorted(suites.values(), key=lambda s: (order.get(s.name, len(order)), s.name))
    props = {"fail_on": fail_on}
    if report.meta.get("tool_version"):
        props["preflight_version"] = str(report.meta["tool_version"])
    if report.meta.get("bundle_label"):
        props["source"] = str(report.meta["bundle_label"])
    stamp = _timestamp(report)
    wall = max((n.duration_s for n in report.nodes), default=0.0)
    root = ET.Element("testsuites", {
        "name": "preflight",
        "tests": str(sum(len(s.cases) for s in ordered)),
        "failures": str(sum(s.failures for s in ordered)),
        "errors": str(sum(s.errors for s in ordered)),
        "time": f"{max(wall, 0.0):.3f}",
    })
    for i, s in enumerate(ordered):
        root.append(_suite_element(s, i, props, stamp))
    return root


def junit_xml(report: RunReport, *, fail_on: str = "fail") -> str:
    """The JUnit XML document (UTF-8 text with an XML declaration) for `report`."""
    root = junit_suites(report, fail_on=fail_on)
    ET.indent(root, space="  ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
