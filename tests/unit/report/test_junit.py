"""JUnit XML: valid against the Jenkins xunit plugin's JUnit schema, counts match the report's findings."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from preflight.report.junit import junit_xml, xml_safe
from preflight.results import RunReport, Status

XSD = Path(__file__).resolve().parents[2] / "fixtures" / "junit" / "junit-10.xsd"


def _validator():
    try:
        import xmlschema
    except ImportError:
        lxml_etree = pytest.importorskip("lxml.etree", reason="JUnit schema validation needs xmlschema or lxml "
                                                              "(add one to the `test` extra)")
        schema = lxml_etree.XMLSchema(lxml_etree.parse(str(XSD)))
        return lambda text: schema.assertValid(lxml_etree.fromstring(text.encode()))
    schema = xmlschema.XMLSchema(str(XSD))
    return schema.validate


@pytest.mark.parametrize("fail_on", ["fail", "warn"])
@pytest.mark.parametrize("which", ["demo_report", "mixed_report"])
def test_validates_against_junit_schema(which: str, fail_on: str, request: pytest.FixtureRequest) -> None:
    validate = _validator()
    validate(junit_xml(request.getfixturevalue(which), fail_on=fail_on))


def test_schema_validation_rejects_a_broken_document(demo_report: RunReport) -> None:
    validate = _validator()  # the validator is real: a testsuite without its required counts is refused
    text = junit_xml(demo_report).replace(' failures="1"', "", 1)
    with pytest.raises(Exception):
        validate(text)


def _cases(root: ET.Element) -> list[ET.Element]:
    return [c for s in root.findall("testsuite") for c in s.findall("testcase")]


@pytest.mark.parametrize("fail_on", ["fail", "warn"])
def test_counts_match_findings(mixed_report: RunReport, fail_on: str) -> None:
    root = ET.fromstring(junit_xml(mixed_report, fail_on=fail_on))
    findings = mixed_report.all_findings()
    by = {s: sum(1 for f in findings if f.status == s) for s in Status}
    unreachable = sum(1 for n in mixed_report.nodes if n.outcome != "ok")
    assert by[Status.WARN] == 1 and by[Status.ERROR] == 1 and by[Status.FAIL] == 3 and unreachable == 1
    verdicts = [n.status for n in mixed_report.nodes if n.outcome == "ok"]  # one node-verdict testcase each
    node_failures = sum(1 for v in verdicts if v == Status.FAIL or (v == Status.WARN and fail_on == "warn"))
    node_skips = sum(1 for v in verdicts if v in (Status.SKIP, Status.ACCEPTED))
    expect = {
        "tests": len(findings) + len(mixed_report.nodes),
        "failures": by[Status.FAIL] + (by[Status.WARN] if fail_on == "warn" else 0) + node_failures,
        "errors": by[Status.ERROR] + unreachable + sum(1 for v in verdicts if v == Status.ERROR),
    }
    for attr, n in expect.items():
        assert int(root.get(attr)) == n, attr
        assert sum(int(s.get(attr)) for s in root.findall("testsuite")) == n, attr
    skipped = by[Status.SKIP] + by[Status.ACCEPTED] + node_skips  # accepted gaps are skipped, saying who accepted
    assert sum(int(s.get("skipped")) for s in root.findall("testsuite")) == skipped
    cases = _cases(root)
    assert len(cases) == expect["tests"]
    assert sum(1 for c in cases if c.find("failure") is not None) == expect["failures"]
    assert sum(1 for c in cases if c.find("error") is not None) == expect["errors"]
    assert sum(1 for c in cases if c.find("skipped") is not None) == skipped
    for s in root.findall("testsuite"):  # each suite's own counts are its testcases'
        sc = s.findall("testcase")
        assert int(s.get("tests")) == len(sc)
        assert int(s.get("failures")) == sum(1 for c in sc if c.find("failure") is not None)
        assert float(s.get("time")) == pytest.approx(sum(float(c.get("time")) for c in sc), abs=1e-3)


def test_one_suite_per_group_and_failure_body(demo_report: RunReport) -> None:
    root = ET.fromstring(junit_xml(demo_report))
    names = [s.get("name") for s in root.findall("testsuite")]
    assert names[:2] == ["preflight.node", "preflight.versions"] and "preflight.nvlink" in names
    assert len(names) == len(set(names))
    case = next(c for c in _cases(root)
                if c.get("classname") == "preflight.nvlink.links.active" and c.get("name") == "gpu-04 GPU5")
    failure = case.find("failure")
    assert failure.get("type") == "nvlink.links.active"
    assert "16 of 18" in failure.get("message")
    body = failure.text
    assert "observed: 16 of 18" in body and "expected: 18 active (from reference gpus.yaml" in body
    assert "Link 4: <inactive>" in body and "hint: Reseat" in body
    drv = next(c for c in _cases(root) if c.get("classname") == "preflight.versions.driver.consistent"
               and c.get("name") == "gpu-03")
    assert "535.129.03" in drv.find("failure").text
    ok = next(c for c in _cases(root) if c.get("classname") == "preflight.versions.driver.consistent"
              and c.get("name") == "gpu-01")
    assert list(ok) == []  # a pass has no child


def test_warn_passes_unless_fail_on_warn_and_text_is_xml_safe(mixed_report: RunReport) -> None:
    text = junit_xml(mixed_report)
    assert "\x1b" not in text and "\x00" not in text and "\x0b" not in text and "\x07" not in text
    root = ET.fromstring(text)
    warn = next(c for c in _cases(root) if c.get("classname") == "preflight.memory.shm" and "shm|`x`" in c.get("name"))
    assert warn.find("failure") is None and "small /dev/shm | `df`" in warn.find("system-out").text
    assert "[31mred" in warn.find("system-out").text  # only the illegal ESC went, the rest of the line stayed
    root_w = ET.fromstring(junit_xml(mixed_report, fail_on="warn"))
    warn_w = next(c for c in _cases(root_w) if c.get("classname") == "preflight.memory.shm")
    fw = [c for c in _cases(root_w) if c.get("classname") == "preflight.memory.shm" and c.find("failure") is not None]
    assert len(fw) == 1 and fw[0].find("failure").get("type") == "memory.shm" and warn_w is not None
    err = next(c for c in _cases(root) if c.get("classname") == "preflight.gpu.xid" and c.find("error") is not None)
    assert "more lines in the JSON report" in err.find("error").text  # 100 evidence lines are capped


def test_unreachable_node_is_an_error_case(mixed_report: RunReport) -> None:
    root = ET.fromstring(junit_xml(mixed_report))
    suite = root.find("testsuite[@name='preflight.node']")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {n.name for n in mixed_report.nodes}  # every node's verdict, with its reason
    for n in mixed_report.nodes:
        if n.outcome == "ok" and n.status != Status.PASS:
            el = next(iter(cases[n.name]))
            assert el.get("message") == xml_safe(n.reason)
    case = cases["gpu-05"]
    assert float(case.get("time")) == pytest.approx(10.25)
    err = case.find("error")
    assert err.get("type") == "timeout" and "connect timed out after 10 s <&>" in err.get("message")
    assert float(suite.get("time")) == pytest.approx(sum(max(n.duration_s, 0.0) for n in mixed_report.nodes), abs=1e-3)
    assert float(root.get("time")) >= 10.25


def test_skips_carry_their_message(demo_report: RunReport) -> None:
    root = ET.fromstring(junit_xml(demo_report))
    skipped = [c.find("skipped") for c in _cases(root) if c.find("skipped") is not None]
    assert skipped and all(s.get("message") for s in skipped)


def test_bad_fail_on_is_refused(demo_report: RunReport) -> None:
    with pytest.raises(ValueError):
        junit_xml(demo_report, fail_on="error")
