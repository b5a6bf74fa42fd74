"""parse_dcgm_diag on every recorded dcgmi diag output (shared corpus + ours), cut short and degraded.

A diag is active evidence: a cut table or a fragment must be partial (or refused), a skipped test is
not a pass, and no degradation of a recording may read healthier than the recording itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.dcgm_diag import DcgmDiag, parse_dcgm_diag

SHARED = Path(__file__).resolve().parents[4] / "shared" / "corpus" / "dcgm"
OURS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "dcgm"
FILES = sorted({p.name: p for p in [*sorted(OURS.glob("*.txt")), *sorted(SHARED.glob("*.txt"))]}.values())
RANK = {"pass": 0, "skip": 1, "warn": 2, "partial": 3, "empty": 3, "fail": 4}


def body(name: str) -> str:
    path = SHARED / name if (SHARED / name).is_file() else OURS / name
    if not path.is_file():
        pytest.skip(f"{name} is in neither {SHARED} nor {OURS}")
    return strip_corpus_header(path.read_text())[1]


def parsed(name: str) -> DcgmDiag:
    result = parse_dcgm_diag(body(name))
    assert isinstance(result, DcgmDiag), result
    return result


def test_shared_corpus_folder_is_where_the_tests_look() -> None:
    if not SHARED.is_dir():
        pytest.skip(f"shared corpus absent at {SHARED}")
    assert SHARED == Path("/work/shared/corpus/dcgm") or SHARED.is_dir()
    assert len(list(SHARED.glob("*.txt"))) >= 6


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_every_recording_parses_or_is_refused_with_a_reason(path: Path) -> None:
    headers, text = strip_corpus_header(path.read_text())
    assert "source" in headers
    result = parse_dcgm_diag(text)
    if isinstance(result, Unparseable):
        assert result.reason.strip()
    else:
        assert result.tests
        assert all(t.status in ("pass", "fail", "warn", "skip", "not_run") for t in result.tests)


def test_h200_persistence_mode_fail_joins_the_wrapped_error_cell() -> None:
    r = parsed("r1-8xh200-dcgm3.1.8-persistence-mode-fail-wrapped-error.txt")
    assert (r.format, r.version, r.driver, r.run_level) == ("text", "3.1.8", "550.127.08", "1")
    assert r.gpu_device_ids == ("2335",) * 8 and r.partial is None and r.overall == "fail"
    [failed] = r.failed
    assert (failed.category, failed.name) == ("Deployment", "Persistence Mode")
    [msg] = failed.messages
    assert msg.kind == "error" and msg.gpus == (0, 1, 2, 3, 4, 5)
    assert msg.text.startswith("Persistence mode for GPU 0 is currently disabled. The DCGM diagnostic requires "
                               "peristence mode to be enabled.")
    assert "GPU 1 is currently disabled" in msg.text and msg.text.endswith("requires peristence mod")
    assert len(msg.evidence) == 23
    assert [t.status for t in r.tests].count("pass") == 8


def test_gb10_json_v4_software_fail_with_persistence_warning() -> None:
    r = parsed("r1-json-gb10-dcgm4.2.3-software-fail-persistence-v4-schema.txt")
    assert (r.format, r.version, r.driver, r.gpu_device_ids) == ("json", "4.2.3", "580.82.09", ("2e12",))
    [t] = r.tests
    assert (t.category, t.name, t.status, t.gpu_status(0)) == ("Deployment", "software", "fail", "fail")
    assert t.warnings[0].startswith("Persistence Mode: Persistence mode for GPU 0 is disabled.")
    assert any("9223372036854775794" in m.text for m in t.messages if m.kind == "info")
    assert r.overall == "fail" and r.partial is None


def test_b200_dcgm4_pcie_fails_although_every_gpu_row_passes() -> None:
    r = parsed("r2-8xb200-dcgm4.4.1-pcie-fail-slurm-numa-plus-nvvs-log.txt")
    assert (r.version, r.driver, len(r.gpu_device_ids)) == ("4.4.1", "570.172.08", 8)
    assert [(t.category, t.name, t.status) for t in r.tests] == [
        ("Deployment", "software", "pass"), ("Hardware", "memory", "pass"), ("Integration", "pcie", "fail")]
    pcie = r.tests[2]
    assert [g.status for g in pcie.gpus] == ["pass"] * 8 and pcie.gpu_status(7) == "pass"
    assert pcie.warnings == ("There was an internal error during the test: 'Output of child process (11167) couldn't "
                             "be parsed: '* Line 1, Column 1 Syntax error: value, object or array expected. '' Check "
                             "DCGM and system logs for errors. Reset GPU. Restart DCGM. Rerun diagnostics.",)
    assert r.partial is None and r.overall == "fail"


def test_a10g_dcgm4_healthy_is_a_pass() -> None:
    r = parsed("r2-a10g-dcgm4.4.2-healthy-v4-per-gpu-rows.txt")
    assert (r.version, r.run_level, r.overall) == ("4.4.2", "2", "pass")
    assert [(t.name, t.gpus[0].gpu, t.gpus[0].status) for t in r.tests] == [
        ("software", 0, "pass"), ("memory", 0, "pass"), ("pcie", 0, "pass")]


def test_p4de_dcgm3_healthy_with_empty_stress_section() -> None:
    r = parsed("r2-p4de-8xa100-dcgm3.3.3-healthy-nvlinks-expected.txt")
    assert (r.version, r.driver, r.run_level, r.overall, r.partial) == ("3.3.3", "535.104.12", "2", "pass", None)
    assert len(r.tests) == 11 and all(t.all_gpus for t in r.tests)
    assert [(t.category, t.name) for t in r.tests[-2:]] == [("Integration", "PCIe"), ("Hardware", "GPU Memory")]
    assert r.tests[-1].gpu_status(5) == "pass"


def test_json_fragment_is_partial_never_a_clean_pass() -> None:
    r = parsed("r3-json-8gpu-dcgm4-diagnostic-test-fragment-info-capped.txt")
    assert r.format == "json" and r.partial and "fragment" in r.partial
    [t] = r.tests
    assert t.name == "diagnostic" and t.status == "pass" and len(t.gpus) == 8
    assert any("859.08 gigaflops" in m.text and m.gpus == (0,) for m in t.messages)
    assert r.overall == "partial"


def test_all_active_tests_skipped_is_skip_not_pass() -> None:
    r = parsed("r3-2xrtxpro6000-dcgm3.3.9-all-active-tests-skip-two-tables.txt")
    assert (r.version, r.tables, r.gpu_device_ids) == ("3.3.9", 2, ("2bb5", "2bb5"))
    skipped = {t.name for t in r.tests if t.status == "skip"}
    assert skipped == {"PCIe", "GPU Memory", "Targeted Stress", "Targeted Power", "Memory Bandwidth", "EUD Test"}
    assert r.overall == "skip" and {t.table for t in r.tests} == {0, 1}


def test_targeted_power_fail_on_gpu1_with_warning_and_info() -> None:
    r = parsed("r3-4xa10g-dcgm3.3.9-targeted-power-fail-gpu1-warning-info-rows.txt")
    [tp] = r.failed
    assert (tp.category, tp.name) == ("Stress", "Targeted Power")
    assert {g.gpu: g.status for g in tp.gpus} == {0: "pass", 2: "pass", 3: "pass", 1: "fail"}
    assert tp.warnings == ("GPU 1 Max power of 224.1 did not reach desired power minimum target_power_min_ratio of "
                           "224.2 for GPU 1 Verify that the clock speeds and GPU utilization are high.",)
    assert [m.gpus for m in tp.messages if m.kind == "info"] == [(0,), (2,), (3,)]
    assert "max power: 299.5 W" in tp.messages[1].text
    assert next(t for t in r.tests if t.name == "EUD Test").status == "skip"


def test_json_v3_schema_gpu_ids_and_not_run() -> None:
    doc = ('{"DCGM GPU Diagnostic": {"test_categories": [{"category": "Hardware", "tests": ['
           '{"name": "GPU Memory", "results": [{"gpu_ids": "0", "status": "PASS"}, {"gpu_ids": "1", "status": "FAIL",'
           ' "warnings": [{"warning": "GPU 1 memory error", "error_id": 83}]}]},'
           '{"name": "Diagnostic", "results": [{"gpu_ids": "0,1", "status": "Not Run"}]}]}], "version": "3.1.7"}}')
    r = parse_dcgm_diag(doc)
    assert isinstance(r, DcgmDiag) and r.version == "3.1.7" and r.overall == "fail"
    mem, diag = r.tests
    assert mem.gpu_status(1) == "fail" and mem.messages[0].gpus == (1,) and diag.status == "not_run"


@pytest.mark.parametrize("text", ["", "\n\n", "\x00\x01\x02" * 100, "hello world\nno table here\n",
                                  "Error: unable to establish a connection to the specified host: localhost"])
def test_non_dcgmi_text_is_unparseable(text: str) -> None:
    r = parse_dcgm_diag(text)
    assert isinstance(r, Unparseable) and r.reason


def reads_healthier(r: DcgmDiag | Unparseable, original: DcgmDiag | Unparseable) -> bool:
    """A judged result (not partial, not refused) better than the original's; "could not judge" never is."""
    if isinstance(r, Unparseable) or r.overall in ("partial", "empty"):
        return False
    if isinstance(original, Unparseable) or original.overall in ("partial", "empty"):
        return r.overall == "pass"
    return RANK[r.overall] < RANK[original.overall]


def degradations(text: str) -> list[tuple[str, str]]:
    lines = text.split("\n")
    mid = len(lines) // 2
    number = next((i for i, line in enumerate(lines) if any(c.isdigit() for c in line) and i >= mid), mid)
    replaced = list(lines)
    replaced[number] = "".join("x" if c.isdigit() else c for c in lines[number])
    return [
        ("emptied", ""), ("garbage", bytes(range(256)).decode("latin-1") * 4),
        ("duplicated", "\n".join(lines[:mid + 1] + lines[mid:])),
        ("number", "\n".join(replaced)),
    ]


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
@pytest.mark.parametrize("cut", [0.4, 0.75])
def test_a_cut_recording_is_partial_or_refused(path: Path, cut: float) -> None:
    text = strip_corpus_header(path.read_text())[1]
    original = parse_dcgm_diag(text)
    r = parse_dcgm_diag(text[: int(len(text) * cut)])
    # only a cut that kept the whole table (the B200 file's nvvs log tail) may read as the original
    assert isinstance(r, Unparseable) or r.partial or r == original, "a cut diag must say it is partial"
    assert not reads_healthier(r, original)
    assert isinstance(r, Unparseable) or r.overall != "pass" or original.overall == "pass"


@pytest.mark.parametrize("path", FILES, ids=[p.name for p in FILES])
def test_a_degraded_recording_never_reads_healthier(path: Path) -> None:
    text = strip_corpus_header(path.read_text())[1]
    original = parse_dcgm_diag(text)
    for what, bad in degradations(text):
        r = parse_dcgm_diag(bad)  # never raises
        assert not reads_healthier(r, original), what
        if what in ("emptied", "garbage"):
            assert isinstance(r, Unparseable)
