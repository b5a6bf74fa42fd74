"""NCCL_DEBUG=INFO parsing on real corpus logs: concrete facts per file."""

from __future__ import annotations

from hang_corpus import body

from preflight.hang.nccl_log import NcclLog, bus_id_from_nccl, parse_nccl_log
from preflight.parse.common import Unparseable


def parse(rel: str) -> NcclLog:
    r = parse_nccl_log(body(rel), rel)
    assert isinstance(r, NcclLog), r
    return r


def test_32rank_legacy_init_complete_ranks_and_hosts() -> None:
    log = parse("nccl_logs/nccl-init-complete-32ranks-legacy.txt")
    done = {r.rank for r in log.ranks if r.init_complete}
    assert done == {4, 5, 6, 8, 9, 15, 17, 20, 22, 24, 25, 29}
    assert {r.nranks for r in log.ranks} == {32}
    assert log.by_rank()[15].host == "server2" and log.by_rank()[15].pid == 23920 and log.by_rank()[15].cuda_dev == 7
    assert set(log.hosts) == {"server1", "server2", "server3", "server4"}


def test_collnet_init_complete_line_gives_rank_bus_and_comm_id() -> None:
    log = parse("nccl_logs/init-2node-collnet-tuner-plugin-ncclCommInitRank.txt")
    r4 = log.by_rank()[4]
    assert (r4.host, r4.pid, r4.cuda_dev, r4.nranks, r4.init_complete) == ("kolyoz2", 25146, 0, 8, True)
    assert r4.bus_id == "0000:42:00.0"
    assert r4.comm_ids == ("0x996ee6f117cb8e1e",)
    # the other processes printed lines but no rank and no Init COMPLETE in this excerpt
    assert sum(1 for r in log.ranks if not r.init_complete) == 4


def test_very_old_2_3_7_version_socket_transport_and_ranks() -> None:
    log = parse("nccl_logs/nccl-2.3.7-very-old-init-format.txt")
    assert log.versions == ("2.3.7",)
    r0 = log.by_rank()[0]
    assert r0.version == "2.3.7"  # bare version line printed by the process of the line before it
    assert r0.transport == "Socket"  # 'Using internal Network Socket': IB init failed
    assert r0.interfaces == ("ib0",)
    assert {r.rank: r.nranks for r in log.ranks} == {0: 8, 1: 8, 2: 8}


def test_2_4_7_ib_hca_and_oob_and_bootstrap_socket_is_not_a_transport() -> None:
    log = parse("nccl_logs/nccl-2.4.7-socket-and-ib-horovod.txt")
    assert log.versions == ("2.4.7",)
    master0 = next(r for r in log.ranks if r.host == "master_node" and r.cuda_dev == 0)
    assert master0.transport == "IB" and master0.net_devices == ("mlx5_0:1/IB",) and master0.interfaces == ("ib0",)
    # 'NET/Socket : Using [0]ib0' alone is the 2.4 bootstrap socket: transport stays unknown, interface known
    sec = [r for r in log.ranks if r.host == "secondary_node"]
    assert len(sec) == 3 and all(r.transport is None and r.interfaces == ("ib0",) for r in sec)


def test_rank_prefixed_2_5_lines_mixed_ib_roce_and_bootstrap() -> None:
    log = parse("nccl_logs/nccl-2.5-rank-prefixed-ib-roce-mixed-trees-pipe.txt")
    (r,) = log.ranks
    assert r.host == "crow-ib-new-nccl-256-info-19" and r.pid == 5330 and r.cuda_dev == 3
    assert r.rank == 155  # from 'Ring 00 : 155[3d000] -> ...' (no comm line in the excerpt)
    assert r.net_devices == ("mlx5_1:1/IB", "mlx5_3:1/IB", "mlx5_0:1/IB", "mlx5_2:1/RoCE", "mlx5_4:1/IB")
    assert r.interfaces == ("eth0",) and r.transport == "IB"


def test_pdsh_double_prefix_is_stripped() -> None:
    log = parse("nccl_logs/nccl-pdsh-host-prefix-p2p-ipc-read-trees.txt")
    assert set(log.hosts) == {"rdma-gpu-train-worker-0"}
    assert {r.rank for r in log.ranks} == {0, 2, 3, 4, 5, 6}


def test_dgxa100_socket_channels_and_system_error_unwind() -> None:
    log = parse("nccl_logs/err-dgxa100-net-socket-16-channels-then-fail.txt")
    (r,) = log.ranks
    assert (r.host, r.rank, r.transport, r.retcodes) == ("dgxa100", 0, "Socket", (2,))


def test_warnings_grouped_by_process_with_retcodes() -> None:
    log = parse("nccl_logs/err-proxy-connect-failed-connection-closed-shm.txt")
    r0 = next(r for r in log.ranks if r.cuda_dev == 0)
    assert len(r0.warnings) == 4
    assert "socketStartConnect: Connect to 10.0.0.2<45763> failed" in r0.warnings[0].text
    assert r0.warnings[0].line == 1
    assert r0.retcodes == (2, 6, 3)
    ib = parse("nccl_logs/err-ib-plugin-status12-vendor129-recv-remoteGids-nospace.txt")
    (w,) = ib.ranks
    assert (w.host, w.cuda_dev, len(w.warnings), w.retcodes) == ("kp-ddp-worker-0", 4, 3, (6,))


def test_unprefixed_errors_are_kept_unattributed_with_version() -> None:
    log = parse("nccl_logs/err-srun-prefixed-flattened-distbackenderror-2.18.5.txt")
    assert log.ranks == () and log.versions == ("2.18.5",) and len(log.unattributed) == 1
    warn = parse("nccl_logs/nccl-2.4.8-mismatched-collective-warn.txt")
    assert "Mismatched collective detected" in warn.unattributed[0].text


def test_single_process_eight_devices_are_separate_ranks() -> None:
    log = parse("nccl_logs/nccl-single-process-p2p-direct-pointer-net-ib-no-gdr.txt")
    assert {r.pid for r in log.ranks} == {2017630}
    assert {r.cuda_dev: r.rank for r in log.ranks} == {4: 4, 5: 5, 6: 6, 7: 7}
    assert next(r for r in log.ranks if r.cuda_dev == 5).transport == "IB"


def test_ocr_garbled_file_still_finds_init_complete() -> None:
    log = parse("nccl_logs/init-complete-ocr-garbled-ncc1-typos.txt")
    assert {r.rank for r in log.ranks if r.init_complete} == {12}


def test_newer_spellings_and_launcher_prefixes() -> None:
    text = "\n".join([
        "[1,3]<stdout>:gpu-a:11:11 [3] NCCL INFO Bootstrap: Using ens3np0:10.99.91.49<0>",
        "[1,3]<stdout>:gpu-a:11:11 [3] NCCL INFO NCCL version 2.29.3+cuda13.1",
        "3: gpu-a:11:20 [3] NCCL INFO NET/IB : No device found.",
        "3: gpu-a:11:20 [3] NCCL INFO Using network Socket",
        "3: gpu-a:11:20 [3] NCCL INFO comm 0x43803750 rank 3 nRanks 4 nNodes 1 localRanks 4 localRank 3 MNNVL 0",
    ])
    (r,) = parse_nccl_log(text).ranks
    assert (r.host, r.rank, r.nranks, r.version, r.transport, r.interfaces) == ("gpu-a", 3, 4, "2.29.3", "Socket", ("ens3np0",))


def test_bus_id_conversion() -> None:
    assert bus_id_from_nccl("97000") == "0000:97:00.0"
    assert bus_id_from_nccl("1b000") == "0000:1b:00.0"
    assert bus_id_from_nccl("zz") is None


def test_not_nccl_is_unparseable() -> None:
    assert isinstance(parse_nccl_log("hello\nworld"), Unparseable)
    assert isinstance(parse_nccl_log(""), Unparseable)
    assert isinstance(parse_nccl_log(None), Unparseable)  # type: ignore[arg-type]
