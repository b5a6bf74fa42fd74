"""parse_perftest on every recorded perftest output (shared corpus + ours), cut short and degraded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.perftest import BwRow, LatRow, PerftestRun, parse_perftest

SHARED = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "perftest"
OURS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "perftest"
FILES = sorted({p.name: p for p in [*sorted(OURS.glob("*.txt")), *sorted(SHARED.glob("*.txt"))]}.values())


def parsed(name: str) -> PerftestRun:
    path = SHARED / name if (SHARED / name).is_file() else OURS / name
    if not path.is_file():
        pytest.skip(f"{name} absent")
    result = parse_perftest(strip_corpus_header(path.read_text())[1])
    assert isinstance(result, PerftestRun), result
    return result


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_recording_parses_or_is_refused_with_a_reason(path: Path) -> None:
    headers, text = strip_corpus_header(path.read_text())
    assert "source" in headers
    r = parse_perftest(text)
    assert (isinstance(r, Unparseable) and r.reason) or (isinstance(r, PerftestRun) and r.blocks)


def test_read_bw_cut_after_the_8_byte_row_is_partial() -> None:
    r = parsed("ib_read_bw-ib-mlx5-all-sizes-mbps-truncated.txt")
    b = r.main
    assert (b.test, b.kind, b.device, b.link_type, b.connection_type, b.mtu) == (
        "RDMA_Read BW", "bw", "mlx5_1", "IB", "RC", "4096[B]")
    assert b.unit == "MB/sec" and [row.bytes for row in b.bw_rows] == [2, 4, 8]
    assert b.bw_rows[-1] == BwRow(8, 1000, 19.51, 19.50, 2.556366, b.bw_rows[-1].raw)
    assert dict(b.settings)["Outstand reads"] == "16"
    assert r.partial and "cut off" in r.partial and not r.complete


def test_send_bw_roce_without_separators_keeps_gbits_but_is_not_shown_complete() -> None:
    r = parsed("ib_send_bw-connectx3-roce-v1-rdma-cm-36gbps-no-dashes.txt")
    b = r.main
    assert (b.test, b.device, b.link_type, b.unit, b.side) == ("Send BW", "rocep68s0", "Ethernet", "Gb/sec", "client")
    [row] = b.bw_rows
    assert (row.bytes, row.bw_peak, row.bw_average, row.msg_rate_mpps) == (65536, 36.43, 36.07, 0.068798)
    assert dict(b.settings)["rdma_cm QPs"] == "ON" and dict(b.settings)["GID index"] == "1"
    assert b.bw_gbps(row) == 36.07 and r.partial and "no separator lines" in r.partial


def test_write_bw_bidir_sweep_plateau() -> None:
    r = parsed("ib_write_bw-bidir-roce-200g-all-sizes-rst-indented.txt")
    b = r.main
    assert (b.test, b.device, b.link_type, b.side) == ("RDMA_Write Bidirectional BW", "<RDMA-NIC-2>", "Ethernet", None)
    assert len(b.bw_rows) == 23 and b.bw_rows[0].bw_peak == 0.142947
    assert b.largest == BwRow(8388608, 5000, 204.59, 204.59, 0.003049, b.largest.raw)
    assert len(b.addresses) == 4 and r.complete


def test_loopback_concat_client_then_server() -> None:
    r = parsed("ib_write_bw-loopback-hdr-8MiB-mbps-server-client-concat.txt")
    assert r.sides == ("client", "server") and r.main.side == "client"
    for b in r.blocks:
        assert (b.test, b.device, b.link_type, b.unit) == ("RDMA_Write BW", "ib0", "IB", "MB/sec")
        assert b.largest is not None and b.largest.bytes == 8388608 and b.largest.bw_average == 24056.72
    assert "Waiting for client" in (r.blocks[1].side_evidence or "")
    assert round(r.main.bw_gbps(r.main.bw_rows[0]) or 0, 1) == 192.5 and r.complete


def test_send_lat_ud_server_sweep() -> None:
    r = parsed("ib_send_lat-ud-ib-mlx5-2B-4KiB-server-side.txt")
    b = r.main
    assert (b.test, b.kind, b.side, b.device, b.port, b.connection_type) == (
        "Send Latency", "lat", "server", "mlx5_0", 1, "UD")
    assert [row.bytes for row in b.lat_rows] == [2 ** i for i in range(1, 13)]
    assert b.lat_rows[0] == LatRow(2, 1000, 1.65, 6.25, 1.67, 1.70, 0.28, 3.52, 6.25, b.lat_rows[0].raw)
    assert b.largest is not None and (b.largest.t_avg, b.largest.p999) == (3.76, 7.94)
    assert "Max msg size in UD is MTU 4096" in b.warnings and r.complete


def test_send_lat_softroce_server_then_client() -> None:
    r = parsed("ib_send_lat-rc-softroce-rxe-server-then-client.txt")
    assert r.sides == ("server", "client")
    server, client = r.blocks
    assert (server.lat_rows[0].t_avg, client.lat_rows[0].t_avg) == (3.19, 3.25)
    assert (client.lat_rows[0].t_max, client.lat_rows[0].p99) == (87.64, 8.92)
    assert client.link_type == "Ethernet" and r.main is client and r.complete


@pytest.mark.parametrize("text", ["", "\x00\xfe" * 300, "nothing to see\n",
                                  " Couldn't connect to 10.0.0.1:18515\nUnable to open file descriptor for socket connection"])
def test_not_perftest_is_unparseable(text: str) -> None:
    r = parse_perftest(text)
    assert isinstance(r, Unparseable) and r.reason


def measurements(r: PerftestRun) -> list[object]:
    return [(b.test, b.side, b.unit, b.rows) for b in r.blocks]


def not_healthier(r: PerftestRun | Unparseable, original: PerftestRun | Unparseable) -> bool:
    if isinstance(r, Unparseable) or not r.complete:
        return True
    return isinstance(original, PerftestRun) and original.complete and measurements(r) == measurements(original)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("cut", [0.4, 0.75])
def test_a_cut_recording_is_partial_or_refused(path: Path, cut: float) -> None:
    text = strip_corpus_header(path.read_text())[1]
    r = parse_perftest(text[: int(len(text) * cut)])
    assert isinstance(r, Unparseable) or not r.complete


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_degraded_recording_never_reads_healthier(path: Path) -> None:
    text = strip_corpus_header(path.read_text())[1]
    original = parse_perftest(text)
    lines = text.split("\n")
    row = next((i for i, line in enumerate(lines) if re.match(r"^\s*\d+\s+\d+\s", line)), len(lines) // 2)
    replaced = list(lines)
    replaced[row] = re.sub(r"\d+\.\d+", "abc", lines[row], count=1)
    for what, bad in [("emptied", ""), ("garbage", bytes(range(256)).decode("latin-1") * 4),
                      ("duplicated", "\n".join(lines[:row + 1] + lines[row:])), ("number", "\n".join(replaced))]:
        r = parse_perftest(bad)
        assert not_healthier(r, original), what
        if what in ("emptied", "garbage"):
            assert isinstance(r, Unparseable)
