"""Sockets as NCCL's inter-node transport: legacy 2.3/2.4 ring lines, and the libibverbs -> NET/Socket fallback."""

from __future__ import annotations

from pathlib import Path

from hang_corpus import CORPUS, body

from preflight.hang.nccl_log import NcclLog, parse_nccl_log
from preflight.hang.verdict import analyze

LEGACY = "nccl_logs/nccl-2.4.8-16rank-2node-legacy-ring-net-socket-no-busid.txt"
FALLBACK = "nccl_logs/nccl-2.4.8-2node-ibverbs-missing-socket-legacy-ring.txt"
INFO_FORM = "nccl_logs/nccl-h100-k8s-ibverbs-missing-info-socket-eth0.txt"


def parse(rel: str, text: str | None = None) -> NcclLog:
    r = parse_nccl_log(body(rel) if text is None else text, rel)
    assert isinstance(r, NcclLog), r
    return r


def test_legacy_ring_lines_without_busid_give_rank_and_socket_transport() -> None:
    log = parse(LEGACY)
    r15, r7 = log.by_rank()[15], log.by_rank()[7]
    assert (r15.host, r15.cuda_dev, r15.transport) == ("ip-172-31-13-129", 7, "Socket")
    assert (r7.host, r7.cuda_dev, r7.transport) == ("ip-172-31-0-112", 7, "Socket")
    assert r15.net_evidence is not None and "Ring 00 : 15 -> 0 [send] via NET/Socket/0" in r15.net_evidence.text
    # intra-node hops keep their meaning: P2P is not a network
    assert log.by_rank()[13].transport is None


def test_legacy_receive_lines_name_the_local_rank() -> None:
    log = parse(FALLBACK)
    assert {r.host: r.rank for r in log.ranks} == {"node01": 0, "node02": 1}  # also from 'comm ... rank N'
    text = "\n".join(line for line in body(FALLBACK).split("\n") if "comm 0x" not in line)
    assert {r.host: r.rank for r in parse(FALLBACK, text).ranks} == {"node01": 0, "node02": 1}  # from the Ring lines


def test_analyze_names_the_socket_transport_of_a_legacy_log() -> None:
    v = analyze([CORPUS / LEGACY])
    net = [c for c in v.causes if c.kind == "network"]
    assert len(net) == 1 and "NET/Socket (TCP) on all 2 node(s)" in net[0].title
    assert any(e.endswith("ip-172-31-13-129:8544:8601 [7] NCCL INFO Ring 00 : 15 -> 0 [send] via NET/Socket/0")
               and e.startswith(Path(LEGACY).name + ":17:") for e in net[0].evidence)


def test_ibverbs_failure_then_socket_list_is_a_fallback_not_a_loose_warning() -> None:
    log = parse(FALLBACK)
    for r in log.ranks:
        assert r.socket_fallback and r.transport == "Socket"
        assert r.ibverbs_failure is not None and "Failed to open libibverbs.so[.1]" in r.ibverbs_failure.text
        assert r.socket_evidence is not None and "NET/Socket : Using [0]" in r.socket_evidence.text
        assert not r.warnings  # the WARN line is the fallback's evidence now
    assert parse(INFO_FORM).ranks[0].socket_fallback  # newer NCCL prints the failure as INFO


def test_verdict_reports_the_fallback_per_node_with_file_and_line() -> None:
    v = analyze([CORPUS / FALLBACK])
    fb = {c.node: c for c in v.causes if c.kind == "socket_fallback"}
    assert set(fb) == {"node01", "node02"}
    c = fb["node01"]
    assert c.title == ("rank 0 on node01: NCCL could not load libibverbs and fell back to sockets over TCP on eno1: "
                       "no RDMA")
    name = Path(FALLBACK).name
    assert c.evidence[:3] == (
        f"{name}:9: node01:2771:2771 [0] misc/ibvwrap.cc:63 NCCL WARN Failed to open libibverbs.so[.1]",
        f"{name}:10: node01:2771:2771 [0] NCCL INFO NET/Socket : Using [0]eno1:192.168.50.11<0>",
        f"{name}:15: node01:2771:2801 [0] NCCL INFO Ring 00 : 1 -> 0 [receive] via NET/Socket/0")
    assert "libibverbs" in c.next_command
    assert not [x for x in v.causes if x.kind == "nccl_error"]  # not also shown as a bare warning
    assert not [x for x in v.causes if x.kind == "network"]  # the fallback says it; no second 'all on sockets'


def test_fallback_over_ipoib_says_ipoib(tmp_path: Path) -> None:
    # derived in the test from the recording: the socket interface renamed eno1 -> ib0 (IPoIB), nothing else
    text = (CORPUS / FALLBACK).read_text().replace("[0]eno1:", "[0]ib0:")
    (tmp_path / "ipoib.txt").write_text(text)
    c = next(c for c in analyze([tmp_path / "ipoib.txt"]).causes if c.node == "node01")
    assert "fell back to sockets over IPoIB (ib0): no RDMA" in c.title


def test_fallback_node_among_ib_nodes_ranks_higher() -> None:
    # two unrelated recordings (NCCL 2.4.8 and 2.4.7): analyze would keep them apart as two jobs, so they are
    # judged as one here on purpose (a fallback node beside IB nodes)
    v = analyze([CORPUS / FALLBACK, CORPUS / "nccl_logs/nccl-2.4.7-socket-and-ib-horovod.txt"], split_jobs=False)
    c = next(c for c in v.causes if c.kind == "socket_fallback")
    assert c.score > 0.8 and "other node(s) use NET/IB" in c.title


def test_socket_list_with_ib_transport_is_no_fallback() -> None:
    # constructed for this test (not a recording): the verbs library failed but a plugin's IB network was chosen
    text = ("h1:1:1 [0] NCCL INFO Failed to open libibverbs.so[.1]\n"
            "h1:1:1 [0] NCCL INFO NET/Socket : Using [0]eth0:10.0.0.1<0>\n"
            "h1:1:1 [0] NCCL INFO Using network IB\n")
    (r,) = parse_nccl_log(text).ranks  # type: ignore[union-attr]
    assert r.transport == "IB" and not r.socket_fallback
