"""nccl-multinode tells the truth about the fabric: GPUDirect RDMA or not, from real NCCL INFO logs, and a
bandwidth expectation derived from the nodes' own IB ports when none is given."""

from __future__ import annotations

from pathlib import Path

from preflight.multinode import NIC_EFFICIENCY, RunOutcome, expected_busbw, judge_run, net_seen
from preflight.parse.common import strip_corpus_header
from preflight.parse.nccl_tests import parse_nccl_tests

LOGS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "nccl_logs"
TESTS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "nccl_tests"


def _log(name: str) -> str:
    return strip_corpus_header((LOGS / name).read_text())[1]


def test_gdrdma_is_read_from_the_channel_lines() -> None:
    gdr = net_seen(_log("nccl-aks-p2p-cumem-read-net-ib-gdrdma.txt"))
    assert gdr.transports == ("IB",) and gdr.gdrdma is True and "GDRDMA" in gdr.gdr_evidence[0]
    plain = net_seen(_log("nccl-single-process-p2p-direct-pointer-net-ib-no-gdr.txt"))
    assert "IB" in plain.transports and plain.gdrdma is False and "via NET/IB/3" in plain.gdr_evidence[0]


def _outcome(log: str, hosts: int = 2) -> RunOutcome:
    table = next(p for p in sorted(TESTS.glob("*.txt")) if "8B-8G" in p.name)
    result = parse_nccl_tests(strip_corpus_header(table.read_text())[1])
    assert not hasattr(result, "reason"), result
    return RunOutcome(tuple(f"n{i}" for i in range(hosts)), "mpirun ...", 0, result, net=net_seen(_log(log)))  # type: ignore[arg-type]


def test_ib_without_gdrdma_warns_and_says_why() -> None:
    v = judge_run(_outcome("nccl-single-process-p2p-direct-pointer-net-ib-no-gdr.txt"), None)
    assert v.status == "warn" and any("without GPUDirect RDMA" in r for r in v.reasons)
    assert any("via NET/IB/3" in e for e in v.evidence)


def test_the_derived_expectation_judges_an_ib_run_and_names_its_source() -> None:
    out = _outcome("nccl-aks-p2p-cumem-read-net-ib-gdrdma.txt")
    busbw = out.busbw
    assert busbw is not None
    derived = expected_busbw({"n0": [400.0] * 8, "n1": [400.0] * 8}, 8)
    assert derived is not None and derived[0] == 400 * NIC_EFFICIENCY and derived[1].startswith("estimated: 80% (ours)")
    v = judge_run(out, None, None, derived)
    assert (v.status == "fail") == (busbw < derived[0])
    assert any("estimated: 80% (ours)" in r for r in v.reasons), v.reasons
    # a given threshold wins over the estimate
    given = judge_run(out, 1.0, None, derived)
    assert not any("estimated" in r for r in given.reasons)


def test_no_expectation_without_an_active_port_on_every_node() -> None:
    assert expected_busbw({"n0": [400.0], "n1": []}, 8) is None
    # one rank per node uses one NIC's worth: the estimate scales with min(ranks, ports)
    assert expected_busbw({"n0": [400.0, 400.0], "n1": [400.0, 400.0]}, 1) == (40.0, expected_busbw(
        {"n0": [400.0, 400.0], "n1": [400.0, 400.0]}, 1)[1])  # type: ignore[index]


def test_a_run_with_active_tests_says_up_front_how_long_it_may_take() -> None:
    from preflight.cli.progress import level_line
    from preflight.session.request import RunArgs, live_request

    line = level_line(live_request(RunArgs(host_list="local", level="standard")))
    assert line is not None and line.startswith("level standard: dcgm_r2, nvbandwidth_h2d")
    assert "up to 300 s of tests per node" in line
    assert level_line(live_request(RunArgs(host_list="local"))) is None  # quick: nothing long to announce
    nccl = level_line(live_request(RunArgs(host_list="local", nccl=True)))
    assert nccl is not None and "up to 180 s" in nccl  # quick's 60 s + the two all-reduce runs' 2 x 60 s
