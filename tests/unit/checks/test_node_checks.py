"""Checks as pure functions of facts (NHC style): healthy, faulty and missing facts, built from recorded outputs."""

from __future__ import annotations

from pathlib import Path

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.engine import judge
from preflight.parse.common import strip_corpus_header
from preflight.registry import select_checks

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"


def rec(rel: str) -> str:
    return strip_corpus_header((CORPUS / rel).read_text())[1]


def node(name: str, probes: dict[str, str | None], **kw) -> NodeRaw:
    """A NodeRaw whose probes print the given recorded bodies (None: tool absent)."""
    doc = {"mode": "python", "probes": {}}
    for pid, out in probes.items():
        doc["probes"][pid] = ({"rc": 0, "stdout": out, "stderr": "", "error": None, "kind": "cmd"} if out is not None
                              else {"rc": None, "stdout": "", "stderr": "", "error": "absent", "kind": "cmd"})
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector=doc, **kw)


def findings(raws: list[NodeRaw], pattern: str):
    report, _ = judge(Bundle(nodes=raws), select_checks(pattern))
    return [f for n in report.nodes for f in n.findings]


def test_xid_fatal_fails_nonfatal_warns_clean_passes() -> None:
    bad = node("n1", {"kernel_log": rec("xid/xid13-xid109-dmesg-ctime-with-peermem.txt")})
    clean = node("n2", {"kernel_log": "[    0.000000] Linux version 6.1\n"})
    fs = findings([bad, clean], "gpu.xid")
    status = {(f.node, f.subject): f.status.value for f in fs}
    assert status[("n1", "Xid 109")] == "fail" and status[("n1", "Xid 13")] == "warn"
    assert status[("n2", None)] == "pass"


def test_xid_without_number_fallen_off_bus_fails() -> None:
    fs = findings([node("n1", {"kernel_log": rec("xid/gpu-fallen-off-bus-multiline-no-xid-570.txt")})], "gpu.xid")
    assert [f.subject for f in fs if f.status.value == "fail"] == ["fallen_off_bus"]


def test_xid_is_unknown_when_the_kernel_log_is_unreadable_and_accepted_when_said_so() -> None:
    # was `skip` (read as healthy by the node verdict): a missing dmesg is a gap in the evidence
    fs = findings([node("n1", {"kernel_log": None})], "gpu.xid")
    assert [f.status.value for f in fs] == ["error"] and "not found" in fs[0].msg
    accepted = node("n2", {"kernel_log": None}, expect={"accept": {"xid": "no root for dmesg on this fleet"}},
                    expect_sources={"accept.xid": "inventory:fleet.yaml group gpu"})
    fs = findings([accepted], "gpu.xid")
    assert [f.status.value for f in fs] == ["accepted"]
    assert fs[0].expected_source == "inventory:fleet.yaml group gpu" and "no root for dmesg" in fs[0].msg


def test_ecc_from_query_sections() -> None:
    table = rec("smi/a100-pcie-x2-default-table-555.txt")
    clean = node("n1", {"smi_table": table, "smi_q_ecc": rec("smi/a100-pcie-x2-q-d-ecc-clean.txt")})
    fs = findings([clean], "gpu.ecc.*")
    assert {f.status.value for f in fs} == {"pass"} and len(fs) == 2
    # without -q the table's "Volatile Uncorr. ECC" column still gives the volatile counter of each GPU
    table_only = findings([node("n2", {"smi_table": table, "smi_q_ecc": None})], "gpu.ecc.*")
    assert [f.status.value for f in table_only] == ["pass", "pass"]
    assert table_only[0].observed == "volatile 0, aggregate None"


def test_clock_reasons_from_recording_are_healthy() -> None:
    fs = findings([node("n1", {"smi_table": rec("smi/a100-pcie-x2-default-table-555.txt"),
                               "smi_q_perf": rec("smi/a100-pcie-x2-q-d-performance-clocks-event-reasons.txt")})],
                  "gpu.clocks.*")
    assert [f.status.value for f in fs] == ["pass", "pass"]
    assert fs[0].observed == "Idle"


def test_unparseable_output_is_an_error_not_a_crash() -> None:
    fs = findings([node("n1", {"topo": "\x00\x01garbage\xff" * 10})], "topology.read")
    assert [f.status.value for f in fs] == ["error"] and "unparseable" in fs[0].msg


def test_gpu_nic_affinity_pix_passes_sys_warns() -> None:
    good = findings([node("n1", {"topo": rec("topo/4xh100-nv6-4nic-legend.txt")})], "topology.gpu_nic_affinity")
    assert {f.status.value for f in good} == {"pass"} and len(good) == 4
    far = findings([node("n2", {"topo": rec("topo/8x4090-pcie-all-sys-2nic.txt")})], "topology.gpu_nic_affinity")
    assert {f.status.value for f in far} == {"warn"}  # no GPU has a NIC on its PCIe switch
    by_gpu = {f.subject: f.observed for f in far}
    assert by_gpu["GPU6"].endswith("via PHB") and by_gpu["GPU0"].endswith("via SYS")


def test_pcie_box_has_no_nvlink_and_that_is_fine() -> None:
    fs = findings([node("n1", {"nvlink_status": rec("nvlink/a100-pcie-no-nvlink-all-links-inactive.txt"),
                               "smi_table": rec("smi/a100-pcie-x2-default-table-555.txt")})], "nvlink.links.*")
    assert [f.status.value for f in fs] == ["pass"] and "PCIe only" in fs[0].msg


def test_ib_port_down_fails_with_its_block_as_evidence() -> None:
    fs = findings([node("n1", {"ibstat": rec("ib/ibstat-cx6-hdr200-plus-disabled-and-cx4lx.txt")})], "ib.port.state")
    down = [f for f in fs if f.status.value == "fail"]
    assert [f.subject for f in down] == ["mlx5_1/1"]
    assert any("State: Down" in e for e in down[0].evidence)


def test_thresholds_override_per_node() -> None:
    raw = node("n1", {"kernel_log": ""})
    raw.collector["probes"]["memlock"] = {"rc": 0, "stdout": '{"soft": 65536, "hard": 65536, "unlimited_soft": false, "unlimited_hard": false}',
                                          "stderr": "", "error": None, "kind": "builtin"}
    raw.collector["probes"]["ibstat"] = {"rc": 0, "stdout": rec("ib/ibstat-cx7-ndr400-infiniband.txt"), "stderr": "",
                                         "error": None, "kind": "cmd"}
    [f] = findings([raw], "memory.memlock")
    assert f.status.value == "fail" and "aws-samples" in (f.expected_source or "")
    raw.thresholds = {"memory.memlock": {"min_gib_when_limited": 0.00001}}
    [g] = findings([raw], "memory.memlock")
    assert g.status.value == "pass" and g.expected_source == "inventory thresholds.memory.memlock.min_gib_when_limited"


def _nccl_node(name: str, first: str, second: str | None = None, **expect) -> NodeRaw:
    probes = {"nccl_allreduce": first}
    if second is not None:
        probes["nccl_allreduce_repeat"] = second
    return node(name, probes, expect=expect, expect_sources=dict.fromkeys(expect, "inventory:test.yaml defaults"))


def test_nccl_busbw_fails_only_when_every_run_is_low() -> None:
    poor = rec("nccl_tests/allreduce-2rank-mpirun-tag-output-prefix-poor-bw.txt")  # collapses to 5.27 GB/s at 64M
    both = findings([_nccl_node("n1", poor, poor, allreduce_busbw_gbps_min=20)], "nccl.allreduce.busbw")
    assert [f.status.value for f in both] == ["fail"]
    assert "5.3 / 5.3 GB/s at 512M" in both[0].observed and both[0].expected_source == "inventory:test.yaml defaults"
    good = rec("nccl_tests/allgather-2gpu-bfloat16-linear-step.txt")
    once = findings([_nccl_node("n2", poor, good, allreduce_busbw_gbps_min=20)], "nccl.allreduce.busbw")
    assert [f.status.value for f in once] == ["warn"]
    assert "5.3 / 140.2 GB/s at 512M/112M" in once[0].observed and len(once[0].evidence) == 2


def test_nccl_without_expectation_reports_but_does_not_judge() -> None:
    fs = findings([_nccl_node("n1", rec("nccl_tests/allreduce-2node-dgx-spark-gb10-version-header.txt"))],
                  "nccl.allreduce.busbw")
    assert [f.status.value for f in fs] == ["pass"] and "no expectation" in fs[0].msg


def test_nccl_header_only_output_is_an_error_with_the_reason() -> None:
    fs = findings([_nccl_node("n1", rec("nccl_tests/allreduce-8xa100-2021-no-hash-prefix-old-format.txt"))],
                  "nccl.allreduce.busbw")
    assert [f.status.value for f in fs] == ["error"] and fs[0].evidence


def test_nccl_not_run_is_a_skip_that_says_how() -> None:
    fs = findings([node("n1", {"uname": "6.1\n"})], "nccl.*")
    assert {f.status.value for f in fs} == {"skip"} and "--nccl" in fs[0].msg


def test_nccl_small_message_times_are_reported() -> None:
    fs = findings([_nccl_node("n1", rec("nccl_tests/allreduce-2node-dgx-spark-gb10-version-header.txt"))],
                  "nccl.allreduce.small_messages")
    assert fs[0].status.value == "pass" and "8K: 35.15 us" in fs[0].observed


def test_gpu_memory_in_use_idle_passes_and_threshold_applies() -> None:
    raw = node("n1", {"smi_table": rec("smi/a100-pcie-x2-default-table-555.txt")})
    assert [f.status.value for f in findings([raw], "gpu.memory.in_use")] == ["pass"]
    raw.thresholds = {"gpu.memory.in_use": {"max_used_mib": 0}}  # the recording shows 1 MiB used per GPU
    [f] = findings([raw], "gpu.memory.in_use")
    assert f.status.value == "warn" and f.observed == "GPU0 1 MiB, GPU1 1 MiB"


def test_clock_skew_beyond_the_round_trip_warns() -> None:
    ok = node("n1", {"uname": "6.1\n"})
    ok.started, ok.duration_s = 1000.0, 0.5
    ok.collector["started"] = 1000.3  # inside the round trip: no measurable skew
    late = node("n2", {"uname": "6.1\n"})
    late.started, late.duration_s = 1000.0, 0.5
    late.collector["started"] = 1010.5
    status = {f.node: (f.status.value, f.observed) for f in findings([ok, late], "network.clock_skew")}
    assert status["n1"][0] == "pass"
    assert status["n2"][0] == "warn" and status["n2"][1].startswith("+10.00 s")


def test_p2p_not_supported_warns_with_the_legend_meaning() -> None:
    fs = findings([node("n1", {"p2p_read": rec("misc/topo-p2p-rw-2x5090-gns.txt")})], "topology.p2p")
    assert [f.status.value for f in fs] == ["warn"] and "GPU not supported" in fs[0].observed
    ns = findings([node("n2", {"p2p_read": rec("topo/2x3090-indented-wrapped-legend-plus-p2p.txt")})], "topology.p2p")
    assert [f.status.value for f in ns] == ["warn"] and "NS (not supported)" in ns[0].observed


def test_acs_redirect_on_bridges_warns() -> None:
    fs = findings([node("n1", {"lspci_acs": rec("misc/lspci-acsctl-grep-tabs.txt")})], "pcie.acs")
    assert [f.status.value for f in fs] == ["warn"]
    assert fs[0].observed.startswith("ACS redirect on for 4 of")  # 4 lines carry SrcValid+ (grep -c) and "SrcValid+" in fs[0].evidence[0]


def test_ib_counters_from_sysfs_merge_with_ibstat() -> None:
    # synthetic sysfs values: the corpus has no recorded /sys/class/infiniband dump (perfquery there is all zero)
    raw = node("n1", {"ibstat": rec("ib/ibstat-cx7-ndr400-infiniband.txt")})
    raw.collector["probes"]["ib_sysfs"] = {"rc": 0, "error": None, "kind": "builtin", "stderr": "", "stdout":
        '{"mlx5_0": {"fw_ver": "28.43.2026", "ports": {"1": {"counters": {"link_downed": "3", "symbol_error": "0"}}}},'
        ' "mlx5_1": {"fw_ver": "28.43.2026", "ports": {"1": {"counters": {"link_downed": "0", "symbol_error": "2"}}}}}'}
    fs = {f.subject: f for f in findings([raw], "ib.port.errors")}
    assert fs["mlx5_0/1"].status.value == "warn" and fs["mlx5_0/1"].observed == "link_downed=3"
    assert "azure_ib_link_flapping" in fs["mlx5_0/1"].expected_source
    assert fs["mlx5_1/1"].status.value == "pass"


def test_hca_firmware_majority() -> None:
    good = rec("ib/ibstat-cx7-ndr400-infiniband.txt")
    odd = good.replace("28.43.2026", "28.39.1002")  # derived: one node on older firmware
    fs = findings([node("a", {"ibstat": good}), node("b", {"ibstat": good}), node("c", {"ibstat": odd})],
                  "versions.hca_firmware.*")
    assert {f.node: f.status.value for f in fs} == {"a": "pass", "b": "pass", "c": "fail"}


def test_gpu_pcie_width_judged_and_idle_generation_is_by_design() -> None:
    # a recorded --query-gpu header with the pcie columns does not exist in the corpus: this CSV uses the
    # real column names and units of nvidia-smi, with values chosen for the test (synthetic, not a recording)
    csv_text = ("index, name, pci.bus_id, pcie.link.gen.current, pcie.link.gen.max, pcie.link.width.current, pcie.link.width.max\n"
                "0, NVIDIA H100 80GB HBM3, 00000000:18:00.0, 1, 5, 16, 16\n"
                "1, NVIDIA H100 80GB HBM3, 00000000:2A:00.0, 5, 5, 8, 16\n")
    fs = {f.subject: f for f in findings([node("n1", {"smi_query": csv_text})], "pcie.gpu.link")}
    assert fs["GPU0"].status.value == "pass" and "idle is normal" in fs["GPU0"].observed
    assert fs["GPU1"].status.value == "fail" and fs["GPU1"].observed.startswith("x8 of x16")


def test_nic_pcie_link_from_sysfs() -> None:
    # synthetic sysfs values (no recorded sysfs dump in the corpus), in the kernel's own format
    raw = node("n1", {"ibstat": rec("ib/ibstat-cx7-ndr400-infiniband.txt")})
    raw.collector["probes"]["ib_sysfs"] = {"rc": 0, "error": None, "kind": "builtin", "stderr": "", "stdout":
        '{"mlx5_0": {"pcie": {"current_link_speed": "32.0 GT/s PCIe", "max_link_speed": "32.0 GT/s PCIe",'
        ' "current_link_width": "16", "max_link_width": "16"}, "ports": {}},'
        ' "mlx5_1": {"pcie": {"current_link_speed": "16.0 GT/s PCIe", "max_link_speed": "32.0 GT/s PCIe",'
        ' "current_link_width": "16", "max_link_width": "16"}, "ports": {}}}'}
    fs = {f.subject: f.status.value for f in findings([raw], "pcie.nic.link")}
    assert fs == {"mlx5_0": "pass", "mlx5_1": "fail"}


def _with_netifs(raw: NodeRaw, ifs: str) -> NodeRaw:
    # synthetic /sys/class/net listing (the collector's JSON form; no recorded sysfs dump in the corpus)
    raw.collector["probes"]["netifs"] = {"rc": 0, "error": None, "kind": "builtin", "stderr": "", "stdout": ifs}
    return raw


IFS_A = '{"docker0": {"mtu": "1500", "operstate": "up"}, "ib0": {"mtu": "4092", "operstate": "up"}, "lo": {"mtu": "65536", "operstate": "unknown"}}'
IFS_B = '{"docker0": {"mtu": "1500", "operstate": "up"}, "ibp26s0": {"mtu": "2044", "operstate": "up"}}'


def test_nccl_socket_ifname_must_select_an_up_interface() -> None:
    expect = {"nccl_socket_ifname": "ib", "nccl_ib_hca": "=mlx5_0,mlx5_1"}
    ok = _with_netifs(node("a", {"ibstat": rec("ib/ibstat-cx7-ndr400-infiniband.txt")}, expect=expect), IFS_A)
    fs = {f.subject: f for f in findings([ok], "network.nccl_interfaces")}
    assert fs["NCCL_SOCKET_IFNAME"].status.value == "pass" and fs["NCCL_IB_HCA"].status.value == "pass"
    renamed = _with_netifs(node("b", {"ibstat": rec("ib/ibstat-cx7-ndr400-infiniband.txt")},
                                expect={"nccl_socket_ifname": "=ib0"}), IFS_B)
    [f] = findings([renamed], "network.nccl_interfaces")
    assert f.status.value == "fail" and "nothing" in f.msg


def test_nccl_ib_hca_missing_device_fails() -> None:
    raw = _with_netifs(node("a", {"ibstat": rec("ib/ibstat-cx7-ndr400-infiniband.txt")},
                            expect={"nccl_ib_hca": "mlx5_0,mlx5_9"}), IFS_A)
    [f] = findings([raw], "network.nccl_interfaces")
    assert f.status.value == "fail" and "absent: mlx5_9" in f.observed


def test_mtu_mismatch_names_the_odd_node() -> None:
    expect = {"nccl_socket_ifname": "ib"}
    nodes = [_with_netifs(node(n, {"uname": "6\n"}, expect=expect), IFS_A) for n in ("a", "b")]
    nodes.append(_with_netifs(node("c", {"uname": "6\n"}, expect=expect), IFS_B))
    fs = {f.node: (f.status.value, f.observed) for f in findings(nodes, "network.mtu.consistent")}
    assert fs["a"] == ("pass", "4092") and fs["c"] == ("fail", "2044")


H100_TABLE = (Path(__file__).resolve().parents[3] / "preflight" / "sim" / "profiles" / "h100-healthy" / "smi-table.txt")


def _fm_node(name: str, state: str, rc: int, journal: str | None) -> NodeRaw:
    raw = node(name, {"smi_table": strip_corpus_header(H100_TABLE.read_text())[1], "fm_journal": journal})
    raw.collector["probes"]["fm_active"] = {"rc": rc, "stdout": state + "\n", "stderr": "", "error": None, "kind": "cmd"}
    return raw


def test_fabricmanager_failed_on_nvswitch_system_cites_the_journal() -> None:
    journal = rec("misc/fabricmanager-driver-version-mismatch-journal.txt")
    [bad] = findings([_fm_node("a", "failed", 3, journal)], "nvlink.fabricmanager")
    assert bad.status.value == "fail" and any("don't match" in e for e in bad.evidence)
    [good] = findings([_fm_node("b", "active", 0, None)], "nvlink.fabricmanager")
    assert good.status.value == "pass"


def test_fabricmanager_not_needed_without_nvswitch() -> None:
    raw = node("c", {"smi_table": rec("smi/a100-pcie-x2-default-table-555.txt")})
    raw.collector["probes"]["fm_active"] = {"rc": 3, "stdout": "inactive\n", "stderr": "", "error": None, "kind": "cmd"}
    [f] = findings([raw], "nvlink.fabricmanager")
    assert f.status.value == "skip"


def test_peer_names_resolve_and_agree() -> None:
    # the collector's JSON form of getaddrinfo answers (synthetic names and addresses)
    def with_resolve(name: str, doc: str) -> NodeRaw:
        raw = node(name, {"uname": "6\n"})
        raw.collector["probes"]["resolve"] = {"rc": 0, "stdout": doc, "stderr": "", "error": None, "kind": "builtin"}
        return raw

    good = '{"gpu-01": ["10.0.0.1"], "gpu-02": ["10.0.0.2"]}'
    stale = '{"gpu-01": ["10.0.0.1"], "gpu-02": ["10.0.9.9"]}'
    broken = '{"gpu-01": {"error": "[Errno -2] Name or service not known"}, "gpu-02": ["10.0.0.2"]}'
    fs = {f.node: f for f in findings([with_resolve("a", good), with_resolve("b", good), with_resolve("c", stale),
                                       with_resolve("d", broken)], "network.resolve")}
    assert fs["a"].status.value == "pass"
    assert fs["c"].status.value == "fail" and "gpu-02 -> 10.0.9.9" in fs["c"].observed
    assert fs["d"].status.value == "fail" and "Name or service not known" in fs["d"].observed


def test_collector_resolves_peers_locally() -> None:
    import subprocess

    from preflight.collect.script import build_script, decode_output, select_probes

    script = build_script([p for p in select_probes() if p.id == "resolve"], peers=("localhost", "no-such-host.invalid"))
    proc = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=60)
    _, _, doc = decode_output(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    import json

    answers = json.loads(doc["probes"]["resolve"]["stdout"])
    assert isinstance(answers["localhost"], list) and "error" in answers["no-such-host.invalid"]


RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"


def test_nvlink_error_counters() -> None:
    text = strip_corpus_header((RECORDED / "nvlink-e-h100-ml-engineering.txt").read_text())[1]
    [ok] = findings([node("n1", {"nvlink_errors": text})], "nvlink.errors")
    assert ok.status.value == "pass" and ok.observed == "3 links, no errors"  # links 0, 1, 17 (2-16 elided at source)
    crc = text.replace("Link 17: CRC Errors: 0", "Link 17: CRC Errors: 42")  # derived: one link with CRC errors
    [bad] = findings([node("n2", {"nvlink_errors": crc})], "nvlink.errors")
    assert bad.status.value == "warn" and bad.observed == "Link 17: CRC Errors: 42"


def test_fabric_state_insufficient_resources_fails() -> None:
    smi_q = (Path(__file__).resolve().parents[3] / "preflight" / "sim" / "profiles" / "h100-healthy" / "smi-q.txt").read_text()
    body = strip_corpus_header(smi_q)[1]
    fabric = rec("misc/fabric-completed-insufficient-resources-zero-uuid.txt")  # a recorded Fabric block
    start = body.index("    Fabric\n")
    end = body.index("    Processes")
    derived = body[:start] + "".join("    " + l + "\n" for l in fabric.strip("\n").split("\n")) + body[end:]
    table = strip_corpus_header(H100_TABLE.read_text())[1]
    fs = {f.subject: f for f in findings([node("n1", {"smi_table": table, "smi_q": derived})], "nvlink.fabric_state")}
    assert fs["GPU0"].status.value == "fail" and fs["GPU0"].observed == "Completed / Insufficient Resources"


def _meminfo(total_kib: int, pages: int, free: int, size_kib: int = 2048) -> str:
    return (f"MemTotal:       {total_kib} kB\nMemFree:        {total_kib // 2} kB\n"
            f"HugePages_Total:   {pages}\nHugePages_Free:    {free}\nHugePages_Rsvd:        0\n"
            f"HugePages_Surp:        0\nHugepagesize:       {size_kib} kB\n")


def test_hugepages_none_passes_half_of_ram_warns() -> None:
    gib = 1024 * 1024
    fs = findings([node("n1", {"meminfo": _meminfo(2048 * gib, 0, 0)}),
                   node("n2", {"meminfo": _meminfo(2048 * gib, 1200, 1200, 1024 * 1024)})], "memory.hugepages")
    by = {f.node: f for f in fs}
    assert by["n1"].status.value == "pass"
    assert by["n2"].status.value == "warn" and "1200 of" not in by["n2"].msg and by["n2"].observed.startswith("1200 x 1024 MiB = 1200.0 GiB")
    assert "HugePages_Total: 1200" in by["n2"].evidence


def test_hugepages_below_the_inventory_minimum_fails() -> None:
    raw = node("n1", {"meminfo": _meminfo(512 * 1024 * 1024, 512, 512)},  # 1 GiB of 2 MiB pages
               expect={"hugepages_gib_min": 4}, expect_sources={"hugepages_gib_min": "inventory:test.yaml defaults"})
    f = findings([raw], "memory.hugepages")[0]
    assert f.status.value == "fail" and "4" in f.expected and "inventory" in (f.expected_source or "")


def test_hugepages_unknown_without_meminfo() -> None:
    fs = findings([node("n1", {"meminfo": None, "memlock": '{"unlimited_soft": true}'})], "memory.hugepages")
    assert [f.status.value for f in fs] == ["error"]


def test_shm_absent_fails_and_small_shm_fails() -> None:
    raw = node("n1", {})
    raw.collector["probes"]["shm"] = {"rc": None, "stdout": "", "stderr": "", "kind": "builtin",
                                      "error": "error: [Errno 2] No such file or directory: '/dev/shm'"}
    small = node("n2", {"shm": '{"size_bytes": 67108864, "free_bytes": 67108864}'})  # Docker's 64 MB default
    fs = {f.node: f for f in findings([raw, small], "memory.shm")}
    assert fs["n1"].status.value == "fail" and fs["n1"].observed == "no /dev/shm"
    assert fs["n2"].status.value == "fail" and fs["n2"].observed == "0.06 GiB"
