"""mlxlink parser on every real recording (text with padding, the forum's blank-line rendering, ANSI colour, --json),
the derived degraded document, cuts and mlxlink's own failures: fields absent are None and named, never healthy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.mlxlink import COUNTERS, MODULE, MlxlinkPort, parse_mlxlink
from preflight.textsafe import inert

IB = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "ib"
JSON_OK = IB / "mlxlink-json-m-c-cx7-400g-dr4-osfp-mft-4.34.1.txt"
JSON_BAD = IB / "mlxlink-json-m-c-cx7-400g-degraded-derived.txt"
FORUM = IB / "mlxlink-c-connectx4-100gbe-rs-fec-forum-blank-lines.txt"
ANSI = IB / "mlxlink-c-400g-counters-section-ansi-colour-sichek.txt"
SWITCH = IB / "mlxlink-spectrum-switch-25gbe-operational-info-fragment.txt"
JSON_FRAGMENT = IB / "mlxlink-json-connectx5-ib-edr-operational-info-fragment.txt"


def _body(path: Path) -> str:
    return strip_corpus_header(path.read_text())[1]


def _port(path: Path) -> MlxlinkPort:
    got = parse_mlxlink(_body(path))
    assert isinstance(got, MlxlinkPort), got
    return got


def test_real_json_m_c_document_every_field() -> None:
    p = _port(JSON_OK)
    assert (p.layout, p.state, p.physical_state, p.speed, p.width) == ("json", "Active", "ETH_AN_FSM_ENABLE", "400G", "4x")
    assert p.fec == "Standard_RS-FEC - (544,514)" and p.recommendation == "No issue was observed"
    assert (p.module_temp_c, p.module_temp_low_c, p.module_temp_high_c) == (61.0, -10.0, 80.0)
    assert (p.identifier, p.part_number, p.cable_type) == ("OSFP", "OSFP-400G-DR4", "Optical Module (separated)")
    assert p.effective_ber == 0.0 and p.effective_errors == 0  # 15E-255: no error counted
    assert p.raw_ber == 5e-10 and p.raw_errors_per_lane == (3017647, 15132549, 7368641, 9233545)
    assert (p.link_down, p.link_error_recovery, p.time_since_clear_min) == (0, 0, 2718.1)
    assert p.missing == () and not p.partial


def test_derived_degraded_document_reads_its_planted_numbers() -> None:
    p = _port(JSON_BAD)
    assert (p.module_temp_c, p.module_temp_high_c, p.effective_ber, p.effective_errors) == (83.0, 80.0, 4e-11, 2311)
    assert (p.link_down, p.link_error_recovery, p.raw_ber) == (6, 41, 3e-4)


def test_forum_text_with_a_blank_line_between_every_line() -> None:
    p = _port(FORUM)
    assert (p.layout, p.state, p.speed, p.fec) == ("text", "Active", "100GbE", "Standard RS-FEC - RS(528,514)")
    assert (p.raw_ber, p.effective_ber, p.raw_errors_per_lane) == (3e-12, 0.0, (26711, 0, 0, 9108))
    assert p.time_since_clear_min == 1715.4
    # this MFT printed no link-down lines and -m was not asked: unknown, and said so
    assert p.link_down is None and p.link_error_recovery is None and p.module_temp_c is None
    assert any("Link Down Counter" in m for m in p.missing) and any(MODULE in m for m in p.missing)


def test_ansi_coloured_counters_raw_and_made_inert() -> None:
    raw = _port(ANSI)
    assert (raw.raw_ber, raw.effective_ber, raw.link_down, raw.link_error_recovery) == (2e-9, 0.0, 0, 0)
    made_inert = parse_mlxlink(inert(_body(ANSI)))  # as it reaches the parser from a NodeRaw (textsafe)
    assert made_inert == raw
    assert "\\x1b" in inert(_body(ANSI))


def test_fragments_are_partial_and_say_what_is_missing() -> None:
    p = _port(SWITCH)
    assert (p.state, p.speed, p.fec) == ("Active", "25GbE", "Firecode FEC")
    assert p.partial and any(COUNTERS in m for m in p.missing) and p.link_down is None and p.raw_ber is None
    cut = parse_mlxlink(_body(JSON_FRAGMENT))
    assert isinstance(cut, Unparseable) and "not a whole JSON document" in cut.reason


@pytest.mark.parametrize("path", [JSON_OK, FORUM, ANSI])
def test_truncations_never_invent_a_value(path: Path) -> None:
    body = _body(path)
    whole = _port(path)
    for n in range(0, len(body), max(1, len(body) // 40)):
        got = parse_mlxlink(body[:n])
        if isinstance(got, Unparseable):
            assert got.reason
            continue
        for name in ("link_down", "link_error_recovery", "effective_errors", "module_temp_c", "raw_ber",
                     "effective_ber", "time_since_clear_min"):
            value = getattr(got, name)
            assert value is None or value == getattr(whole, name), (n, name, value)
        if got.raw_errors_per_lane:
            assert got.raw_errors_per_lane == whole.raw_errors_per_lane


def test_cut_ber_exponent_is_not_a_worse_ber() -> None:
    text = _body(FORUM)
    cut = text[: text.index("3E-12") + 4]  # "3E-1"
    got = parse_mlxlink(cut)
    assert isinstance(got, MlxlinkPort)
    assert got.raw_ber is None and "output cut short: its last line was not read" in got.missing


def test_status_error_and_tool_errors_are_refused_with_the_message() -> None:
    doc = json.loads(_body(JSON_OK))
    doc["status"] = {"code": 1, "message": "Failed to open device"}
    got = parse_mlxlink(json.dumps(doc))
    assert isinstance(got, Unparseable) and got.reason == "mlxlink status 1: Failed to open device"
    assert isinstance(parse_mlxlink(""), Unparseable)
    assert isinstance(parse_mlxlink("\x00\x01\x02" * 50), Unparseable)
    nothing = parse_mlxlink("mlxlink: command not found\n")
    assert isinstance(nothing, Unparseable) and "no mlxlink section" in nothing.reason
