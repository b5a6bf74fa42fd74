"""`preflight merge` on shards cut from the demo recording: the merged verdict is the unsharded one; refusals exit 3.

The shards are the demo bundle's nodes split by `inventory.shard.members` and stamped with `shard_record`, what
`run --shard K/N --save DIR` writes. The demo's driver fault (gpu-03 against 3 of 4 nodes) is decided by the
fleet majority across both shards: shard 1 alone holds one node of each driver.
"""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from preflight.cli import demo_bundle_path, main
from preflight.collect.bundle import Bundle, load_bundle, save_bundle
from preflight.engine import all_checks, judge
from preflight.inventory.shard import Shard, members, shard_record
from preflight.merge import (
    FLEET_READING_NODE_CHECKS,
    PARTIAL_PREFIX,
    REPORTS_HINT,
    MergeError,
    fleet_dependent,
    merge_bundles,
)
from preflight.results import Status

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "preflight" / "report" / "schema.json").read_text())
FLEET = fleet_dependent(all_checks())


def _demo() -> Bundle:
    return load_bundle(demo_bundle_path())


def _shard(whole: Bundle, k: int, n: int, names: list[str] | None = None) -> Bundle:
    names = names or [x.name for x in whole.nodes]
    keep = set(members(names, Shard(k, n)))
    return Bundle(nodes=[copy.deepcopy(x) for x in whole.nodes if x.name in keep], created=whole.created + k,
                  tool_version=whole.tool_version, inventory=dict(whole.inventory),
                  options={**whole.options, "shard": shard_record(names, [k], n)})


def _save_shards(tmp_path: Path, n: int = 2) -> list[str]:
    whole = _demo()
    return [str(save_bundle(_shard(whole, k, n), tmp_path / f"shard{k}")) for k in range(1, n + 1)]


def _signature(report: Any) -> tuple[Any, Any]:
    nodes = [(n.name, n.status, n.reason, tuple((f.check, f.status, f.subject, f.observed, f.expected,
                                                 f.expected_source, f.msg) for f in n.findings)) for n in report.nodes]
    return nodes, [(f.check, f.status, f.msg) for f in report.fleet_findings]


def _json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def test_the_demo_fault_is_decided_across_shards() -> None:
    whole = _demo()
    s1 = _shard(whole, 1, 2)
    assert {x.name for x in s1.nodes} == {"gpu-03", "gpu-04"}  # one driver each: no majority inside the shard


def test_merged_bundles_judge_as_the_unsharded_run() -> None:
    whole = _demo()
    merged = merge_bundles([(f"s{k}", _shard(whole, k, 2)) for k in (2, 1)])  # any order of inputs
    assert [x.name for x in merged.nodes] == [x.name for x in whole.nodes]  # the selection's order
    assert _signature(judge(merged)[0]) == _signature(judge(whole)[0])
    driver = [f for f in judge(merged)[0].node("gpu-03").findings if f.check == "versions.driver.consistent"]
    assert driver and driver[0].status == Status.FAIL


@pytest.mark.parametrize("n", [3, 4])
def test_more_shards_merge_to_the_same_verdict(n: int) -> None:
    whole = _demo()
    merged = merge_bundles([(f"s{k}", _shard(whole, k, n)) for k in range(1, n + 1)])
    assert _signature(judge(merged)[0]) == _signature(judge(whole)[0])


def test_one_shard_alone_never_passes_a_fleet_wide_check() -> None:
    report, _ = judge(_shard(_demo(), 2, 2))  # gpu-01, gpu-02: healthy, the same driver
    seen = 0
    for node in report.nodes:
        for f in node.findings:
            if f.check in FLEET and (f.expected_source is None or f.expected_source.startswith("fleet")):
                assert f.status not in (Status.PASS, Status.WARN, Status.FAIL), f
                if f.status == Status.ERROR and f.msg.startswith(PARTIAL_PREFIX):
                    seen += 1
    assert seen and all(n.status == Status.ERROR for n in report.nodes)
    # a verdict against a value the inventory pins does not depend on the other nodes: it stands
    pinned = [f for n in report.nodes for f in n.findings if f.check == "gpu.count"]
    assert pinned and all(f.status == Status.PASS for f in pinned)


def test_cli_merge_equals_replay_of_the_whole(tmp_path: Path) -> None:
    shards = _save_shards(tmp_path)
    save_bundle(_demo(), tmp_path / "whole")
    assert main(["merge", *shards, "-q", "--json", str(tmp_path / "m.json"), "--junit", str(tmp_path / "m.xml"),
                 "--save", str(tmp_path / "merged"), "--no-history"]) == 2
    assert main(["replay", str(tmp_path / "whole"), "-q", "--json", str(tmp_path / "w.json"), "--no-history"]) == 2
    m, w = _json(tmp_path / "m.json"), _json(tmp_path / "w.json")
    jsonschema.validate(m, SCHEMA)
    assert m["source"]["kind"] == "merge" and m["source"]["shard"]["shards"] == [1, 2]
    assert m["nodes"] == w["nodes"] and m["fleet_findings"] == w["fleet_findings"] and m["summary"] == w["summary"]
    assert "<testsuite" in (tmp_path / "m.xml").read_text()
    # the merged bundle replays to the same verdicts
    assert main(["replay", str(tmp_path / "merged"), "-q", "--json", str(tmp_path / "r.json"), "--no-history"]) == 2
    assert _json(tmp_path / "r.json")["nodes"] == w["nodes"]


def test_partial_merge_names_the_missing_shard_and_never_passes(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    shards = _save_shards(tmp_path, n=3)
    code = main(["merge", shards[0], shards[2], "--no-color", "--json", str(tmp_path / "p.json"), "--no-history",
                 "--save", str(tmp_path / "partial")])
    out = capsys.readouterr().out
    assert code == 2 and "PARTIAL" in out and "2/3" in out
    doc = _json(tmp_path / "p.json")
    jsonschema.validate(doc, SCHEMA)
    whole = _demo()
    lost = members([x.name for x in whole.nodes], Shard(2, 3))
    by = {n["name"]: n for n in doc["nodes"]}
    assert [n["name"] for n in doc["nodes"]] == [x.name for x in whole.nodes]
    for name in lost:
        assert by[name]["outcome"] == "error" and "shard 2/3 is missing" in by[name]["message"]
    for n in doc["nodes"]:
        for f in n["findings"]:
            if f["check"] in FLEET and (f["expected_source"] or "fleet").startswith("fleet"):
                assert f["status"] not in ("pass", "warn", "fail"), f
    # the missing shard merged later into the partial merge: the whole verdict
    assert main(["merge", str(tmp_path / "partial"), shards[1], "-q", "--json", str(tmp_path / "all.json"),
                 "--no-history"]) == 2
    save_bundle(whole, tmp_path / "whole")
    main(["replay", str(tmp_path / "whole"), "-q", "--json", str(tmp_path / "w.json"), "--no-history"])
    assert _json(tmp_path / "all.json")["nodes"] == _json(tmp_path / "w.json")["nodes"]


def _refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(["merge", *argv, "-q", "--no-history"]) == 3
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_refuses_the_same_shard_twice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = _save_shards(tmp_path)
    assert "given twice" in _refused(capsys, shards[0], shards[0])
    copy_dir = tmp_path / "again"
    save_bundle(load_bundle(shards[1]), copy_dir)
    assert "given twice" in _refused(capsys, shards[0], shards[1], str(copy_dir))


def test_refuses_overlapping_nodes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = _demo()
    s1, s2 = _shard(whole, 1, 2), _shard(whole, 2, 2)
    s2.nodes.append(copy.deepcopy(s1.nodes[0]))
    a, b = save_bundle(s1, tmp_path / "a"), save_bundle(s2, tmp_path / "b")
    assert "is in both" in _refused(capsys, str(a), str(b))


def test_refuses_a_node_outside_its_shard_or_missing_from_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = _demo()
    s1, s2 = _shard(whole, 1, 2), _shard(whole, 2, 2)
    s1.nodes.pop()
    assert "not its shard's" in _refused(capsys, str(save_bundle(s1, tmp_path / "a")), str(save_bundle(s2, tmp_path / "b")))


def test_refuses_mixed_inventories_and_mixed_n(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    whole = _demo()
    names = [x.name for x in whole.nodes]
    other = _shard(whole, 2, 2, names=names + ["gpu-05"])  # cut from a selection with one more host
    a = save_bundle(_shard(whole, 1, 2), tmp_path / "a")
    assert "mixed inventories" in _refused(capsys, str(a), str(save_bundle(other, tmp_path / "b")))
    assert "mixed inventories" in _refused(capsys, str(a), str(save_bundle(_shard(whole, 2, 3), tmp_path / "c")))
    sha = _shard(whole, 2, 2)
    sha.options["shard"]["inventory_sha256"] = "0" * 64
    a_sha = _shard(whole, 1, 2)
    a_sha.options["shard"]["inventory_sha256"] = "1" * 64
    assert "different inventory files" in _refused(capsys, str(save_bundle(a_sha, tmp_path / "d")),
                                                   str(save_bundle(sha, tmp_path / "e")))


def test_refuses_what_is_no_shard_and_different_probes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    shards = _save_shards(tmp_path)
    assert "not a shard" in _refused(capsys, shards[0], str(demo_bundle_path()))
    s2 = load_bundle(shards[1])
    s2.options["probes"] = list(s2.options["probes"])[:-1]
    assert "different probes" in _refused(capsys, shards[0], str(save_bundle(s2, tmp_path / "p")))
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    assert "neither" in _refused(capsys, shards[0], str(bad))
    assert "no such file" in _refused(capsys, shards[0], str(tmp_path / "nope"))
    with pytest.raises(MergeError):
        merge_bundles([])


def _shard_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str], n: int = 2) -> list[str]:
    out = []
    for k, path in enumerate(_save_shards(tmp_path, n), start=1):
        target = tmp_path / f"r{k}.json"
        main(["replay", path, "-q", "--json", str(target), "--no-history"])
        out.append(str(target))
    capsys.readouterr()
    return out


def test_reports_join_per_node_verdicts_but_not_the_fleet_wide_checks(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    reports = _shard_reports(tmp_path, capsys)
    assert _json(Path(reports[0]))["source"]["shard"]["shards"] == [1]  # a shard's report records its shard
    assert main(["merge", *reports, "--no-color", "--json", str(tmp_path / "m.json"), "--no-history"]) == 2
    assert "could not be judged across shards" in capsys.readouterr().out
    save_bundle(_demo(), tmp_path / "whole")
    main(["replay", str(tmp_path / "whole"), "-q", "--json", str(tmp_path / "w.json"), "--no-history"])
    m, w = _json(tmp_path / "m.json"), _json(tmp_path / "w.json")
    jsonschema.validate(m, SCHEMA)
    assert [n["name"] for n in m["nodes"]] == [n["name"] for n in w["nodes"]]
    fleet_relative = 0
    for mn, wn in zip(m["nodes"], w["nodes"]):
        assert len(mn["findings"]) == len(wn["findings"])
        for mf, wf in zip(mn["findings"], wn["findings"]):
            relative = mf["check"] in FLEET and (wf["expected_source"] or "fleet").startswith("fleet")
            if relative and wf["status"] in ("pass", "warn", "fail"):
                fleet_relative += 1
                assert mf["status"] == "error" and mf["hint"] == REPORTS_HINT, mf
            else:  # node-scope verdicts join as they are
                assert (mf["check"], mf["status"], mf["msg"]) == (wf["check"], wf["status"], wf["msg"])
    assert fleet_relative


def test_reports_refuse_options_that_need_facts_and_mixing_with_bundles(tmp_path: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    reports = _shard_reports(tmp_path, capsys)
    assert "need facts" in _refused(capsys, *reports, "--checks", "gpu.*")
    assert "not both" in _refused(capsys, reports[0], str(tmp_path / "shard2"))
    assert "given twice" in _refused(capsys, reports[0], reports[0])


def test_fleet_reading_node_checks_list_is_true() -> None:
    """A node-scope check that reads the other nodes (ctx.fleet) must be listed, or a shard would pass it alone."""
    import checks.infiniband  # noqa: F401

    reading = set()
    for spec in all_checks():
        if spec.scope != "node":
            continue
        src = inspect.getsource(spec.fn)
        if "ctx.fleet" in src or "fleet.nodes" in src or "fleet.reachable" in src:
            reading.add(spec.id)
    assert reading == set(FLEET_READING_NODE_CHECKS)


def test_no_drain_on_a_partial_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A partial set's nodes read error on the fleet-wide checks: draining on it would drain healthy nodes."""
    shards = _save_shards(tmp_path)
    err = _refused(capsys, shards[0], "--drain")
    assert "partial set" in err and "--drain" in err
