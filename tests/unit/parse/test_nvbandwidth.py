"""parse_nvbandwidth on every recorded nvbandwidth output (shared corpus + ours), cut short and degraded."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.nvbandwidth import NvbandwidthRun, parse_nvbandwidth

SHARED = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "nvbandwidth"
OURS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "nvbandwidth"
FILES = sorted({p.name: p for p in [*sorted(OURS.glob("*.txt")), *sorted(SHARED.glob("*.txt"))]}.values())


def parsed(name: str) -> NvbandwidthRun:
    path = SHARED / name if (SHARED / name).is_file() else OURS / name
    if not path.is_file():
        pytest.skip(f"{name} absent")
    result = parse_nvbandwidth(strip_corpus_header(path.read_text())[1])
    assert isinstance(result, NvbandwidthRun), result
    return result


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_recording_parses_or_is_refused_with_a_reason(path: Path) -> None:
    headers, text = strip_corpus_header(path.read_text())
    assert "source" in headers
    r = parse_nvbandwidth(text)
    assert (isinstance(r, Unparseable) and r.reason) or (isinstance(r, NvbandwidthRun) and r.tests)


def test_a100_h2d_sm_full_run() -> None:
    r = parsed("1xa100-40gb-h2d-sm-v0.8-full-run-with-note.txt")
    assert (r.version, r.git_version, r.cuda_runtime, r.driver) == ("v0.8", "v0.8", "12060", "560.35.05")
    assert [(d.index, d.name, d.pci) for d in r.devices] == [(0, "NVIDIA A100-SXM4-40GB", "00000000:99:00")]
    [t] = r.tests
    assert (t.name, t.direction, t.unit, t.row_kind, t.col_kind) == ("host_to_device_memcpy_sm", "->", "GB/s", "CPU", "GPU")
    assert t.value(0, 0) == 25.13 and t.sum == 25.13 and r.complete and len(r.notes) == 2


def test_a6000_na_diagonal_and_two_tiers() -> None:
    r = parsed("6xa6000-pcie-d2d-read-ce-v0.8-na-diagonal-sum.txt")
    [t] = r.tests
    assert t.name == "device_to_device_memcpy_read_ce" and t.sum == 715.53 and r.devices == ()
    assert t.columns == ("0", "1", "2", "3", "4", "5") and len(t.rows) == 6
    assert all(t.value(i, i) is None for i in range(6))
    assert t.value(0, 1) == 26.34 and t.value(0, 5) == 21.80 and t.value(3, 0) == 21.82
    assert min(t.measured()) == 21.80 and len(t.measured()) == 30 and r.complete


def test_4090_v02_two_tests_then_a_block_cut_at_its_header() -> None:
    r = parsed("8x4090-v0.2-note-first-ce-h2d-d2h-truncated.txt")
    assert (r.version, r.git_version, len(r.devices), r.devices[7].pci) == ("v0.2", "6cefdda", 8, None)
    h2d, d2h, bidir = r.tests
    assert (h2d.sum, min(h2d.measured()), max(h2d.measured())) == (205.04, 23.90, 26.38)
    assert (d2h.sum, d2h.direction, d2h.value(0, 5)) == (214.28, "<-", 27.11)
    assert bidir.name == "host_to_device_bidirectional_memcpy_ce" and bidir.rows == ()
    assert bidir.partial and "no row" in bidir.partial and not r.complete


def test_5090_three_sums_and_the_last_block_cut_before_its_header() -> None:
    r = parsed("8x5090-pcie5-h2d-d2h-bidir-ce-tinygrad-p2p-driver.txt")
    assert r.version is None and len(r.devices) == 8
    assert [t.sum for t in r.tests] == [450.84, 458.62, 407.31, None]
    assert r.tests[2].direction == "<->" and r.tests[2].value(0, 4) == 50.84
    assert "cut before the column header" in (r.tests[3].partial or "") and not r.complete


def test_a100_assert_is_an_error_without_a_matrix() -> None:
    r = parsed("8xa100-sxm4-80gb-v0.7-d2d-read-ce-assert-pattern-check.txt")
    [t] = r.tests
    assert t.name == "device_to_device_memcpy_read_ce" and t.rows == () and t.sum is None
    assert t.error == "Invalid value when checking the pattern at 0x70a640000000"
    assert any(e.startswith("ASSERT in expression h_errorFlag == 0") for e in r.errors)
    assert not r.complete and len(r.devices) == 8 and r.devices[4].pci == "00000000:9b:00"


def test_readme_old_zero_diagonal_is_not_a_measurement() -> None:
    r = parsed("readme-8gpu-d2d-write-ce-0.00-diagonal.txt")
    [t] = r.tests
    assert t.name == "device_to_device_memcpy_write_ce" and t.direction == "<-" and t.sum is None
    assert t.value(0, 0) == 0.0 and t.value(6, 0) == 274.89 and len(t.measured()) == 56
    assert min(t.measured()) == 274.89 and r.complete  # no SUM line in this excerpt, no version banner


def test_readme_single_row_host_matrices() -> None:
    r = parsed("readme-8gpu-h2d-ce-and-bidir-single-row.txt")
    assert [(t.name, t.direction, len(t.rows), t.value(0, 7)) for t in r.tests] == [
        ("host_to_device_memcpy_ce", "->", 1, 25.97), ("host_to_device_bidirectional_memcpy_ce", "<->", 1, 18.61)]


@pytest.mark.parametrize("text", ["", "\x00\xff" * 300, "random words\nnothing here", "nvbandwidth Version: v0.8\n"])
def test_not_nvbandwidth_is_unparseable(text: str) -> None:
    assert isinstance(parse_nvbandwidth(text), Unparseable)


def measurements(r: NvbandwidthRun) -> list[tuple[object, ...]]:
    return [(t.name, t.columns, t.rows, t.sum) for t in r.tests]


def not_healthier(r: NvbandwidthRun | Unparseable, original: NvbandwidthRun | Unparseable) -> bool:
    """Refused or incomplete, or exactly the original's measurements (a cut in the trailing NOTE)."""
    if isinstance(r, Unparseable) or not r.complete:
        return True
    return isinstance(original, NvbandwidthRun) and original.complete and measurements(r) == measurements(original)


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("cut", [0.4, 0.75])
def test_a_cut_recording_is_partial_or_refused(path: Path, cut: float) -> None:
    text = strip_corpus_header(path.read_text())[1]
    r = parse_nvbandwidth(text[: int(len(text) * cut)])
    assert not_healthier(r, parse_nvbandwidth(text))
    if isinstance(r, NvbandwidthRun) and r.complete:  # only the 1xA100 run: cut inside its closing NOTE
        assert r.notes != parse_nvbandwidth(text).notes


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_degraded_recording_never_reads_healthier(path: Path) -> None:
    text = strip_corpus_header(path.read_text())[1]
    original = parse_nvbandwidth(text)
    lines = text.split("\n")
    row = next((i for i, line in enumerate(lines) if line.strip()[:1].isdigit() and "." in line), len(lines) // 2)
    cell = next((w for w in text.split() if re.fullmatch(r"\d+\.\d\d", w)), "0")
    number = text.replace(cell, "abc", 1)
    for what, bad in [("emptied", ""), ("garbage", bytes(range(256)).decode("latin-1") * 4),
                      ("duplicated", "\n".join(lines[:row + 1] + lines[row:])), ("number", number)]:
        r = parse_nvbandwidth(bad)
        assert not_healthier(r, original), what
        if what in ("emptied", "garbage"):
            assert isinstance(r, Unparseable)


@pytest.mark.parametrize("name, test, per_gpu, total", [
    ("8xh100-v0.10-h2d-ce.txt", "host_to_device_memcpy_ce", (55.33, 55.37), 442.87),
    ("8xh100-v0.10-d2h-ce.txt", "device_to_host_memcpy_ce", (55.18, 55.26), 441.72),
    ("8xh100-v0.10-d2d-read-ce.txt", "device_to_device_memcpy_read_ce", (395.05, 395.25), 22126.64),
])
def test_h100_v010_runs_with_coefficient_of_variation(name: str, test: str, per_gpu: tuple[float, float],
                                                       total: float) -> None:
    """v0.10 prints COEFFICIENT_OF_VARIATION after SUM: part of the block, not a broken matrix row."""
    from preflight.parse.common import strip_corpus_header

    text = (Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "nvbandwidth" / name).read_text()
    run = parse_nvbandwidth(strip_corpus_header(text)[1])
    assert isinstance(run, NvbandwidthRun) and run.complete and run.version == "v0.10.0"
    block = run.test(test)
    assert block is not None and block.sum == total
    values = block.measured()
    assert len(values) == (56 if "d2d" in name else 8)
    assert min(values) == per_gpu[0] and max(values) == per_gpu[1]
