"""Every recorded output in the corpus parses to a typed result or a clear Unparseable, never a crash.

tests/fixtures/corpus is a copy of the project's shared corpus (real outputs published from real
machines; each file's header names its source).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from preflight.parse import (
    fabricmanager,
    ibstat,
    misc_tools,
    mlxlink,
    nccl_tests,
    nvidia_smi,
    nvlink,
    topo,
    versions,
    xid,
)
from preflight.parse.common import Unparseable, strip_corpus_header

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
SHARED = Path(__file__).resolve().parents[3].parent / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.rglob("*.txt"))

PARSERS = [
    nvidia_smi.parse_query_csv, nvidia_smi.parse_table, nvidia_smi.parse_version, nvidia_smi.parse_query_sections,
    nvidia_smi.parse_list_gpus, topo.parse_topo_matrix, topo.parse_p2p_matrix,
    nvlink.parse_nvlink_status, nvlink.parse_nvlink_capabilities, nvlink.parse_nvlink_remote,
    ibstat.parse_ibstat, ibstat.parse_ibstatus, ibstat.parse_ibv_devinfo, ibstat.parse_ibdev2netdev, ibstat.parse_dotted_counters,
    nccl_tests.parse_nccl_tests, xid.parse_kernel_log,
    versions.parse_driver_version_file, versions.parse_driver_version_info, versions.parse_nccl_version_from_libs,
    versions.parse_nccl_lib_info, versions.parse_ofed_info, versions.parse_ofed_info_details, versions.parse_meminfo,
    versions.parse_nvcc_version, versions.parse_modinfo, versions.parse_modinfo_details, versions.parse_os_release,
    fabricmanager.parse_fabric_block, fabricmanager.parse_fabricmanager_log, fabricmanager.parse_fabric,
    misc_tools.parse_acsctl, misc_tools.parse_fabric, misc_tools.parse_lspci_list, mlxlink.parse_mlxlink,
]


# Formats whose parsers come with a later issue: routed to a refusal that says so, and listed in
# EXPECTED_UNPARSEABLE (a refusal is the honest answer until a parser reads them; never "no errors").
LATER = {
    "dcgm": "DCGM diag output: parsed by issue 13's active tests",
    "nvbandwidth": "nvbandwidth matrices: parsed by issue 13's active tests",
    "perftest": "perftest (ib_*_bw) output: parsed by issue 13's active tests",
}
# Recordings of a format we parse whose honest answer is a refusal (why).
REFUSED = {
    "ib/mlxlink-json-connectx5-ib-edr-operational-info-fragment.txt":
        "an mlxlink --json document cut inside its first section: not whole JSON, refused rather than guessed",
}


def _later(why: str):
    def refuse(text: str) -> Unparseable:
        return Unparseable.of(f"no parser yet: {why}", text if isinstance(text, str) else "")
    return refuse


def _later_reason(rel: str) -> str | None:
    return LATER.get(rel.split("/", 1)[0]) or next((why for key, why in LATER.items() if "/" in key and rel.startswith(key)), None)


def route(rel: str):
    """The parser that owns a corpus file, by folder and name; None for the hang analysers' formats."""
    folder, name = rel.split("/", 1)
    later = _later_reason(rel)
    if later:
        return _later(later)
    if folder == "topo":
        if name.startswith("topo-p2p"):
            return topo.parse_p2p_matrix
        return topo.parse_topo_matrix
    if folder == "nvlink":
        if "capabilities" in name:
            return nvlink.parse_nvlink_capabilities
        if "nvlink-R-" in name:
            return nvlink.parse_nvlink_remote
        return nvlink.parse_nvlink_status
    if folder == "ib":
        if name.startswith("ibstatus"):
            return ibstat.parse_ibstatus
        if name.startswith("ibstat"):
            return ibstat.parse_ibstat
        if name.startswith("ibv_devinfo"):
            return ibstat.parse_ibv_devinfo
        if name.startswith("ibdev2netdev"):
            return ibstat.parse_ibdev2netdev
        if name.startswith("mlxlink"):
            return mlxlink.parse_mlxlink
        return ibstat.parse_dotted_counters  # perfquery, ibportstate
    if folder == "nccl_tests":
        return nccl_tests.parse_nccl_tests
    if folder == "xid":
        return xid.parse_kernel_log
    if folder == "smi":
        if "query-gpu-csv" in name:
            return nvidia_smi.parse_query_csv
        if "default-table" in name or "mig-devices" in name:
            return nvidia_smi.parse_table
        if "list-gpus" in name:
            return nvidia_smi.parse_list_gpus
        if "fabric" in name:  # a `-q` Fabric block (grep excerpts): State/Status and its Health sub-block
            return fabricmanager.parse_fabric_block
        return nvidia_smi.parse_query_sections
    if folder == "misc":
        if name.startswith("nvidia-smi-version"):
            return nvidia_smi.parse_version
        if name.startswith("nvcc"):
            return versions.parse_nvcc_version
        if name.startswith("modinfo"):
            return versions.parse_modinfo
        if name.startswith("topo-p2p"):
            return topo.parse_p2p_matrix
        if name.startswith("lspci-acsctl"):
            return misc_tools.parse_acsctl
        if name.startswith("lspci"):
            return misc_tools.parse_lspci_list
        if name.startswith("fabric"):
            return fabricmanager.parse_fabric
        if name.startswith("ofed-info"):
            return versions.parse_ofed_info
        if name.startswith("ldconfig"):
            return versions.parse_nccl_lib_info
    return None


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_file_parses_or_is_clearly_unparseable(path: Path) -> None:
    headers, body = strip_corpus_header(path.read_text())
    assert "source" in headers, "every corpus file names its source"
    parser = route(str(path.relative_to(CORPUS)))
    if parser is None:  # NCCL logs, watchdog timeouts, flight-recorder dumps: the hang analysers (issue 6)
        from preflight.hang.sniff import parse_text as parser
    result = parser(body)
    if isinstance(result, Unparseable):
        assert result.reason.strip()
    else:
        assert result is not None and result != [] and result != {}


# Corpus files whose expected answer is a clear refusal, not a typed result (with why).
EXPECTED_UNPARSEABLE: dict[str, str] = {
    str(p.relative_to(CORPUS)): why for p in FILES
    if (why := _later_reason(str(p.relative_to(CORPUS))) or REFUSED.get(str(p.relative_to(CORPUS))))
}


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_corpus_files_of_our_tools_give_typed_results(path: Path) -> None:
    rel = str(path.relative_to(CORPUS))
    parser = route(rel)
    if parser is None:  # NCCL logs, watchdog timeouts, flight-recorder dumps: the hang analysers (issue 6)
        from preflight.hang.sniff import parse_text as parser
    result = parser(strip_corpus_header(path.read_text())[1])
    if rel in EXPECTED_UNPARSEABLE:
        assert isinstance(result, Unparseable), EXPECTED_UNPARSEABLE[rel]
    else:
        assert not isinstance(result, Unparseable), f"{rel}: {getattr(result, 'reason', '')}"


@pytest.mark.parametrize("path", FILES, ids=[str(p.relative_to(CORPUS)) for p in FILES])
def test_no_parser_crashes_on_any_corpus_file_or_its_truncations(path: Path) -> None:
    _, body = strip_corpus_header(path.read_text())
    rng = random.Random(str(path))
    cuts = [body, "", "\n\n", body.replace("\n", "\r\n")] + [body[: rng.randrange(0, max(1, len(body)))] for _ in range(5)]
    cuts.append("\x00\xff\xfe garbage \x1b[31m" + "".join(chr(rng.randrange(0, 0x2FF)) for _ in range(300)))
    cuts.append(bytes(rng.randrange(256) for _ in range(512)).decode("latin-1"))
    cuts.append(body[: len(body) // 2] + "\x00\x01\x02" + body[len(body) // 2:])
    for parser in PARSERS:
        for text in cuts:
            result = parser(text)  # must not raise
            if isinstance(result, Unparseable):
                assert result.reason and len(result.excerpt) <= 200


def test_fixture_copy_matches_shared_corpus() -> None:
    if not SHARED.is_dir():
        pytest.skip("shared corpus not beside this checkout")
    shared = {p.relative_to(SHARED): p.read_bytes() for p in SHARED.rglob("*") if p.is_file()}
    ours = {p.relative_to(CORPUS): p.read_bytes() for p in CORPUS.rglob("*") if p.is_file()}
    assert shared.keys() <= ours.keys(), f"copy new corpus files: {sorted(map(str, shared.keys() - ours.keys()))}"
    changed = [str(k) for k in shared if shared[k] != ours[k]]
    assert not changed, changed


def test_every_later_format_in_the_corpus_is_listed_with_why() -> None:
    later = set(EXPECTED_UNPARSEABLE)
    assert {k.split("/")[0] for k in later} >= {"dcgm", "nvbandwidth", "perftest", "ib"}
    assert all(EXPECTED_UNPARSEABLE[k] for k in later)


def test_nvswitch_sxid_lines_are_events_not_a_clean_log() -> None:
    # before: parse_kernel_log returned no events for SXid lines, i.e. "no errors" on an NVSwitch fault
    path = CORPUS / "xid/nvswitch-sxid-22013-minion-dlreq-nonfatal-h100-tdx-570.txt"
    body = strip_corpus_header(path.read_text())[1]
    events = xid.parse_kernel_log(body)
    sxids = [e for e in events.others if e.kind == "nvswitch_sxid"]
    assert [(e.device, e.code) for e in sxids] == [("0000:04:00.0", 22013)] * 3
    assert "Non-fatal, Link 44" in sxids[0].raw_line and len(sxids[0].raw_lines) == 3
    assert events.xids == ()  # an SXid is an NVSwitch event, not a GPU Xid
