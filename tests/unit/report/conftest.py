"""Reports for the CI-output tests: the bundled demo recording, judged by the real engine."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.report.json_report import report_dict
from preflight.results import Finding, NodeReport, RunReport, Status

DEMO = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo"


@pytest.fixture(scope="session")
def demo_report() -> RunReport:
    report, _ = judge(load_bundle(DEMO))
    return report


@pytest.fixture(scope="session")
def _demo_doc(demo_report: RunReport) -> dict[str, Any]:
    return report_dict(demo_report, source={"kind": "demo", "bundle": str(DEMO), "label": "recording", "inventory": None})


@pytest.fixture()
def demo_doc(_demo_doc: dict[str, Any]) -> dict[str, Any]:
    """A fresh deep copy of the demo's JSON report document (tests edit it)."""
    return copy.deepcopy(_demo_doc)


@pytest.fixture()
def mixed_report(demo_report: RunReport) -> RunReport:
    """The demo plus every status and an unreachable node, with hostile text (pipes, backticks, control chars)."""
    n1 = demo_report.nodes[0]
    extra = (
        Finding(check="memory.shm", node=n1.name, status=Status.WARN, subject="shm|`x`",
                observed="0.5 GiB", expected=">= 1 GiB", expected_source="NCCL docs", msg="small /dev/shm | `df`",
                evidence=("tmpfs 512M \x1b[31mred\x1b[0m \x00nul \x0bvt",), hint="remount with size=16g"),
        Finding(check="gpu.xid", node=n1.name, status=Status.ERROR, msg="dmesg unreadable\x07",
                evidence=tuple(f"line {i} | `tick`" for i in range(100))),
    )
    nodes = (dataclasses.replace(n1, findings=n1.findings + extra),) + demo_report.nodes[1:] + (
        NodeReport(name="gpu-05", address="10.0.0.5", outcome="timeout", message="connect timed out after 10 s <&>",
                   duration_s=10.25),
    )
    return dataclasses.replace(demo_report, nodes=nodes)
