"""--shard K/N and `preflight merge` against real sshd daemons: two shards merged judge as the unsharded run.

The fleet's faults are ones only a fleet-wide check catches (a node on another driver, one whose GPU↔GPU
topology differs from the others'), and the shard that holds them has too few healthy nodes to outvote them:
the majority that names them is decided across shards. Each shard's own run cannot judge it (its fleet-wide
checks read "not judged across the fleet"); the merged bundles give the unsharded verdict, node by node.
Only the GPU/IB tools are stand-ins (preflight/sim); SSH, the collector, the CLI and the engine are real.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from preflight.cli import main
from preflight.inventory.shard import Shard, members

FLEET = [
    ("node-01", "h100-healthy"),
    ("node-02", "h100-healthy"),
    ("node-03", "driver-mismatch"),  # only versions.driver.consistent (against the fleet majority) catches these two
    ("node-04", "driver-mismatch"),
    ("node-05", "h100-healthy"),
    ("node-06", "topology-degraded"),  # and topology.consistent (fleet majority) this one
]
NAMES = [n for n, _p in FLEET]
# Measured afresh by every collection (the controller's clock against the node's): its observed value differs
# between two runs of the same fleet, sharded or not; its verdict does not.
MEASURED = {"network.clock_skew"}


def _verdicts(doc: dict[str, Any]) -> list[Any]:
    """What a report says of each node and the fleet (not how long each node took)."""
    nodes = [(n["name"], n["outcome"], n["status"], n["reason"], n["coverage"],
              [(f["check"], f["status"], f["subject"], None if f["check"] in MEASURED else f["observed"], f["expected"],
                f["expected_source"], f["msg"]) for f in n["findings"]]) for n in doc["nodes"]]
    return [nodes, [(f["check"], f["status"], f["msg"]) for f in doc["fleet_findings"]], doc["summary"]["counts"],
            doc["summary"]["exit_code"]]


@pytest.fixture(scope="module")
def runs(sim_fleet_factory, tmp_path_factory) -> dict[str, Any]:
    fleet = sim_fleet_factory(FLEET)
    work = tmp_path_factory.mktemp("shards")
    inv = fleet.write_inventory(work / "sim.yaml", thresholds=fleet.sandbox_thresholds())
    common = ["-i", str(inv), "--headless", "-q", "--no-history", "--forks", "8"]
    codes = {"whole": main(["run", *common, "--json", str(work / "whole.json")])}
    for k in (1, 2):
        codes[f"shard{k}"] = main(["run", *common, "--shard", f"{k}/2", "--save", str(work / f"s{k}"),
                                   "--json", str(work / f"s{k}.json")])
    codes["merge"] = main(["merge", str(work / "s1"), str(work / "s2"), "-q", "--no-history",
                           "--json", str(work / "merged.json"), "--save", str(work / "merged")])
    codes["partial"] = main(["merge", str(work / "s1"), "-q", "--no-history", "--json", str(work / "partial.json")])
    codes["reports"] = main(["merge", str(work / "s1.json"), str(work / "s2.json"), "-q", "--no-history",
                             "--json", str(work / "reports.json")])
    docs = {name: json.loads((work / f"{name}.json").read_text())
            for name in ("whole", "s1", "s2", "merged", "partial", "reports")}
    return {"codes": codes, "docs": docs, "work": work}


def test_the_shard_alone_would_pick_the_wrong_driver_majority() -> None:
    """The two odd-driver nodes share a shard with one healthy node: that shard's own majority is the odd driver
    (it would blame the healthy node); across both shards the majority is the healthy nodes' driver."""
    k = next(k for k in (1, 2) if "node-03" in members(NAMES, Shard(k, 2)))
    mine = members(NAMES, Shard(k, 2))
    odd = [n for n in mine if dict(FLEET)[n] == "driver-mismatch"]
    assert odd == ["node-03", "node-04"] and len(odd) > len(mine) - len(odd), f"shard {k} is {mine}: pick other names"
    assert 2 * len(odd) < len(NAMES)


def test_every_node_is_in_exactly_one_shard(runs) -> None:
    s1 = [n["name"] for n in runs["docs"]["s1"]["nodes"]]
    s2 = [n["name"] for n in runs["docs"]["s2"]["nodes"]]
    assert sorted(s1 + s2) == sorted(NAMES) and not set(s1) & set(s2)
    assert runs["docs"]["s1"]["source"]["shard"]["shards"] == [1]
    assert runs["docs"]["s1"]["source"]["shard"]["total"] == len(NAMES)


def test_merged_bundles_give_the_unsharded_verdict(runs) -> None:
    whole, merged = runs["docs"]["whole"], runs["docs"]["merged"]
    assert runs["codes"]["merge"] == runs["codes"]["whole"] == 2
    assert _verdicts(merged) == _verdicts(whole)
    fails = {(n["name"], f["check"]) for n in merged["nodes"] for f in n["findings"] if f["status"] == "fail"}
    assert {("node-03", "versions.driver.consistent"), ("node-04", "versions.driver.consistent"),
            ("node-06", "topology.consistent")} <= fails
    assert not any(n["name"] == "node-01" and n["status"] == "fail" for n in merged["nodes"])
    assert merged["source"]["kind"] == "merge" and merged["source"]["shard"]["shards"] == [1, 2]


def test_a_shard_alone_cannot_judge_the_fleet_wide_checks(runs) -> None:
    for name in ("s1", "s2"):
        for n in runs["docs"][name]["nodes"]:
            for f in n["findings"]:
                if f["check"] in ("versions.driver.consistent", "topology.consistent"):
                    assert f["status"] == "error" and f["msg"].startswith("not judged across the fleet"), f


def test_the_merged_bundle_replays_to_the_same_verdict(runs, tmp_path) -> None:
    out = tmp_path / "replay.json"
    assert main(["replay", str(runs["work"] / "merged"), "-q", "--no-history", "--json", str(out)]) == 2
    assert _verdicts(json.loads(out.read_text())) == _verdicts(runs["docs"]["whole"])


def test_a_partial_merge_is_partial_and_never_passes(runs) -> None:
    doc = runs["docs"]["partial"]
    assert runs["codes"]["partial"] == 2
    lost = set(members(NAMES, Shard(2, 2)))
    for n in doc["nodes"]:
        if n["name"] in lost:
            assert n["outcome"] == "error" and "shard 2/2 is missing" in n["message"]
        assert n["status"] != "pass"


def test_merged_reports_join_node_verdicts_and_refuse_to_judge_the_fleet(runs) -> None:
    doc, whole = runs["docs"]["reports"], runs["docs"]["whole"]
    assert runs["codes"]["reports"] == 2
    assert [n["name"] for n in doc["nodes"]] == [n["name"] for n in whole["nodes"]]
    for n, w in zip(doc["nodes"], whole["nodes"]):
        for f, g in zip(n["findings"], w["findings"]):
            if f["check"] in ("versions.driver.consistent", "topology.consistent"):
                assert f["status"] == "error" and "merge the shards' bundles" in (f["hint"] or "")
            elif f["check"].startswith(("gpu.clocks", "nvlink.links", "pcie.")):
                assert (f["status"], f["msg"]) == (g["status"], g["msg"])
