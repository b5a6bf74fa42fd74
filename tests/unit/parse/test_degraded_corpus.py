"""Every corpus recording from a degraded machine (tests/fixtures/corpus/DEGRADED.md), put into a healthy
recorded node in place of the probe it answers, makes that node anything but `pass`."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest

from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.parse.common import strip_corpus_header
from preflight.results import Status

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
DEMO = ROOT / "preflight" / "data" / "demo" / "bundle.json"
ROWS = re.findall(r"^\| `([^`]+)` \| (\w+) \| (.+?) \|$", (CORPUS / "DEGRADED.md").read_text(), re.M)


def test_the_list_names_real_corpus_files() -> None:
    assert len(ROWS) >= 12
    for rel, _, _ in ROWS:
        assert (CORPUS / rel).is_file(), rel


@pytest.mark.parametrize("rel,probe,fault", ROWS, ids=[r[0] for r in ROWS])
def test_a_degraded_recording_never_passes(rel: str, probe: str, fault: str) -> None:
    bundle = copy.deepcopy(load_bundle(DEMO))
    raw = bundle.nodes[0]
    body = strip_corpus_header((CORPUS / rel).read_text())[1]
    raw.collector["probes"][probe] = {"rc": 0, "stdout": body, "stderr": "", "error": None, "kind": "cmd",
                                      "argv": [probe]}
    report, _ = judge(bundle)
    node = report.node(raw.name)
    assert node is not None and node.status != Status.PASS, f"{rel} ({fault}) passed: {node.reason if node else ''}"
