"""Everything a node printed is data: made inert and scrubbed once, where it enters the model (NodeRaw).

A node that prints terminal control (a title-setting OSC, a screen clear, a carriage return that
overwrites a line) or a secret must reach no report raw: console, JSON, JUnit, Markdown, saved bundle.
And nothing that is data gets erased: the recorded demo has no redaction marker anywhere.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from preflight.collect.bundle import load_bundle, save_bundle
from preflight.engine import judge
from preflight.report import console as console_report
from preflight.report.json_report import dumps, report_dict
from preflight.report.junit import junit_xml
from preflight.report.markdown_report import markdown_summary
from preflight.textsafe import REDACTED, clean, inert, is_secret_key, redactions, scrub

DEMO = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo" / "bundle.json"
# a planted fault (not a recording): terminal control a hostile or broken tool could print
ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31mred\x1b[0m\rover\x9b1m\x00"


def test_inert_leaves_no_control_character_but_newline_and_tab() -> None:
    out = inert("a\tb\n" + ESCAPES)
    assert not any(ord(c) < 0x20 and c not in "\t\n" or 0x7F <= ord(c) <= 0x9F for c in out), repr(out)
    assert "\\x1b]0;owned\\x07" in out and "red" in out and "over" in out


@pytest.mark.parametrize("key, secret", [
    ("HF_TOKEN", True), ("x_hf_token", True), ("apiKey", True), ("db-password", True),
    ("AWS_SECRET_ACCESS_KEY", True), ("NCCL_IB_HCA", False), ("experts_per_token", False),
    ("max_tokens", False), ("token_count", False), ("passwd", True), ("private_key", True),
])
def test_secret_keys_are_named_by_their_last_word(key, secret) -> None:
    assert is_secret_key(key) is secret


def test_scrub_removes_secrets_in_text_and_keeps_data() -> None:
    text = ("export HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789\n"
            "mysql --password s3cr3t -h db\n"
            "url=https://user:hunter2@example.com/x\n"
            "8192 tokens = 12 GB; per token: 320 KiB; experts_per_token: 8\n")
    out = scrub(text)
    assert "hf_abcdefghijklmnopqrstuvwxyz0123456789" not in out and "s3cr3t" not in out and "hunter2" not in out
    assert "8192 tokens = 12 GB; per token: 320 KiB; experts_per_token: 8" in out


def test_clean_redacts_whole_values_under_secret_keys() -> None:
    assert clean({"env": {"HF_TOKEN": "abc", "PATH": "/bin"}, "n": 3}) == \
        {"env": {"HF_TOKEN": REDACTED, "PATH": "/bin"}, "n": 3}


def test_the_recording_has_nothing_to_redact() -> None:
    """No false positive anywhere in real outputs of 8x H100 nodes (the demo bundle) or their reports."""
    bundle = load_bundle(DEMO)
    report, _ = judge(bundle)
    text = json.dumps(bundle.to_dict()) + dumps(report_dict(report, source={"kind": "demo"})) + markdown_summary(report)
    assert redactions(text) == []


def _planted() -> object:
    bundle = load_bundle(DEMO)
    raw = bundle.nodes[2]  # a node with faults: its evidence reaches every report
    for probe in raw.collector["probes"].values():
        if probe.get("stdout"):
            probe["stdout"] = ESCAPES + probe["stdout"].replace("\n", "\n" + ESCAPES, 3)
    raw.collector = raw.collector  # assigned again, as a transport would build it: cleaned here
    raw.message = "export GITHUB_TOKEN=ghp_" + "a" * 36 + ESCAPES
    return bundle


def test_planted_control_and_secrets_reach_no_report(tmp_path) -> None:
    bundle = _planted()
    report, _ = judge(bundle)
    buf = io.StringIO()
    console_report.render(report, Console(file=buf, width=80, force_terminal=False, color_system=None))
    save_bundle(bundle, tmp_path / "b")
    outputs = {
        "console": buf.getvalue(),
        "json": dumps(report_dict(report, source={"kind": "replay"})),
        "junit": junit_xml(report),
        "markdown": markdown_summary(report),
        "bundle": (tmp_path / "b" / "bundle.json").read_text(),
    }
    for name, text in outputs.items():
        decoded = json.loads(text) if name in ("json", "bundle") else text
        flat = json.dumps(decoded, ensure_ascii=False) if name in ("json", "bundle") else decoded
        assert "\x1b" not in flat and "\x9b" not in flat and "\x07" not in flat and "\r" not in flat, name
        assert "ghp_" + "a" * 36 not in flat, name
    assert "\\x1b" in outputs["console"] or "\\x1b" in outputs["json"]  # shown, as data


def test_planted_control_does_not_change_the_verdict() -> None:
    """Escapes in front of lines make them unrecognised; the verdict may degrade, but never improves."""
    clean_report, _ = judge(load_bundle(DEMO))
    dirty_report, _ = judge(_planted())
    for a, b in zip(clean_report.nodes, dirty_report.nodes):
        assert b.status.rank >= a.status.rank, (a.name, a.status, b.status)


def test_the_planner_reports_have_nothing_to_redact(tmp_path) -> None:
    """`8192 tokens = 12 GB` is a formula, not a secret (the old shape scrubber wrote `= [redacted] GB`)."""
    from preflight.cli import main

    for model in ("llama-3.1-70b", "deepseek-v3"):
        out = tmp_path / f"{model}.json"
        main(["plan", "--model", model, "--json", str(out), "-q"])
        text = out.read_text()
        assert "tokens" in text and redactions(text) == [], (model, redactions(text))


def test_a_secret_under_an_inventory_key_never_reaches_the_bundle(tmp_path) -> None:
    bundle = load_bundle(DEMO)
    raw = bundle.nodes[0]
    raw.expect = {**raw.expect, "x_hf_token": "hf_" + "b" * 34, "x_note": "keep me"}
    save_bundle(bundle, tmp_path / "b")
    text = (tmp_path / "b" / "bundle.json").read_text()
    assert "hf_" + "b" * 34 not in text and '"x_hf_token": "[redacted]"' in text and "keep me" in text
