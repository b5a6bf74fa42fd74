"""Grey InfiniBand failures: error counters as rates between two reads (ib_traffic, `hang --sweeps`), and mlx5_core
health events in the kernel log (real recorded lines), in `preflight hang` and `preflight analyze`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang
from preflight.hang.ib_rates import RISE_FAIL, SWEEP_KEY, first_sweep
from preflight.hang.mlx5_health import parse_mlx5_health
from preflight.hang.verdict import analyze
from preflight.parse.common import strip_corpus_header

XID = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "xid"
COMPROMISED = XID / "mlx5-health-compromised-fw-internal-error-synd-0x1-cx6dx.txt"
PCI_GONE = XID / "mlx5-fatal-error-pci-slot-unavailable-pciehp-link-down.txt"


def _raw(name: str, probes: dict, started: float = 100.0) -> NodeRaw:
    full = {k: {"rc": 0, "stdout": v if isinstance(v, str) else json.dumps(v), "stderr": "", "error": None}
            for k, v in probes.items()}
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=started, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": full})


def _traffic(before: dict, after: dict, secs: float = 3.0) -> dict:
    return {"interval_s": secs, "first": {"mlx5_1/1": before}, "second": {"mlx5_1/1": after}}


def _sysfs(**counters: int) -> dict:
    return {"mlx5_1": {"ports": {"1": {"state": "4: ACTIVE", "counters": {k: str(v) for k, v in counters.items()}}}}}


def test_symbol_errors_rising_between_two_reads_warn_with_delta_and_interval() -> None:
    base = {"port_xmit_data": 10, "port_rcv_data": 10, "link_downed": 0, "symbol_error": 4127, "port_rcv_errors": 0}
    raw = _raw("n1", {"ib_traffic": _traffic(base, {**base, "symbol_error": 4130, "port_xmit_data": 99})})
    c = next(c for c in judge_hang(Bundle(nodes=[raw])).verdict.causes if c.kind == "live_ib_errors_rising")
    assert c.title.startswith("warn: IB port mlx5_1/1 on n1: symbol errors") and "symbol_error +3 in 3.0 s" in c.title
    assert c.evidence == ("n1: mlx5_1/1 symbol_error 4127 -> 4130 over 3.0 s (two reads of ib_traffic)",)
    assert c.node == "n1" and "mlxlink -d mlx5_1" in c.next_command


def test_old_totals_that_do_not_move_are_not_a_cause() -> None:
    """A port with 4127 symbol errors since boot (sim profile ib-errors' counter) that stay put is not failing now."""
    base = {"port_xmit_data": 10, "port_rcv_data": 10, "link_downed": 3, "symbol_error": 4127, "port_rcv_errors": 211}
    raw = _raw("n1", {"ib_traffic": _traffic(base, {**base, "port_xmit_data": 99})})
    assert not [c for c in judge_hang(Bundle(nodes=[raw])).verdict.causes if c.kind == "live_ib_errors_rising"]


def test_link_recoveries_between_sweeps_fail() -> None:
    first = Bundle(nodes=[_raw("n1", {"ib_sysfs": _sysfs(symbol_error=5, link_error_recovery=2)}, started=100.0)])
    kept = first_sweep(first)
    assert kept["n1"]["ports"]["mlx5_1/1"] == {"symbol_error": 5, "link_error_recovery": 2}
    last = _raw("n1", {"ib_sysfs": _sysfs(symbol_error=5, link_error_recovery=2 + RISE_FAIL)}, started=130.0)
    bundle = Bundle(nodes=[last], options={SWEEP_KEY: kept})
    c = next(c for c in judge_hang(bundle).verdict.causes if c.kind == "live_ib_errors_rising")
    assert c.title.startswith("fail: IB port mlx5_1/1 on n1: link error recoveries")
    assert "link_error_recovery +10 in 30.0 s (20.0/min)" in c.title and c.score > 0.8
    assert "first vs last sweep" in c.evidence[0]


def test_real_mlx5_health_lines_are_named() -> None:
    text = strip_corpus_header(COMPROMISED.read_text())[1]
    events = parse_mlx5_health(text, "dmesg")
    kinds = [(e.bdf, e.kind) for e in events]
    assert ("0000:0d:00.0", "health_compromised") in kinds and ("0000:0d:00.0", "syndrome") in kinds
    assert next(e.detail for e in events if e.kind == "syndrome") == "synd 0x1: firmware internal error"
    assert next(e.detail for e in events if e.kind == "issue") == "firmware internal error, severity 3"
    raw = _raw("gpu-07", {"kernel_log": text})
    causes = [c for c in judge_hang(Bundle(nodes=[raw])).verdict.causes if c.kind == "mlx5_health"]
    first = next(c for c in causes if "0000:0d:00.0" in c.title)
    assert first.node == "gpu-07" and first.title.startswith("fail: ConnectX adapter 0000:0d:00.0 on gpu-07")
    assert "health compromised" in first.title and "synd 0x1: firmware internal error" in first.title
    assert "drain gpu-07" in first.next_command
    assert len(causes) == 4  # functions .0 .2 .3 .4, one cause each


def test_analyze_reads_a_saved_kernel_log_with_mlx5_lines(tmp_path) -> None:
    shutil.copy(PCI_GONE, tmp_path / "dmesg-gpu-03.txt")
    v = analyze([tmp_path / "dmesg-gpu-03.txt"])
    assert v.files[0].kinds == ("mlx5_health",)
    c = v.causes[0]
    assert c.kind == "mlx5_health" and "0000:bb:00.0" in c.title and "PCI slot is unavailable" in c.title
    assert "fatal firmware error" in c.title
    assert any("dmesg-gpu-03.txt:10: mlx5_core 0000:bb:00.0: poll_health:1083" in e for e in c.evidence)  # file:line
