"""Markdown job summary: verdict, a readable table (symbols and words, escaped cells), FAIL sections, bounded."""

from __future__ import annotations

import dataclasses
import json
import re

from preflight.report.baseline import compare
from preflight.report.markdown_report import MAX_SECTIONS, cell, markdown_summary
from preflight.results import Finding, RunReport, Status


def _table_rows(md: str) -> list[str]:
    """The nodes table: the first run of lines that start with "| " (evidence blocks may hold such lines too)."""
    lines = md.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| node |"))
    rows = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        rows.append(line)
    return [r for r in rows if not r.startswith("|---")]


def _unescaped_pipes(line: str) -> int:
    return len(re.findall(r"(?<!\\)\|", line))


def test_demo_verdict_table_and_fail_sections(demo_report: RunReport) -> None:
    md = markdown_summary(demo_report, title="GPU pool preflight")
    first = md.splitlines()[0]
    assert first.startswith("## GPU pool preflight: ✖ FAIL (exit code 2)")
    # 8 checks do not apply on each of the 4 nodes (no NCCL interface in the inventory, addresses not names,
    # the 4 active-test checks: the recording ran no --level test, and ib.link_quality: no --mlxlink), and the
    # demo inventory accepts one gap per node (no recorded kernel log)
    assert "405 passed" in md and "3 failed" in md and "32 not applicable" in md and "4 accepted" in md
    assert "0 could not judge" in md
    rows = {r.split(" | ")[0][2:]: r for r in _table_rows(md)}
    assert set(rows) >= {"gpu-01", "gpu-02", "gpu-03", "gpu-04"}
    header = rows["node"].strip("| ").split(" | ")
    gpu03 = rows["gpu-03"].strip("| ").split(" | ")
    assert gpu03[header.index("versions")] == "✖ FAIL" and gpu03[header.index("nvlink")] == "✔ ok"
    assert "✔ ok" in rows["gpu-01"] and "✖ FAIL" not in rows["gpu-01"]
    assert gpu03[header.index("verdict")] == "✖ FAIL" and "versions.driver.consistent: driver 535.129.03" in rows["gpu-03"]
    assert "accepted unjudged: gpu.xid" not in rows["gpu-01"] and "42/43 judged (1 accepted)" in rows["gpu-01"]
    assert "### ✖ FAIL `versions.driver.consistent` · gpu-03" in md
    assert "### ✖ FAIL `nvlink.links.active` · gpu-04 · GPU5" in md
    assert "### ✖ FAIL `topology.consistent` · gpu-04" in md
    nv = md.split("### ✖ FAIL `nvlink.links.active`")[1].split("###")[0]
    assert "- **observed:** `16 of 18`" in nv and "- **expected:** `18 active` (from reference gpus.yaml" in nv
    assert "```text\n" in nv and "Link 11: <inactive>" in nv and "**hint:** Reseat" in nv


def test_cells_escape_pipes_and_backticks(mixed_report: RunReport) -> None:
    assert cell("a|b`c") == "a\\|b\\`c"
    n0 = mixed_report.nodes[0]
    renamed = dataclasses.replace(mixed_report, nodes=(dataclasses.replace(n0, name="gpu|`01`"),) + mixed_report.nodes[1:])
    md = markdown_summary(renamed)
    rows = _table_rows(md)
    ncols = _unescaped_pipes(rows[0])
    assert all(_unescaped_pipes(r) == ncols for r in rows), rows
    assert any(r.startswith("| gpu\\|\\`01\\` |") for r in rows)


def test_unreachable_warn_error_and_evidence_cap(mixed_report: RunReport) -> None:
    md = markdown_summary(mixed_report)
    assert "(exit code 2)" in md
    row = next(r for r in _table_rows(md) if r.startswith("| gpu-05 |"))
    assert "⨯ unreachable (timeout)" in row
    assert "### ⨯ unreachable gpu-05 (10.0.0.5)" in md and "connect timed out after 10 s \\<&\\>" in md
    assert "### ? error `gpu.xid` · gpu-01" in md
    assert "… 80 more lines cut" in md and "line 19 |" in md and "line 20 |" not in md
    assert "\x1b" not in md and "\x00" not in md
    assert "## Warnings" in md and "▲ warn `memory.shm`" in md
    warn_md = markdown_summary(mixed_report, fail_on="warn")
    assert "### ▲ warn `memory.shm` · gpu-01 · shm\\|`x`" in warn_md and "## Warnings" not in warn_md


def test_sections_are_capped(demo_report: RunReport) -> None:
    n0 = demo_report.nodes[0]
    many = tuple(Finding(check="gpu.temperature", node=n0.name, status=Status.FAIL, subject=f"GPU{i}", msg="hot")
                 for i in range(MAX_SECTIONS + 30))
    big = dataclasses.replace(demo_report, nodes=(dataclasses.replace(n0, findings=n0.findings + many),)
                              + demo_report.nodes[1:])
    md = markdown_summary(big)
    assert md.count("\n### ") == MAX_SECTIONS
    assert f"{3 + len(many) - MAX_SECTIONS} more failures not shown" in md


def test_clean_report_passes(demo_report: RunReport) -> None:
    nodes = tuple(dataclasses.replace(n, findings=tuple(f for f in n.findings if f.status != Status.FAIL))
                  for n in demo_report.nodes)
    md = markdown_summary(dataclasses.replace(demo_report, nodes=nodes))
    assert md.startswith("## preflight: ✔ passed (exit code 0)") and "## Failures" not in md


def test_drift_section(demo_report: RunReport, demo_doc: dict) -> None:
    base = json.loads(json.dumps(demo_doc))
    demo_doc["nodes"] = [n for n in demo_doc["nodes"] if n["name"] != "gpu-04"]
    md = markdown_summary(demo_report, drift=compare(base, demo_doc))
    assert "## Drift from baseline" in md and "| node_missing | gpu-04 |" in md and "Drift exit code **4**" in md
