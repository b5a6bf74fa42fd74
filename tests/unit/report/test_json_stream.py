"""The run's JSON report streams its nodes (`report_dict(lazy=True)`): the same document, byte for byte."""

from __future__ import annotations

import dataclasses
import io
import json

from preflight.report.json_report import NodeDicts, dumps, report_dict, write
from preflight.results import RunReport


def _text(doc: dict) -> str:
    fh = io.StringIO()
    write(doc, fh)
    return fh.getvalue()


def test_lazy_nodes_write_the_same_bytes(mixed_report: RunReport) -> None:
    plain = report_dict(mixed_report, source={"kind": "demo"})
    lazy = report_dict(mixed_report, source={"kind": "demo"}, lazy=True)
    lazy["generated"] = plain["generated"]  # the only field that differs: when each was made
    assert isinstance(lazy["nodes"], NodeDicts) and len(lazy["nodes"]) == len(plain["nodes"]) >= 2
    assert _text(lazy) == _text(plain)
    assert json.loads(_text(lazy)) == json.loads(dumps(lazy)) == json.loads(dumps(plain))
    assert list(lazy["nodes"]) == plain["nodes"] and lazy["nodes"][-1] == plain["nodes"][-1]
    assert lazy["nodes"][1:] == plain["nodes"][1:]


def test_nodes_are_made_when_read_not_kept(mixed_report: RunReport) -> None:
    nodes = report_dict(mixed_report, source={"kind": "demo"}, lazy=True)["nodes"]
    first, again = nodes[0], nodes[0]
    assert first == again and first is not again  # made on each read: nothing held between reads
    assert [n["name"] for n in nodes] == [n.name for n in mixed_report.nodes]


def test_an_empty_report_writes_an_empty_list(demo_report: RunReport) -> None:
    empty = dataclasses.replace(demo_report, nodes=[])
    doc = report_dict(empty, source={"kind": "demo"}, lazy=True)
    assert json.loads(_text(doc))["nodes"] == []
