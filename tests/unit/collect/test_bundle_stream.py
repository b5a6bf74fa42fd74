"""The fast document cleaner gives what textsafe.clean gives; streamed bundles read like saved ones; a node's raw
output let go after parsing is judged on exactly the facts parsed from it."""

from __future__ import annotations

import copy
import dataclasses
import json

import pytest

from preflight.cli.common import demo_bundle_path
from preflight.collect.bundle import Bundle, BundleWriter, NodeRaw, clean_document, load_bundle, save_bundle
from preflight.engine import judge
from preflight.session import RunFacts
from preflight.textsafe import clean


def _demo() -> Bundle:
    return load_bundle(demo_bundle_path())


def _planted(doc: dict, text: str) -> dict:
    out = copy.deepcopy(doc)
    first = next(iter(out["probes"].values()))
    first["stdout"] = (first.get("stdout") or "") + text
    return out


@pytest.mark.parametrize("plant", [
    "",  # the recording as it is (its os-release holds `://`)
    "\x1b[31mred\x1b[0m and a\rcarriage return",  # control characters
    "HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789\npassword: hunter2\n",  # secrets in text
    "\x0bearer abcdefghijklmnopqrstuvwxyz",  # a hint that only appears once the control character is escaped
    "\u212aelvin AKIA\u212a and \ud800 lone surrogate",  # non-ASCII text, a hint after lower-casing
    "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----",
    # the hint search deletes bytes no hint holds (spaces, digits, '=' ...): hints in capitals, next to digits
    "AUTHORIZATION: BEARER ABCDEFGHIJKLMNOPQRSTUVWX\nGHP_0123456789abcdefghijklmnopqrstuvwxyzAB 42\n",
    "url https://hooks.slack.com/services/T000/B000/XXXX github_pat_11ABCDEFG0123456789_abcdefghij\n",
    # ... and hints those deletions make up (not in the text): cleaned only where the text really holds one
    "ap 1 ikey = 7; to 9 ken; x 0 ox; AK 12 IA; -----  begin; pass 3 word\n",
])
def test_clean_document_equals_clean(plant: str) -> None:
    for raw in _demo().nodes:
        if not raw.collector:
            continue
        doc = _planted(raw.collector, plant)
        doc["env"] = {"HF_TOKEN": "hf_x", "nested": [("a", "token=abc"), {"api_key": ["k"]}], "n": 3, "b": None}
        assert clean_document(doc) == clean(doc)
        assert json.dumps(clean_document(doc)) == json.dumps(clean(doc))  # same types and order too


def test_streamed_bundle_reads_like_a_saved_one(tmp_path) -> None:
    demo = _demo()
    save_bundle(demo, tmp_path / "saved")
    writer = BundleWriter(tmp_path / "streamed", demo.header())
    for raw in reversed(demo.nodes):  # as they answered: any order
        writer.add(raw)
        writer.add(raw)  # a node written twice is written once
    assert not (tmp_path / "streamed" / "bundle.json").exists()  # in place only when complete
    writer.close([n.name for n in demo.nodes])
    streamed, saved = load_bundle(tmp_path / "streamed"), load_bundle(tmp_path / "saved")
    assert streamed.to_dict() == saved.to_dict() == demo.to_dict()  # inventory order given back
    assert [f.status for f in judge(streamed)[0].nodes] == [f.status for f in judge(demo)[0].nodes]


def test_an_aborted_stream_leaves_nothing(tmp_path) -> None:
    demo = _demo()
    writer = BundleWriter(tmp_path / "b", demo.header())
    writer.add(demo.nodes[0])
    writer.abort()
    assert list((tmp_path / "b").iterdir()) == []


def _findings(report) -> list[tuple]:
    return [(n.name, n.status, n.reason, tuple((f.check, f.status, f.msg) for f in n.findings)) for n in report.nodes]


def test_dropped_raw_is_judged_on_the_facts_parsed_from_it() -> None:
    kept, dropped = _demo(), _demo()
    cache = RunFacts()
    for raw in dropped.nodes:
        cache.add(raw)
        assert cache.has(raw)
        raw.drop_collector()
        assert raw.collector is None and raw.dropped and cache.has(raw)
    assert _findings(judge(dropped, cache=cache)[0]) == _findings(judge(kept)[0])
    # expectations changed after the drop (but not gpus_per_node): the parsed facts get the new ones
    for k, d in zip(kept.nodes, dropped.nodes):
        k.expect = {**k.expect, "driver_version": "1.2.3"}
        d.expect = {**d.expect, "driver_version": "1.2.3"}
    assert _findings(judge(dropped, cache=cache)[0]) == _findings(judge(kept)[0])


def test_a_dropped_raw_is_never_judged_on_nothing() -> None:
    bundle = _demo()
    raw = next(n for n in bundle.nodes if n.outcome == "ok")
    cache = RunFacts()
    cache.add(raw)
    raw.drop_collector()
    raw.expect = {**raw.expect, "gpus_per_node": 3}  # parsing reads this one: the facts no longer apply
    with pytest.raises(RuntimeError, match="dropped"):
        cache.facts(raw)
    with pytest.raises(ValueError, match="dropped"):
        raw.to_dict()  # nor saved as if it had printed nothing


def test_a_new_document_is_a_new_key() -> None:
    raw = NodeRaw(name="n", address="a", port=None, user=None, groups=[], outcome="ok", message="", started=0.0,
                  duration_s=0.0, transport="ssh", collector={"probes": {}})
    before = raw.facts_key()
    raw.collector = {"probes": {}}  # equal, but another document: parsed facts must not be reused blindly
    assert raw.facts_key() != before


def test_equal_documents_are_parsed_once_in_a_run() -> None:
    """RunFacts' memo holds documents' parses and probe texts' parses: a document's own ~20 probe entries must
    not push its parse out before the next node that printed the same document is parsed (they did, with one
    bound for both: every node of the simulated fleet was parsed again)."""
    bundle = _demo()
    ok = [raw for raw in bundle.nodes if raw.outcome == "ok" and raw.collector]
    cache = RunFacts()
    copies = []
    for i in range(3):
        for raw in ok:
            twin = dataclasses.replace(raw, name=f"{raw.name}-copy{i}", collector=copy.deepcopy(raw.collector))
            cache.add(twin)
            copies.append((raw, twin))
    first = {}
    for raw, twin in copies:
        facts = cache.facts(twin)
        first.setdefault(raw.name, facts)
        assert facts.name == twin.name
        assert facts.gpus is first[raw.name].gpus and facts.topology is first[raw.name].topology  # one parse
