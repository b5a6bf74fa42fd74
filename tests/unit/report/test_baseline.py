"""Baseline drift on the demo's JSON report: each injected drift is found on the right node, and nothing else."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from preflight.report.baseline import BaselineError, Drift, compare, load_report

DEMO_BUNDLE = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo" / "bundle.json"


def edit(doc: dict[str, Any], node: str, check: str, subject: str | None = None, **changes: Any) -> dict[str, Any]:
    (n,) = [n for n in doc["nodes"] if n["name"] == node]
    hits = [f for f in n["findings"] if f["check"] == check and f["subject"] == subject]
    assert len(hits) == 1, (node, check, subject, len(hits))
    hits[0].update(changes)
    return hits[0]


def kinds(drift: Drift) -> set[tuple[str, str | None, str | None, str | None]]:
    return {(i.kind, i.node, i.check, i.subject) for i in drift.items}


def test_same_report_has_no_drift(demo_doc: dict[str, Any]) -> None:
    drift = compare(demo_doc, json.loads(json.dumps(demo_doc)))
    assert drift.items == () and drift.exit_code == 0
    assert drift.to_dict()["items"] == []


def test_driver_changed_on_one_node(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    edit(demo_doc, "gpu-02", "versions.driver.consistent", observed="550.54.15", status="fail")
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("version_changed", "gpu-02", "versions.driver.consistent", None)}
    (item,) = drift.items
    assert (item.before, item.after) == ("565.57.01", "550.54.15")
    assert item.text.startswith("driver 565.57.01 → 550.54.15 on gpu-02")
    assert drift.exit_code == 4


def test_driver_changed_even_when_it_still_passes(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    edit(demo_doc, "gpu-01", "versions.cuda.consistent", observed="12.8")  # whole-fleet upgrades pass but drift
    assert kinds(compare(base, demo_doc)) == {("version_changed", "gpu-01", "versions.cuda.consistent", None)}


def test_a_lost_nvlink(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    edit(demo_doc, "gpu-01", "nvlink.links.active", "GPU2", observed="16 of 18", status="fail")
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("nvlink_down", "gpu-01", "nvlink.links.active", "GPU2")}
    assert "18 → 16" in drift.items[0].text and drift.exit_code == 4


def test_busbw_down_20_percent_is_drift_5_percent_is_not(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    assert edit(base, "gpu-02", "nccl.allreduce.busbw")["observed"] == "479.7 / 479.7 GB/s at 8G (spread 0.0%)"
    edit(demo_doc, "gpu-02", "nccl.allreduce.busbw", observed="383.8 / 383.7 GB/s at 8G (spread 0.0%)")  # -20%
    edit(demo_doc, "gpu-01", "nccl.allreduce.busbw", observed="455.7 / 455.6 GB/s at 8G (spread 0.0%)")  # -5%
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("busbw_drop", "gpu-02", "nccl.allreduce.busbw", None)}
    assert "479.7 → 383.8" in drift.items[0].text and "20.0%" in drift.items[0].text
    strict = compare(base, demo_doc, bandwidth_drop_pct=4)
    assert kinds(strict) == {("busbw_drop", "gpu-02", "nccl.allreduce.busbw", None),
                             ("busbw_drop", "gpu-01", "nccl.allreduce.busbw", None)}


def test_a_node_gone_and_a_node_new(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    gone = [n for n in demo_doc["nodes"] if n["name"] == "gpu-04"]
    demo_doc["nodes"] = [n for n in demo_doc["nodes"] if n["name"] != "gpu-04"]
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("node_missing", "gpu-04", None, None)} and drift.exit_code == 4
    demo_doc["nodes"] = json.loads(json.dumps(base["nodes"]))
    demo_doc["nodes"].append(dict(gone[0], name="gpu-05"))
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("node_new", "gpu-05", None, None)} and drift.exit_code == 1


def test_every_drift_at_once(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    edit(demo_doc, "gpu-02", "versions.driver.consistent", observed="550.54.15", status="fail")
    edit(demo_doc, "gpu-01", "nvlink.links.active", "GPU2", observed="17 of 18", status="fail")
    edit(demo_doc, "gpu-02", "nccl.allreduce.busbw", observed="383.8 / 383.7 GB/s at 8G (spread 0.0%)")
    edit(demo_doc, "gpu-01", "nccl.allreduce.busbw", observed="455.7 / 455.6 GB/s at 8G (spread 0.0%)")
    demo_doc["nodes"] = [n for n in demo_doc["nodes"] if n["name"] != "gpu-04"]
    drift = compare(base, demo_doc)
    assert kinds(drift) == {
        ("version_changed", "gpu-02", "versions.driver.consistent", None),
        ("nvlink_down", "gpu-01", "nvlink.links.active", "GPU2"),
        ("busbw_drop", "gpu-02", "nccl.allreduce.busbw", None),
        ("node_missing", "gpu-04", None, None),
    }
    assert drift.exit_code == 4 and len(drift.regressions) == 4
    doc = json.loads(json.dumps(drift.to_dict()))  # serialisable
    assert doc["exit_code"] == 4 and doc["regressions"] == 4 and len(doc["items"]) == 4


def test_fixed_and_status_regressions(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    edit(demo_doc, "gpu-03", "versions.driver.consistent", observed="565.57.01", status="pass")  # the odd node fixed
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("fixed", "gpu-03", "versions.driver.consistent", None)} and drift.exit_code == 1
    edit(demo_doc, "gpu-02", "memory.shm", status="warn", msg="/dev/shm nearly full")  # same value, worse status
    drift = compare(base, demo_doc)
    assert ("regression", "gpu-02", "memory.shm", None) in kinds(drift) and drift.exit_code == 4
    (reg,) = drift.regressions
    assert (reg.before, reg.after) == ("pass", "warn")


def test_skipped_now_is_not_drift(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    edit(demo_doc, "gpu-01", "nccl.allreduce.busbw", status="skip", observed=None)  # --nccl not given this time
    edit(demo_doc, "gpu-04", "nvlink.links.active", "GPU5", status="skip", observed=None)  # a fail not judged now
    assert compare(base, demo_doc).items == ()


def test_node_unreachable_now(demo_doc: dict[str, Any]) -> None:
    base = json.loads(json.dumps(demo_doc))
    n = next(n for n in demo_doc["nodes"] if n["name"] == "gpu-02")
    n.update(outcome="timeout", message="connect timed out", status="error", findings=[])
    drift = compare(base, demo_doc)
    assert kinds(drift) == {("node_unreachable", "gpu-02", None, None)} and drift.exit_code == 4
    back = compare(demo_doc, base)
    assert kinds(back) == {("node_reachable", "gpu-02", None, None)} and back.exit_code == 1


def test_load_report_reads_a_json_file(demo_doc: dict[str, Any], tmp_path: Path) -> None:
    p = tmp_path / "good.json"
    p.write_text(json.dumps(demo_doc))
    assert compare(load_report(p), demo_doc).exit_code == 0


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    ("", "empty"),
    ("{\"schema\": \"preflight-report\",", "not valid JSON (line 1"),
    ("[1, 2]", "top level is list"),
    ("{\"schema\": \"something-else\", \"nodes\": []}", "not a preflight JSON report"),
    ("{\"schema\": \"preflight-report\", \"schema_version\": 99, \"nodes\": []}", "schema_version 99"),
    ("{\"schema\": \"preflight-report\", \"schema_version\": 1, \"nodes\": {}}", "'nodes' is missing or not a list"),
    ("{\"schema\": \"preflight-report\", \"schema_version\": 1, \"nodes\": [{\"name\": \"a\", \"findings\": "
     "[{\"check\": \"gpu.count\", \"status\": \"bad\"}]}]}", "status 'bad'"),
])
def test_bad_baseline_files_raise_a_clear_error(tmp_path: Path, content: str | None, problem: str) -> None:
    p = tmp_path / "GOOD.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(BaselineError) as exc:
        load_report(p)
    assert str(p) in str(exc.value) and problem in str(exc.value)


def test_a_bundle_or_a_directory_is_named_as_such(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="saved bundle, not a JSON report"):
        load_report(DEMO_BUNDLE)
    with pytest.raises(BaselineError, match="is a directory"):
        load_report(DEMO_BUNDLE.parent)


def test_compare_refuses_a_non_report(demo_doc: dict[str, Any]) -> None:
    with pytest.raises(BaselineError, match="baseline: "):
        compare({"nodes": []}, demo_doc)
