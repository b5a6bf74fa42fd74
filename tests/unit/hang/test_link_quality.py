"""Grey links from mlxlink in `preflight hang`: each threshold (with its source) on the real healthy recording
changed one field at a time, the derived degraded recording end to end, and every way the probe can come back
without evidence (absent tool, not run, mlxlink's own error, cut short) read as not judged, never as healthy."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang
from preflight.hang.link_quality import link_quality_causes, node_ports
from preflight.ib_link import EFFECTIVE_BER_FAIL, RAW_BER_FAIL_FEC, judge_port
from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.mlxlink import MlxlinkPort, parse_mlxlink

IB = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "ib"
HEALTHY = strip_corpus_header((IB / "mlxlink-json-m-c-cx7-400g-dr4-osfp-mft-4.34.1.txt").read_text())[1]
DEGRADED = strip_corpus_header((IB / "mlxlink-json-m-c-cx7-400g-degraded-derived.txt").read_text())[1]
FORUM = strip_corpus_header((IB / "mlxlink-c-connectx4-100gbe-rs-fec-forum-blank-lines.txt").read_text())[1]


def _healthy() -> MlxlinkPort:
    p = parse_mlxlink(HEALTHY)
    assert isinstance(p, MlxlinkPort)
    return p


def _raw(name: str, probe: dict | None) -> NodeRaw:
    probes = {} if probe is None else {"mlxlink": probe}
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=100.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})


def _answer(ports: dict[str, str | dict]) -> dict:
    doc = {k: (v if isinstance(v, dict) else {"rc": 0, "stdout": v, "stderr": "", "error": None}) for k, v in ports.items()}
    return {"rc": 0, "stdout": json.dumps({"ports": doc}), "stderr": "", "error": None}


def test_real_healthy_recordings_cross_no_threshold() -> None:
    assert judge_port(_healthy()) == []
    forum = parse_mlxlink(FORUM)
    assert isinstance(forum, MlxlinkPort) and judge_port(forum) == []  # raw 3E-12 under RS-FEC is expected


@pytest.mark.parametrize(("change", "level", "words"), [
    ({"effective_ber": 4e-11, "effective_errors": 9}, "fail", "effective (post-FEC) BER 4E-11 > 1E-12"),
    ({"effective_errors": 3}, "warn", "3 effective (post-FEC) physical errors"),
    ({"raw_ber": 3e-4}, "fail", "raw (pre-FEC) BER 3E-04 > 2.4E-04"),
    ({"raw_ber": 2e-4}, None, ""),  # under what RS-FEC corrects: expected on PAM4
    ({"fec": "No FEC", "raw_ber": 2e-11}, "fail", "raw BER 2E-11 > 1E-12 on a link without FEC"),
    ({"fec": None, "raw_ber": 2e-9}, None, ""),  # FEC not shown: the raw BER cannot be judged
    ({"module_temp_c": 80.0}, "fail", "module temperature 80 C >= its high threshold 80 C"),
    ({"module_temp_c": 79.0}, None, ""),
    ({"module_temp_c": 95.0, "module_temp_high_c": None}, None, ""),  # no threshold shown: not invented
    ({"link_down": 2}, "warn", "2 link downs since the counters were cleared 2718.1 min ago"),
    ({"link_error_recovery": 20000}, "warn", "over 5/min"),
    ({"recommendation": "Bad signal integrity"}, "warn", "mlxlink recommends: Bad signal integrity"),
])
def test_each_threshold_on_the_real_recording(change: dict, level: str | None, words: str) -> None:
    found = judge_port(replace(_healthy(), **change))
    if level is None:
        assert found == []
        return
    assert len(found) == 1 and found[0].level == level and words in found[0].what, found
    assert found[0].source and found[0].action


def test_thresholds_are_the_sourced_values() -> None:
    assert (EFFECTIVE_BER_FAIL, RAW_BER_FAIL_FEC) == (1e-12, 2.4e-4)


def test_degraded_recording_is_one_cause_naming_node_device_port_numbers_sources_and_action() -> None:
    bundle = Bundle(nodes=[_raw("gpu-03", _answer({"mlx5_0/1": HEALTHY, "mlx5_1/1": DEGRADED}))])
    causes, notes = link_quality_causes(bundle)
    assert len(causes) == 1 and notes == []
    c = causes[0]
    assert c.node == "gpu-03" and c.kind == "link_quality" and c.score == 0.8
    assert c.title.startswith("fail: mlx5_1 port 1 on gpu-03 (400G, Active): grey link: ")
    for words in ("effective (post-FEC) BER 4E-11 > 1E-12", "raw (pre-FEC) BER 3E-04 > 2.4E-04",
                  "module temperature 83 C >= its high threshold 80 C", "6 link downs", "41 link error recoveries"):
        assert words in c.title
    assert any("ibdiagnet" in e for e in c.evidence) and any("000286734" in e for e in c.evidence)
    assert any("high temperature threshold" in e for e in c.evidence) and any("NVSentinel" in e for e in c.evidence)
    assert "mlxlink -d mlx5_1 -p 1 -m -c" in c.next_command and "--clear_counters" in c.next_command
    assert "check cooling" in c.next_command and "drain gpu-03" in c.next_command
    live = judge_hang(bundle)  # and it reaches the hang verdict
    assert [x.title for x in live.verdict.causes if x.kind == "link_quality"] == [c.title]


@pytest.mark.parametrize(("probe", "note"), [
    ({"rc": None, "stdout": "", "stderr": "", "error": "absent"}, "mlxlink not installed on n1"),
    ({"rc": None, "stdout": "", "stderr": "", "error": "timeout"}, "mlxlink probe: timeout on n1"),
    ({"rc": 0, "stdout": '{"ports": {"mlx5_0', "stderr": "", "error": None}, "mlxlink probe output unreadable on n1"),
])
def test_no_evidence_is_a_note_never_health(probe: dict, note: str) -> None:
    causes, notes = link_quality_causes(Bundle(nodes=[_raw("n1", probe)]))
    assert causes == [] and len(notes) == 1 and notes[0].startswith(note) and "not judged" in notes[0]


def test_ports_that_did_not_answer_are_named_as_not_judged() -> None:
    not_run = {"rc": None, "stdout": "", "stderr": "", "error": "not run", "note": "probe deadline reached"}
    failed = {"rc": 1, "stdout": "-E- Failed to open device: mlx5_1\n", "stderr": "", "error": None}
    cut = {"rc": 0, "stdout": HEALTHY[: len(HEALTHY) // 2], "stderr": "", "error": None}
    ports, why = node_ports(_raw("n1", _answer({"mlx5_0/1": not_run, "mlx5_1/1": failed, "mlx5_2/1": cut})))
    assert why is None and all(isinstance(v, Unparseable) for v in ports.values())
    assert ports["mlx5_0/1"].reason == "mlxlink not run (probe deadline reached)"
    assert ports["mlx5_1/1"].reason == "mlxlink exit 1: mlxlink error: Failed to open device: mlx5_1"
    causes, notes = link_quality_causes(Bundle(nodes=[_raw("n1", _answer({"mlx5_1/1": failed}))]))
    assert causes == [] and notes == ["mlxlink on n1 mlx5_1/1: could not judge (mlxlink exit 1: mlxlink error: "
                                      "Failed to open device: mlx5_1)"]


def test_a_partial_output_says_what_it_did_not_show() -> None:
    causes, notes = link_quality_causes(Bundle(nodes=[_raw("n1", _answer({"mlx5_0/1": FORUM}))]))
    assert causes == [] and len(notes) == 1 and "not seen: " in notes[0] and "Link Down Counter" in notes[0]


def test_not_asked_and_no_ib_are_silent() -> None:
    no_ib = {"rc": 0, "stdout": json.dumps({"ports": {}, "no_ib": True}), "stderr": "", "error": None}
    assert link_quality_causes(Bundle(nodes=[_raw("n1", None), _raw("n2", no_ib)])) == ([], [])


def test_a_node_without_python_says_why_mlxlink_was_not_read() -> None:
    raw = _raw("n1", {"rc": None, "stdout": "", "stderr": "", "error": "absent"})
    raw.collector["mode"] = "shell"
    causes, notes = link_quality_causes(Bundle(nodes=[raw]))
    assert causes == [] and notes[0].startswith("mlxlink not read: no python3 on the node") and "not judged" in notes[0]
