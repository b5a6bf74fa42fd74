"""Bundles round-trip exactly and never carry secrets."""

from __future__ import annotations

import json

import pytest

from preflight.collect.bundle import Bundle, BundleError, NodeRaw, load_bundle, save_bundle, scrub


def _node(stdout: str) -> NodeRaw:
    return NodeRaw(name="n1", address="10.0.0.1", port=22, user="root", groups=["g"], outcome="ok", message="",
                   started=1.0, duration_s=0.5, transport="ssh",
                   collector={"probes": {"x": {"rc": 0, "stdout": stdout, "stderr": "", "error": None}}})


def test_round_trip(tmp_path) -> None:
    b = Bundle(nodes=[_node("hello\n")], created=123.0, tool_version="0.1.0", inventory={"path": "inv.yaml"})
    path = save_bundle(b, tmp_path / "run1")
    again = load_bundle(tmp_path / "run1")
    assert again.to_dict() == b.to_dict()
    assert path.name == "bundle.json"


def test_secrets_are_scrubbed(tmp_path) -> None:
    key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----"
    text = f"NCCL_DEBUG=INFO\nHF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789\nWANDB_API_KEY=abc123\n{key}\npassword: hunter2\n"
    save_bundle(Bundle(nodes=[_node(text)]), tmp_path / "b")
    raw = (tmp_path / "b" / "bundle.json").read_text()
    for secret in ("hf_abcdefghijklmnopqrstuvwxyz0123456789", "abc123", "b3BlbnNzaC1rZXktdjEAAAAA", "hunter2"):
        assert secret not in raw
    assert "NCCL_DEBUG=INFO" in raw


def test_scrub_keeps_ordinary_text() -> None:
    assert scrub("GPU 0: NVIDIA H100 80GB HBM3") == "GPU 0: NVIDIA H100 80GB HBM3"


@pytest.mark.parametrize("content,needle", [("not json", "not a readable bundle"),
                                             (json.dumps({"format": "other"}), "not a preflight bundle"),
                                             (json.dumps({"format": "preflight-bundle", "version": 99}), "newer")])
def test_bad_bundles_give_one_line_errors(tmp_path, content, needle) -> None:
    p = tmp_path / "bundle.json"
    p.write_text(content)
    with pytest.raises(BundleError, match=needle):
        load_bundle(p)


def test_missing_bundle(tmp_path) -> None:
    with pytest.raises(BundleError, match="no such bundle"):
        load_bundle(tmp_path / "nope")


def test_node_text_is_scrubbed_before_any_report_sees_it() -> None:
    """Presenters no longer scrub: the secret is gone from the NodeRaw, so the JSON report never has it."""
    from preflight.engine import judge
    from preflight.report.json_report import dumps, report_dict

    raw = _node("x")
    raw.outcome, raw.message = "collector_error", "export HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789"
    assert raw.message == "export HF_TOKEN=[redacted]"
    report, _ = judge(Bundle(nodes=[raw]))
    text = dumps(report_dict(report, source={"kind": "live"}))
    assert "hf_abcdefghijklmnopqrstuvwxyz0123456789" not in text and "HF_TOKEN=[redacted]" in text
