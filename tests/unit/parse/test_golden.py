"""Values read from real recordings (expected numbers taken from the files by eye, not from the parser)."""

from __future__ import annotations

from pathlib import Path

from preflight.parse.common import strip_corpus_header
from preflight.parse.ibstat import parse_ibstat
from preflight.parse.nccl_tests import parse_nccl_tests
from preflight.parse.nvidia_smi import parse_query_csv, parse_table, parse_version
from preflight.parse.nvlink import parse_nvlink_status
from preflight.parse.topo import parse_topo_matrix
from preflight.parse.xid import describe_xid, parse_kernel_log

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def body(rel: str) -> str:
    return strip_corpus_header((CORPUS / rel).read_text())[1]


def test_dgx_h100_topology_with_glued_cells() -> None:
    m = parse_topo_matrix(body("topo/dgx-h100-nv18-12nic-tabs.txt"))
    assert len(m.gpus) == 8 and len(m.nics) == 12
    assert m.link("GPU0", "GPU7") == "NV18"
    assert m.nvlink_domain_size() == 8
    assert m.gpu_nic_affinity()["GPU0"] == ("NIC0", "PXB")
    assert m.link("GPU4", "NIC8") == "NODE" and m.link("GPU5", "NIC9") == "PXB"  # 'NODEPXB' split
    assert m.cpu_affinity["GPU4"] == "56-111,168-223"


def test_pcie_box_has_no_nvlink_domain() -> None:
    m = parse_topo_matrix(body("topo/8x4090-pcie-all-sys-2nic.txt"))
    assert len(m.gpus) == 8 and m.nvlink_domain_size() == 1
    assert set(m.gpu_pairs().values()) == {"SYS"}


def test_named_nic_columns_and_old_format() -> None:
    m = parse_topo_matrix(body("topo/8gpu-pcie-mlx4-2017-old-format.txt"))
    assert "mlx4_0" in m.nics and m.link("GPU0", "GPU1") == "PIX"


def test_h100_nvlink_status() -> None:
    gpus = parse_nvlink_status(body("nvlink/h100-nvlink-status-18-links-bottlerocket.txt"))
    assert gpus[0].name == "NVIDIA H100 80GB HBM3" and len(gpus[0].links) == 18 and gpus[0].active == 18
    assert gpus[0].links[0].speed_gbps == 26.562


def test_a100_pcie_no_nvlink() -> None:
    gpus = parse_nvlink_status(body("nvlink/a100-pcie-no-nvlink-all-links-inactive.txt"))
    assert [g.active for g in gpus] == [0, 0] and "inActive" in gpus[0].note


def test_ibstat_ndr400() -> None:
    st = parse_ibstat(body("ib/ibstat-cx7-ndr400-infiniband.txt"))
    port = st.cas[0].ports[0]
    assert (port.state, port.phys_state, port.rate_gbps, port.link_layer) == ("Active", "LinkUp", 400.0, "InfiniBand")


def test_ibstat_disabled_port_and_ibpanic() -> None:
    st = parse_ibstat(body("ib/ibstat-cx6-hdr200-plus-disabled-and-cx4lx.txt"))
    mlx5_1 = next(ca for ca in st.cas if ca.name == "mlx5_1").ports[0]
    assert (mlx5_1.state, mlx5_1.phys_state, mlx5_1.rate_gbps) == ("Down", "Disabled", 10.0)
    panic = parse_ibstat(body("ib/ibstat-tabs-redacted-with-ibpanic-error.txt"))
    assert panic.errors and "mlx5_8" in panic.errors[0]


def test_query_csv_with_units() -> None:
    rows = parse_query_csv(body("smi/a100-pcie-x2-query-gpu-csv-units.txt"))
    assert len(rows) == 2 and rows[0].name == "NVIDIA A100-PCIE-40GB"
    assert rows[0].memory_total_mib == 40960 and rows[1].pci_bus_id == "0000:8a:00.0"
    assert rows[0].index == 0 and rows[1].index == 1


def test_default_table_555() -> None:
    t = parse_table(body("smi/a100-pcie-x2-default-table-555.txt"))
    assert (t.driver_version, t.cuda_version) == ("555.42.02", "12.5")
    assert [g.memory_total_mib for g in t.gpus] == [40960, 40960]


def test_smi_version() -> None:
    v = parse_version(body("misc/nvidia-smi-version-595.txt"))
    assert v.driver == "595.58.03"


def test_nccl_tests_rows_and_tags() -> None:
    r = parse_nccl_tests(body("nccl_tests/allreduce-2node-dgx-spark-gb10-version-header.txt"))
    assert r.version == "2.20.0" and r.ranks == 2 and r.rows[0].size_bytes == 8192
    tagged = parse_nccl_tests(body("nccl_tests/allreduce-2rank-mpirun-tag-output-prefix-poor-bw.txt"))
    assert tagged.max_busbw == 29.5


def test_xid_codes() -> None:
    ev = parse_kernel_log(body("xid/xid13-xid109-dmesg-ctime-with-peermem.txt"))
    assert [x.code for x in ev.xids] == [13, 13, 13, 109]
    assert any(o.kind == "peermem_error" for o in ev.others)
    assert [x.code for x in parse_kernel_log(body("xid/xid63-row-remapper-a100.txt")).xids] == [63]
    fallen = parse_kernel_log(body("xid/gpu-fallen-off-bus-multiline-no-xid-570.txt"))
    assert not fallen.xids and fallen.others[0].kind == "fallen_off_bus"
    assert describe_xid(79)["mnemonic"] == "ROBUST_CHANNEL_GPU_HAS_FALLEN_OFF_THE_BUS"


def test_query_sections_nest_by_indentation() -> None:
    from preflight.parse.misc_tools import parse_query_sections

    q = parse_query_sections(body("smi/a100-pcie-x2-q-d-ecc-clean.txt"))
    assert q.header["Driver Version"] == "555.42.02"
    gpu = q.gpus["00000000:12:00.0"]
    assert gpu["ECC Mode"]["Current"] == "Enabled"
    assert gpu["ECC Errors"]["Volatile"]["DRAM Uncorrectable"] == "0"
    old = parse_query_sections(body("smi/gtx1080-q-driver396-narrow-key-column.txt"))
    assert old.header["Driver Version"] == "396.54"


def test_ibdev2netdev_and_acs() -> None:
    from preflight.parse.misc_tools import parse_acsctl, parse_ibdev2netdev

    rows = parse_ibdev2netdev(body("ib/ibdev2netdev-h100-column-t-annotated.txt"))
    assert rows[0] == ("mlx5_0", 1, "ibp26s0", "Down") and len(rows) == 12
    acs = parse_acsctl(body("misc/lspci-acsctl-grep-tabs.txt"))
    assert acs[3].flags["SrcValid"] is True and acs[0].flags["SrcValid"] is False
    assert acs[3].redirects and not acs[0].redirects
