"""Acknowledged findings: `acknowledge:` in the inventory and `--ack FILE`, live and expired, on every report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.cli import main
from preflight.cli.common import demo_bundle_path
from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.inventory import InventoryError, load_inventory
from preflight.results import EXIT_FAIL, EXIT_OK, Status, exit_code

# the demo recording: gpu-03 fails versions.driver.consistent, gpu-04 fails nvlink.links.active + topology.consistent
ACKS = [
    {"check": "versions.driver.*", "nodes": ["gpu-03"], "reason": "RMA 4711", "expires": "2099-12-31", "by": "alice",
     "source": "test"},
    {"check": "nvlink", "nodes": ["gpu-0[4-5]"], "reason": "tray swap", "expires": "2020-01-31", "by": "bob",
     "source": "test"},
]


def test_a_live_acknowledgement_does_not_fail_and_says_who_why_until() -> None:
    report, _ = judge(load_bundle(demo_bundle_path()), acks=ACKS[:1], today="2025-06-01")
    node = report.node("gpu-03")
    assert node is not None and node.status == Status.PASS
    (f,) = [f for f in node.findings if f.check == "versions.driver.consistent"]
    assert f.status == Status.ACCEPTED
    assert f.acknowledged == {"by": "alice", "reason": "RMA 4711", "expires": "2099-12-31", "source": "test",
                              "status": "fail", "expired": False}
    assert f.msg.startswith("acknowledged by alice until 2099-12-31 (RMA 4711); was fail:")
    assert "acknowledged: versions.driver.consistent" in node.reason
    assert (node.coverage.judged, node.coverage.accepted) == (42, 1)  # judged; the 1 accepted gap is gpu.xid
    assert f.to_dict()["acknowledged"]["by"] == "alice"


def test_an_expired_acknowledgement_fails_saying_so() -> None:
    report, _ = judge(load_bundle(demo_bundle_path()), acks=ACKS, today="2025-06-01")
    node = report.node("gpu-04")
    assert node is not None and node.status == Status.FAIL
    f = next(f for f in node.findings if f.check == "nvlink.links.active" and f.status == Status.FAIL)
    assert f.msg.startswith("acknowledgement EXPIRED on 2020-01-31 (acknowledged by bob: tray swap):")
    assert f.acknowledged is not None and f.acknowledged["expired"] is True
    assert exit_code(report) == EXIT_FAIL


def test_the_expiry_day_itself_still_holds() -> None:
    ack = [{**ACKS[0], "expires": "2025-06-01"}]
    report, _ = judge(load_bundle(demo_bundle_path()), acks=ack, today="2025-06-01")
    assert report.node("gpu-03").status == Status.PASS  # type: ignore[union-attr]


def test_a_pass_and_an_error_are_never_acknowledged() -> None:
    ack = [{**ACKS[0], "check": "*", "nodes": ["*"]}]
    report, _ = judge(load_bundle(demo_bundle_path()), acks=ack, today="2025-06-01")
    for node in report.nodes:
        for f in node.findings:
            if f.acknowledged:
                assert f.acknowledged["status"] in ("fail", "warn")
    assert exit_code(report) == EXIT_OK


INV = """\
acknowledge:
  - check: versions.driver.consistent
    nodes: [gpu-03]
    reason: RMA 4711
    expires: 2099-12-31
    by: alice
hosts:
  gpu-0[1-4]:
"""


def test_inventory_acknowledge_reaches_the_nodes_it_names(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text(INV)
    inv = load_inventory(tmp_path / "inv.yaml")
    by = {n.name: n for n in inv.nodes}
    (ack,) = by["gpu-03"].expect.get("acknowledge")
    assert ack["by"] == "alice" and ack["expires"] == "2099-12-31" and ack["source"].endswith("inv.yaml:2")
    assert by["gpu-01"].expect.get("acknowledge") is None
    assert by["gpu-03"].expect.as_dict()["acknowledge"][0]["reason"] == "RMA 4711"


@pytest.mark.parametrize(("edit", "where", "problem"), [
    ("    expires: 2099-12-31\n", "inv.yaml:2: acknowledge[0].expires", "missing 'expires'"),
    ("    expires: 2099-12-31\n|    expires: next week\n", "inv.yaml:5: acknowledge[0].expires", "YYYY-MM-DD"),
    ("    nodes: [gpu-03]\n|    nodes: [gpu-99]\n", "inv.yaml:2: acknowledge.0.nodes", "'gpu-99' matches no host"),
    ("    by: alice\n|    by: alice\n    until: soon\n", "inv.yaml:7: acknowledge[0].until", "unknown key 'until'"),
])
def test_inventory_acknowledge_errors_name_file_and_line(tmp_path: Path, edit: str, where: str, problem: str) -> None:
    old, _, new = edit.partition("|")
    (tmp_path / "inv.yaml").write_text(INV.replace(old, new))
    with pytest.raises(InventoryError) as exc:
        load_inventory(tmp_path / "inv.yaml")
    text = str(exc.value)
    assert problem in text and text.startswith(str(tmp_path / where.split(":")[0])), text


def test_acknowledge_under_expect_is_refused(tmp_path: Path) -> None:
    (tmp_path / "inv.yaml").write_text("expect:\n  acknowledge: []\nhosts:\n  a:\n")
    with pytest.raises(InventoryError, match=r"inv.yaml:2: expect.acknowledge: acknowledgements go in the top-level"):
        load_inventory(tmp_path / "inv.yaml")


def test_ack_file_on_replay_in_json_markdown_and_junit(tmp_path: Path) -> None:
    ack = tmp_path / "ack.yaml"
    ack.write_text("- check: versions.driver.*\n  nodes: gpu-03\n  reason: RMA 4711\n  expires: 2099-12-31\n"
                   "  by: alice\n")
    out = tmp_path / "r.json"
    md, xml = tmp_path / "r.md", tmp_path / "r.xml"
    code = main(["replay", str(demo_bundle_path()), "--ack", str(ack), "--json", str(out), "--markdown", str(md),
                 "--junit", str(xml), "-q", "--no-history"])
    assert code == EXIT_FAIL  # gpu-04 still fails
    doc = json.loads(out.read_text())
    node = next(n for n in doc["nodes"] if n["name"] == "gpu-03")
    assert node["status"] == "pass"
    f = next(f for f in node["findings"] if f["check"] == "versions.driver.consistent")
    assert f["acknowledged"]["source"] == f"--ack {ack}:1"
    assert "acknowledged" in md.read_text() and "alice" in md.read_text()
    assert "acknowledged by alice until 2099-12-31" in xml.read_text()


def test_a_bad_ack_file_cannot_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ack = tmp_path / "ack.yaml"
    ack.write_text("- check: versions.driverz\n  nodes: gpu-03\n  reason: r\n  expires: 2099-12-31\n  by: a\n")
    assert main(["replay", str(demo_bundle_path()), "--ack", str(ack), "-q", "--no-history"]) == 3
    assert f"--ack {ack}:1: check:" in capsys.readouterr().err
