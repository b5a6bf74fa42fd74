"""More values read from the real recordings (expected numbers taken from the files by eye, not from the parsers)."""

from __future__ import annotations

from pathlib import Path

from preflight.parse.common import Unparseable, strip_corpus_header
from preflight.parse.fabricmanager import FabricBlock, FabricManagerLog, parse_fabric
from preflight.parse.ibstat import parse_ibdev2netdev, parse_ibstat, parse_ibv_devinfo
from preflight.parse.nccl_tests import parse_nccl_tests
from preflight.parse.nvidia_smi import (
    parse_list_gpus,
    parse_query_csv,
    parse_query_sections,
    parse_table,
    parse_version,
)
from preflight.parse.nvlink import parse_nvlink_capabilities, parse_nvlink_remote, parse_nvlink_status
from preflight.parse.topo import parse_p2p_matrix, parse_topo_matrix
from preflight.parse.versions import (
    parse_driver_version_info,
    parse_modinfo_details,
    parse_nccl_lib_info,
    parse_nvcc_version,
    parse_ofed_info_details,
)
from preflight.parse.xid import describe_xid, parse_kernel_log

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def body(rel: str) -> str:
    return strip_corpus_header((CORPUS / rel).read_text())[1]


# ------------------------------------------------------------------ topo


def test_dgx_h100_merged_header_cell_split_and_numa() -> None:
    m = parse_topo_matrix(body("topo/dgx-h100-nv18-12nic-tabs.txt"))
    assert not m.fragment and len(m.gpus) == 8
    assert m.nics == tuple(f"NIC{i}" for i in range(12))  # 'NIC8NIC9' split
    assert m.nvlink_count("GPU0", "GPU7") == 18
    assert m.numa_affinity["GPU0"] == "0" and m.missing["GPU0 GPU NUMA ID"] == "na"


def test_nic_only_fragment_with_glued_last_cells() -> None:
    m = parse_topo_matrix(body("topo/8gpu-merged-cells-SYSSYS-fragment.txt"))
    assert m.fragment and len(m.gpus) == 8 and len(m.nics) == 18  # X of NIC4 sits in column 12
    assert m.link("GPU2", "NIC4") == "PXB" and m.link("NIC4", "NIC17") == "SYS" and m.link("NIC8", "NIC17") == "NODE"
    assert m.nvlink_domain_size() == 0  # no GPU row: unknown


def test_headerless_fragment_with_two_space_cells() -> None:
    m = parse_topo_matrix(body("topo/8xh100-nv18-irregular-spacing-fragment.txt"))
    assert m.fragment and len(m.gpus) == 8 and len(m.nics) == 12
    assert m.link("GPU5", "NIC9") == "PXB" and m.link("GPU7", "NIC11") == "PXB"
    assert m.cpu_affinity["GPU5"] == "56-111,168-223" and m.numa_affinity["GPU5"] == "1"
    assert m.nvlink_domain_size() == 8


def test_4xh100_pix_nic_per_gpu() -> None:
    m = parse_topo_matrix(body("topo/4xh100-nv6-4nic-legend.txt"))
    assert m.cpu_affinity["GPU0"] == "6,14,22,30" and m.numa_affinity["GPU2"] == "7"
    assert m.gpu_nic_affinity() == {f"GPU{i}": (f"NIC{i}", "PIX") for i in range(4)}
    assert m.nvlink_domain_size() == 4 and m.nvlink_count("GPU1", "GPU3") == 6


def test_truncated_nvswitch_matrix_domain_and_pcie_truncation() -> None:
    assert parse_topo_matrix(body("topo/8xh100-nv18-6nic-fragment.txt")).nvlink_domain_size() == 8
    assert parse_topo_matrix(body("topo/8gpu-pcie-mlx4-2017-old-format.txt")).nvlink_domain_size() == 1
    dgx2 = parse_topo_matrix(body("topo/dgx2-16gpu-v100-nv6-mlx5-named.txt"))
    assert len(dgx2.gpus) == 16 and dgx2.gpu_nic_affinity()["GPU0"] == ("mlx5_0", "PIX")


def test_indented_matrix_then_p2p() -> None:
    text = body("topo/2x3090-indented-wrapped-legend-plus-p2p.txt")
    m = parse_topo_matrix(text)
    assert m.link("GPU0", "GPU1") == "NODE" and not m.fragment
    p = parse_p2p_matrix(text)
    assert p.status[("GPU0", "GPU1")] == "NS" and p.not_ok()
    gns = parse_p2p_matrix(body("misc/topo-p2p-rw-2x5090-gns.txt"))
    assert gns.status[("GPU1", "GPU0")] == "GNS"


# ------------------------------------------------------------------ nvidia-smi


def test_table_cells_555() -> None:
    t = parse_table(body("smi/a100-pcie-x2-default-table-555.txt"))
    g = t.gpus[1]
    assert (g.bus_id, g.temperature_c, g.power_w, g.power_cap_w, g.perf_state) == ("00000000:8A:00.0", 37, 37, 250, "P0")
    assert (g.ecc_uncorrected_volatile, g.compute_mode, g.mig_mode, g.persistence_mode) == (0, "Default", "Disabled", False)
    assert g.fan_pct is None and g.missing["fan_pct"] == "na"
    assert t.no_processes and t.processes == ()


def test_table_fragment_535_widths() -> None:
    t = parse_table(body("smi/a100-sxm4-80gb-default-table-fragment.txt"))
    assert t.fragment and t.driver_version is None
    assert [g.index for g in t.gpus] == [1, 2, 3]
    assert t.gpus[0].bus_id == "00000000:2A:00.0" and t.gpus[0].persistence == "On" and t.gpus[0].power_w == 59


def test_mig_devices_fragment() -> None:
    t = parse_table(body("smi/mig-devices-table-a100-fragment.txt"))
    assert [(d.gpu, d.gi_id, d.mig_dev, d.memory_used_mib) for d in t.mig_devices] == [(1, 3, 0, 14366), (1, 5, 1, 9880), (1, 6, 2, 13)]
    assert t.mig_devices[0].memory_total_mib == 19968 and t.mig_devices[2].bar1_used_mib == 2


def test_table_processes_row() -> None:
    text = (
        "| NVIDIA-SMI 535.129.03             Driver Version: 535.129.03   CUDA Version: 12.2     |\n"
        "| Processes:                                                                            |\n"
        "|    0   N/A  N/A   1234567      C   python3                                   69990MiB |\n"
    )  # synthetic, in the 535 layout
    p = parse_table(text).processes[0]
    assert (p.gpu, p.pid, p.type, p.name, p.memory_mib) == (0, 1234567, "C", "python3", 69990)


def test_query_csv_units_and_not_in_output() -> None:
    rows = parse_query_csv(body("smi/a100-pcie-x2-query-gpu-csv-units.txt"))
    assert rows[1].pci_bus_id_raw == "00000000:8A:00.0" and rows[0].vbios_version == "92.00.25.00.08"
    assert rows[0].temperature_c == 39.0 and rows[0].memory_used_mib == 1
    assert rows[0].extra["memory.free"] == "40447 MiB" and rows[0].missing["uuid"] == "not_in_output"


def test_query_csv_placeholders_hex_and_errors() -> None:
    text = ("index, uuid, ecc.errors.uncorrected.volatile.total, retired_pages.pending, clocks_throttle_reasons.active, "
            "power.draw [W], mig.mode.current\n0, GPU-1, [N/A], [Not Supported], 0x0000000000000004, 113.25 W, [Unknown Error]\n")
    r = parse_query_csv(text)[0]
    assert r.ecc_uncorrected_volatile is None and r.missing["ecc_uncorrected_volatile"] == "na"
    assert r.missing["retired_pages_pending"] == "not_supported" and r.missing["mig_mode"] == "unknown_error"
    assert r.clocks_throttle_reasons_active == 4 and r.power_draw_w == 113.25
    failed = parse_query_csv("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n")
    assert isinstance(failed, Unparseable) and "couldn't communicate" in failed.reason
    bad = parse_query_csv('Field "foo" is not a valid field to query.\n')
    assert isinstance(bad, Unparseable) and '"foo"' in bad.reason
    noheader = parse_query_csv("0, NVIDIA H100, 00000000:18:00.0\n")
    assert isinstance(noheader, Unparseable) and "noheader" in noheader.reason


def test_version_list_and_sections() -> None:
    v = parse_version(body("misc/nvidia-smi-version-595.txt"))
    assert (v.smi, v.nvml, v.cuda) == ("595.58.03", "595.58", "13.2")
    gpus = parse_list_gpus(body("smi/a100-pcie-x2-list-gpus.txt"))
    assert gpus[1].uuid == "GPU-14ac2834-0d81-0508-69eb-e25264c08d21" and gpus[0].name == "NVIDIA A100-PCIE-40GB"
    perf = parse_query_sections(body("smi/a100-pcie-x2-q-d-performance-clocks-event-reasons.txt"))
    tree = perf.gpu("0000:12:00.0")
    assert tree["Clocks Event Reasons"]["Idle"] == "Active" and tree["Clocks Event Reasons"]["HW Slowdown"] == "Not Active"
    old = parse_query_sections(body("smi/gtx1080-q-driver396-narrow-key-column.txt"))
    gtx = old.gpus["00000000:01:00.0"]
    assert gtx["Product Name"] == "GeForce GTX 1080" and gtx["Inforom Version"]["OEM Object"] == "1.1"
    assert "CUDA Version" not in old.header


# ------------------------------------------------------------------ nvlink


def test_gb200_status_plus_info_and_elision() -> None:
    gpus = parse_nvlink_status(body("nvlink/gb200-nvlink-s-and-info.txt"))
    assert [g.index for g in gpus] == [0, 1]
    assert gpus[0].active == 18 and {l.speed_gbps for l in gpus[0].links} == {53.125}
    assert gpus[0].info["NVLE"] == "disabled" and gpus[0].info["MSE"] == "14:4:0"
    assert gpus[1].elided and len(gpus[1].links) == 2


def test_other_nvlink_subcommands() -> None:
    remote = parse_nvlink_remote(body("nvlink/h100-nvlink-R-remote-mapping.txt"))
    assert (remote[0].remote_bus_id, remote[0].remote_link) == ("00000000:07:00.0", 46)
    assert len([r for r in remote if r.gpu == 0]) == 18
    assert isinstance(parse_nvlink_status(body("nvlink/h100-nvlink-R-remote-mapping.txt")), Unparseable)
    caps = parse_nvlink_capabilities(body("nvlink/v100-sxm2-nvlink-capabilities.txt"))
    assert caps[0].links[0]["P2P is supported"] is True and caps[0].links[0]["SLI is supported"] is False
    assert isinstance(parse_nvlink_status(body("nvlink/v100-sxm2-nvlink-capabilities.txt")), Unparseable)


def test_h100_second_gpu_and_inactive_line() -> None:
    gpus = parse_nvlink_status(body("nvlink/h100-nvlink-status-18-links-bottlerocket.txt"))
    assert [g.active for g in gpus] == [18, 18]
    synthetic = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-x)\n\t Link 0: 26.562 GB/s\n\t Link 1: <inactive>\n"
    g = parse_nvlink_status(synthetic)[0]
    assert g.active == 1 and not g.links[1].active and g.links[1].speed_gbps is None


# ------------------------------------------------------------------ IB


def test_ibstat_values() -> None:
    roce = parse_ibstat(body("ib/ibstat-cx6dx-roce-100.txt"))
    assert [(c.name, c.ports[0].link_layer, c.ports[0].rate_gbps) for c in roce.cas] == [("mlx5_0", "Ethernet", 100.0), ("mlx5_1", "Ethernet", 100.0)]
    h20 = parse_ibstat(body("ib/ibstat-h20-roce-disabled-rate40.txt")).cas[0].ports[0]
    assert (h20.state, h20.phys_state, h20.rate_gbps, h20.up) == ("Down", "Disabled", 40.0, False)
    elided = parse_ibstat(body("ib/ibstat-h100-ndr400-single-ca-elided.txt"))
    ca = elided.cas[0]
    assert elided.elided and ca.name == "mlx5_5" and ca.firmware == "28.41.1000" and ca.system_guid == "0x9c63c003005548ae"
    assert (ca.ports[0].base_lid, ca.ports[0].sm_lid, ca.ports[0].up) == (987, 359, True)
    redacted = parse_ibstat(body("ib/ibstat-tabs-redacted-with-ibpanic-error.txt"))
    assert redacted.cas[0].firmware is None and redacted.cas[0].missing["firmware"] == "redacted"
    assert redacted.cas[0].ports[0].base_lid == 13305 and redacted.errors[0].startswith("ibpanic:")


def test_ibv_devinfo_and_ibdev2netdev() -> None:
    devs = parse_ibv_devinfo(body("ib/ibv_devinfo-cx6dx-roce-down-and-cx7.txt"))
    p = devs[0].port_info[0]
    assert (devs[0].hca_id, devs[0].fw_ver, p.state, p.active_mtu, p.link_layer) == ("mlx5_12", "22.38.1900", "PORT_DOWN", 1024, "Ethernet")
    assert devs[1].hca_id == "mlx5_13" and devs[1].port_info == ()
    active = parse_ibv_devinfo(body("ib/ibv_devinfo-h100-roce-active-fragment.txt"))[0].port_info[0]
    assert (active.state, active.active_mtu) == ("PORT_ACTIVE", 4096)
    hns = parse_ibv_devinfo(body("ib/ibv_devinfo-v-huawei-hns-roce-partial.txt"))[0]
    assert hns.fields["device_cap_flags"].startswith("0x01321400") and "MEM_WINDOW_TYPE_2B" in hns.fields["device_cap_flags"]
    maps = parse_ibdev2netdev(body("ib/ibdev2netdev-h100-column-t-annotated.txt"))
    assert maps[1].netdev == "enp27s0f0np0" and maps[1].state == "Up"


# ------------------------------------------------------------------ nccl-tests


def test_nccl_tests_formats() -> None:
    gb10 = parse_nccl_tests(body("nccl_tests/allreduce-2node-dgx-spark-gb10-version-header.txt"))
    assert len(gb10.rows) == 4 and gb10.nccl_version == "2.31.2" and gb10.params["iters"] == "100"
    assert gb10.rows[-1].ip_busbw == 1.01 and gb10.rows[0].root == -1 and gb10.device_info[1].host == "spark-dbf4"
    tagged = parse_nccl_tests(body("nccl_tests/allreduce-2rank-mpirun-tag-output-prefix-poor-bw.txt"))
    assert tagged.busbw_at_largest() == (536870912, 5.33)
    old = parse_nccl_tests(body("nccl_tests/allreduce-128gpu-old-format-error-column-1e-06.txt"))
    assert old.error_column and len(old.rows) == 6 and old.rows[0].oop_wrong == 1e-06 and old.wrong_total == 0
    assert old.rows[0].redop == "sum" and old.rows[0].root is None
    ag = parse_nccl_tests(body("nccl_tests/allgather-2019-format-no-redop-root-0e+00-errors.txt"))
    assert ag.rows[0].dtype == "float" and ag.rows[0].redop is None and ag.max_busbw == 7.32


def test_nccl_tests_header_only_runs() -> None:
    azure = parse_nccl_tests(body("nccl_tests/allreduce-16xh100-2node-azure-header-4digit-domain.txt"))
    assert azure.rows == () and azure.ranks == 12 and azure.device_info[4].bus_id == "0003:00:01"
    mpi = parse_nccl_tests(body("nccl_tests/allreduce-2018-out-of-bounds-248-FAILED-with-mpi-warning.txt"))
    assert mpi.rows == () and mpi.ngpus == 8 and mpi.params["maxBytes"] == "33554432"
    ancient = parse_nccl_tests(body("nccl_tests/nccl-2017-single-all_reduce_test-ancient-format.txt"))
    assert ancient.rows == () and ancient.ranks == 2 and "NCCL 1.x" in ancient.notes[0]
    nohash = parse_nccl_tests(body("nccl_tests/allreduce-8xa100-2021-no-hash-prefix-old-format.txt"))
    assert nohash.ranks == 8 and nohash.device_info[7].pid == 1821223 and nohash.error_column


def test_nccl_tests_interleaved_and_footer() -> None:
    inter = parse_nccl_tests(body("nccl_tests/allreduce-interleaved-rows-two-independent-runs.txt"))
    assert inter.interleaved and len(inter.rows) == 10
    base = body("nccl_tests/allreduce-8xh20-single-node-small-sizes-fragment.txt")
    footer = "# Out of bounds values : 0 OK\n# Avg bus bandwidth    : 0.0512 \n#\n"  # synthetic footer, nccl-tests wording
    r = parse_nccl_tests(base + "\n" + footer)
    assert r.avg_busbw == 0.0512 and r.out_of_bounds == 0 and len(r.rows) == 10 and not r.interleaved


# ------------------------------------------------------------------ kernel log, versions, fabric


def test_xid_files() -> None:
    codes = lambda rel: [x.code for x in parse_kernel_log(body(rel)).xids]  # noqa: E731
    assert codes("xid/xid31-mmu-fault-xid13-xid32-desktop-418.txt") == [31, 13, 13, 13, 13, 32]
    assert codes("xid/xid144-145-149-nvlink5-netir-rlw-examples.txt")[:4] == [149, 149, 145, 144]
    journal = parse_kernel_log(body("xid/xid32-69-62-journal-with-kernel-ts-gist-table-artifact.txt"))
    assert [x.code for x in journal.xids] == [32, 69, 69, 62]
    assert journal.xids[3].message == "0096(1c54) 00000000 00000000" and journal.xids[0].timestamp == "Dec 23 23:30:56"
    talos = parse_kernel_log(body("xid/xid154-gsp-timeout-talos-kern-prefix.txt"))
    assert talos.xids[0].code == 154 and talos.xids[0].timestamp == "2026-04-22T21:30:51.870495804Z"
    assert talos.others[0].kind == "gsp_timeout"
    ctime = parse_kernel_log(body("xid/xid13-xid109-dmesg-ctime-with-peermem.txt")).xids
    assert ctime[0].pid is None and ctime[0].missing["pid"] == "unknown"
    assert (ctime[3].pid, ctime[3].process, ctime[3].timestamp) == (1797828, "pt_main_thread", "[Fri Aug 30 11:43:14 2024]")


def test_events_without_xid() -> None:
    fallen = parse_kernel_log(body("xid/gpu-fallen-off-bus-multiline-no-xid-570.txt"))
    ev = fallen.others[0]
    assert ev.kind == "fallen_off_bus" and ev.device == "0000:b3:00.0" and len(ev.raw_lines) == 3
    assert ev.timestamp == "[ 1843.308145]" and fallen.driver_versions == ("570.158.01",)
    gsp = parse_kernel_log(body("xid/gsp-heartbeat-timeout-rpc-history-gh100.txt"))
    assert gsp.xids == () and {o.kind for o in gsp.others} == {"gsp_timeout"} and gsp.others[0].device == "GPU6"
    assert describe_xid(63)["severity"] == "nonfatal" and describe_xid(149)["unit"] == "NETIR"


def test_versions_and_fabric() -> None:
    mod = parse_modinfo_details(body("misc/modinfo-nvidia-590-open-partial.txt"))
    assert (mod.version, mod.open_module) == ("590.44.01", True) and len(mod.fields["firmware"]) == 2
    assert parse_nvcc_version(body("misc/nvcc-version-12.6.txt")) == "12.6.20"
    drv = parse_driver_version_info("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  590.44.01  Release Build\n")
    assert (drv.version, drv.open_module) == ("590.44.01", True)
    assert parse_nccl_lib_info("libnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2\n").major_only
    assert parse_ofed_info_details("MLNX_OFED_LINUX-5.8-1.0.1.1:\n").version == "5.8-1.0.1.1"
    block = parse_fabric(body("misc/fabric-completed-insufficient-resources-zero-uuid.txt"))
    assert isinstance(block, FabricBlock) and block.status == "Insufficient Resources" and block.ok is False
    assert block.cluster_uuid is None and block.clique_id == 0
    fm = parse_fabric(body("misc/fabricmanager-driver-version-mismatch-journal.txt"))
    assert isinstance(fm, FabricManagerLog) and fm.status == "failed" and (fm.fm_version, fm.driver_version) == ("550.127.05", "550.120")
    assert parse_fabric(body("misc/fabricmanager-nv-warn-nothing-to-do-cjk-month.txt")).status == "no_nvswitch"
