"""Parsing equal collector documents once (`judge(share_parses=True)`, the default) changes no verdict.

The demo bundle and a 50-node fleet made from it (copies under new names, some with their serial numbers and
GUIDs changed, some with a probe degraded, some declared GPU-less, some with a different clock) are judged with
and without shared parses: every finding (status, msg, observed, expected, evidence, every other field), every
node's verdict and the fleet findings must be the same, and so must the facts.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from pathlib import Path

from preflight.collect.bundle import Bundle, NodeRaw, load_bundle
from preflight.engine import FactsCache, judge
from preflight.parse.node import build_node_facts

DEMO = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo" / "bundle.json"
TODAY = "2026-12-02"
_SERIAL = re.compile(r"\b(1\d{12})\b")
_GUID = re.compile(r"\b(0x[0-9a-f]{12})([0-9a-f]{4})\b")


def _perturbed(collector: dict, i: int) -> dict:
    doc = copy.deepcopy(collector)
    for probe in doc["probes"].values():
        text = probe.get("stdout")
        if isinstance(text, str):
            text = _SERIAL.sub(lambda m: str(int(m.group(1)) + i), text)
            probe["stdout"] = _GUID.sub(lambda m: f"{m.group(1)}{(int(m.group(2), 16) + i) % 0x10000:04x}", text)
    return doc


def _fleet(n: int = 50) -> Bundle:
    demo = load_bundle(DEMO)
    nodes: list[NodeRaw] = []
    for i in range(n):
        src = demo.nodes[i % len(demo.nodes)]
        raw = dataclasses.replace(src, name=f"n{i:03d}", started=src.started + i * 0.5)
        if i % 3 == 1:  # distinct outputs
            raw.collector = _perturbed(src.collector or {}, i)
        if i % 7 == 2:  # a probe cut short: the same document as no other node
            doc = copy.deepcopy(raw.collector or {})
            doc["probes"]["smi_q"]["stdout"] = doc["probes"]["smi_q"]["stdout"][:5000]
            raw.collector = doc
        if i % 11 == 5:  # the same document, another expectation: must not share the parse
            raw.expect = {**raw.expect, "gpus_per_node": 0}
            raw.expect_sources = {**raw.expect_sources, "gpus_per_node": "test"}
        if i % 13 == 4:
            raw.outcome, raw.message = "timeout", "node timed out"
        nodes.append(raw)
    return dataclasses.replace(demo, nodes=nodes)


def _assert_same(bundle: Bundle) -> None:
    shared, shared_fleet = judge(bundle, today=TODAY, share_parses=True)
    alone, alone_fleet = judge(bundle, today=TODAY, share_parses=False)
    assert len(shared.nodes) == len(alone.nodes) == len(bundle.nodes)
    for a, b in zip(shared.nodes, alone.nodes):
        assert a.name == b.name
        assert len(a.findings) == len(b.findings), a.name
        for fa, fb in zip(a.findings, b.findings):
            assert (fa.check, fa.status, fa.msg, fa.observed, fa.expected, fa.evidence) == \
                   (fb.check, fb.status, fb.msg, fb.observed, fb.expected, fb.evidence), (a.name, fa.check)
            assert fa == fb, (a.name, fa.check)
        assert (a.status, a.reason, a.coverage) == (b.status, b.reason, b.coverage), a.name
    assert shared.fleet_findings == alone.fleet_findings
    assert shared_fleet.nodes == alone_fleet.nodes  # the facts themselves


def test_demo_judged_the_same_with_and_without_shared_parses() -> None:
    _assert_same(load_bundle(DEMO))


def test_perturbed_fleet_judged_the_same_with_and_without_shared_parses() -> None:
    bundle = _fleet()
    _assert_same(bundle)
    report, _ = judge(bundle, today=TODAY)
    assert len({n.status for n in report.nodes}) > 1  # the fleet is not one verdict copied


def test_equal_documents_are_parsed_once_and_others_are_not_shared() -> None:
    bundle = _fleet()
    memo: dict = {}
    facts = [build_node_facts(raw, memo) for raw in bundle.nodes]
    distinct_docs = {id(raw.collector) for raw in bundle.nodes if raw.outcome == "ok"}
    docs = [k for k in memo if k[0] != "p"]  # ("p", parser, text): one probe's text parsed once (node.py _Ctx.parse)
    assert 4 <= len(docs) < len(distinct_docs)  # copies share; perturbed, cut and GPU-less ones do not
    assert any(k[0] == "p" for k in memo)
    for raw, got in zip(bundle.nodes, facts):
        assert got == build_node_facts(raw), raw.name
        assert got.name == raw.name and got.clock_offset_s == build_node_facts(raw).clock_offset_s


def test_facts_cache_path_shares_parses_the_same_way() -> None:
    bundle = _fleet(12)
    cache = FactsCache()
    for raw in bundle.nodes[:6]:
        cache.add(raw)
    with_cache, _ = judge(bundle, cache=cache, today=TODAY)
    without, _ = judge(bundle, today=TODAY, share_parses=False)
    assert with_cache.nodes == without.nodes
