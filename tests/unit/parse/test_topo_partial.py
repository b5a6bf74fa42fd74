"""`nvidia-smi topo -m`: a fragment is read for what it proves and its gaps are named; a guessed size is refused.

Every input is a recorded corpus file, or rows of one (cut, relabelled or with a cell changed, as each test says).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.topo import TopoMatrix, parse_topo_matrix

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
DERIVED = Path(__file__).resolve().parent / "fixtures"


def body(rel: str) -> str:
    return strip_corpus_header((CORPUS / rel).read_text())[1]


def matrix(text: str) -> TopoMatrix:
    m = parse_topo_matrix(text)
    assert isinstance(m, TopoMatrix), m
    return m


@pytest.mark.parametrize("rel", sorted(str(p.relative_to(CORPUS)) for p in (CORPUS / "topo").glob("*fragment*.txt")))
def test_every_corpus_fragment_is_partial_and_says_what_is_missing(rel: str) -> None:
    m = matrix(body(rel))
    assert m.partial and m.fragment
    assert "no header row" in m.partial or "no rows for" in m.partial


def test_headerless_split_comes_from_a_nic_rows_x_cell() -> None:
    m = matrix(body("topo/8xh100-nv18-tabs-fragment.txt"))
    assert (len(m.gpus), len(m.nics)) == (8, 12)
    assert "from the X cell of NIC0" in (m.partial or "") and "no rows for GPU0, GPU1, GPU2, GPU3" in (m.partial or "")
    # no NV# cell ever lands between a GPU and a NIC
    assert not [k for k, v in m.links.items() if v.startswith("NV") and not all(d.startswith("GPU") for d in k)]


def test_complete_recordings_are_not_partial() -> None:
    for rel in ("topo/dgx-h100-nv18-12nic-tabs.txt", "topo/4xh100-nv6-4nic-legend.txt",
                "topo/8x4090-pcie-all-sys-2nic.txt", "topo/dgx-a100-2gpu-slurm-subset-10nic.txt"):
        assert matrix(body(rel)).partial is None, rel


def test_gpu_rows_without_header_or_nic_row_keep_only_the_proven_gpu_columns() -> None:
    # the GPU4-GPU7 rows of the tabs fragment alone: 20 cells each, but nothing says where the GPUs end
    rows = "\n".join(line for line in body("topo/8xh100-nv18-tabs-fragment.txt").splitlines() if line.startswith("GPU"))
    m = matrix(rows)
    assert m.columns == tuple(f"GPU{i}" for i in range(8)) and m.nics == ()
    assert "may be GPUs or NICs" in (m.partial or "") and m.gpu_nic_affinity() == {}
    assert m.cpu_affinity == {}  # the affinity cells follow unread link cells: not read either


def test_nic_rows_that_disagree_on_the_split_are_refused() -> None:
    # NIC5's row relabelled NIC4 (its X stays in column 13): one row says 8 GPU columns, the other 9
    lines = body("topo/8xh100-nv18-tabs-fragment.txt").splitlines()
    nic_rows = [line for line in lines if line.startswith("NIC")]
    text = "\n".join(line for line in nic_rows if not line.startswith("NIC4")).replace("NIC5\t", "NIC4\t")
    refused = parse_topo_matrix(text)
    assert isinstance(refused, Unparseable) and "disagree" in refused.reason


def test_an_nv_cell_between_a_gpu_and_a_nic_is_refused() -> None:
    lines = body("topo/dgx-h100-nv18-12nic-tabs.txt").split("\n")
    gpu2 = next(i for i, line in enumerate(lines) if line.startswith("GPU2"))
    cells = lines[gpu2].split("\t")
    cells[9] = "NV18"  # GPU2's NIC0 cell (was NODE)
    lines[gpu2] = "\t".join(cells)
    refused = parse_topo_matrix("\n".join(lines))
    assert isinstance(refused, Unparseable) and "NV18 between GPU2 and NIC0" in refused.reason


def test_headerless_rows_whose_nv_cells_pass_the_proven_split_are_refused() -> None:
    lines = body("topo/8xh100-nv18-tabs-fragment.txt").split("\n")
    cells = lines[0].split("\t")
    cells[10] = "NV18"  # GPU4's 10th cell: a NIC column by NIC0's X, so an NV# there is impossible
    lines[0] = "\t".join(cells)
    refused = parse_topo_matrix("\n".join(lines))
    assert isinstance(refused, Unparseable) and "at least 10" in refused.reason


def test_an_x_cell_off_its_own_column_is_refused() -> None:
    lines = body("topo/dgx-h100-nv18-12nic-tabs.txt").split("\n")
    gpu2 = next(i for i, line in enumerate(lines) if line.startswith("GPU2"))
    cells = lines[gpu2].split("\t")
    cells.insert(1, "NV18")  # one extra cell shifts the row right
    lines[gpu2] = "\t".join(cells)
    refused = parse_topo_matrix("\n".join(lines))
    assert isinstance(refused, Unparseable) and "misaligned" in refused.reason


def test_a_p2p_matrix_is_not_read_as_a_link_matrix() -> None:
    refused = parse_topo_matrix(body("topo/topo-p2p-r-8xl40s-pcie-all-ok-normalized.txt"))
    assert isinstance(refused, Unparseable) and "topo -p2p" in refused.reason


def test_cut_rows_name_the_gpus_not_shown_and_their_nic_cells_are_unknown() -> None:
    m = matrix(body("topo/8xh100-nv18-6nic-fragment.txt"))
    assert m.partial == "no rows for GPU3, GPU4, GPU5, GPU6, GPU7"
    assert m.unknown_nic_cells("GPU0") == ()
    assert len(m.unknown_nic_cells("GPU5")) == 6


def test_derived_fixture_has_its_header_and_gpu3_without_nvlink() -> None:
    headers, text = strip_corpus_header((DERIVED / "topo-dgx-h100-gpu3-nvlinks-gone-derived.txt").read_text())
    assert "derived_from" in headers and "change" in headers
    m = matrix(text)
    assert m.partial is None
    assert all(m.link("GPU3", f"GPU{i}") == "SYS" for i in range(8) if i != 3)
    assert m.link("GPU0", "GPU1") == "NV18" and m.nvlink_domain_size() == 7
