"""The console report's last panel (the parallelism envelope) and topology.consistent's differing pairs."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.plan.envelope import envelope
from preflight.report import console as console_report

DEMO = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo"


def _render(**kwargs) -> str:
    report, facts = judge(load_bundle(DEMO))
    out = Console(width=80, record=True, color_system=None, file=io.StringIO())
    env = envelope(report, facts, kwargs.pop("model", None))
    console_report.render(report, out, envelope=env)
    return out.export_text()


def test_the_report_ends_with_the_envelope_at_80_columns() -> None:
    text = _render(model="meta-llama/Llama-3.1-70B")
    tail = text[text.index("parallelism envelope"):]
    assert "healthy 2 of 4 nodes" in tail and "TP ≤ 8" in tail and "fabric estimated" in tail
    assert "model meta-llama/Llama-3.1-70B" in tail and tail.count("✔ TP") in (1, 2, 3)
    assert all(len(line) <= 80 for line in text.splitlines())


def test_topology_consistent_shows_only_the_differing_pairs() -> None:
    text = _render()
    panel = text[text.index("topology.consistent · gpu-04"):]
    panel = panel[:panel.index("╰")]
    assert "GPU0↔GPU5" in panel and "(7 pairs): NV16, expected NV18" in panel
    assert "0-1:NV18" not in panel  # no 28-pair signature, neither observed nor expected
    assert "observed:" not in panel
