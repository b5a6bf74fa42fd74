"""PyTorch watchdog timeouts from the real corpus: seqnums, ranks, op mismatches."""

from __future__ import annotations

from hang_corpus import body

from preflight.hang.watchdog import WatchdogLog, parse_watchdog
from preflight.parse.common import Unparseable


def parse(rel: str) -> WatchdogLog:
    r = parse_watchdog(body(rel), rel)
    assert isinstance(r, WatchdogLog), r
    return r


def test_line_numbered_allreduce_seqnum_and_last_completed() -> None:
    w = parse("nccl_logs/pytorch-watchdog-timeout-allreduce-line-numbered.txt")
    timeouts = [r for r in w.records if r.kind == "timeout"]
    assert [(r.rank, r.seq, r.op, r.numel_in, r.timeout_ms) for r in timeouts] == [
        (0, 1580, "ALLREDUCE", 466119168, 600000), (4, 1580, "ALLREDUCE", 466119168, 600000)]
    at = [r for r in w.records if r.kind == "at_work"]
    assert [(r.rank, r.pg, r.seq, r.last_enqueued, r.last_completed) for r in at] == [(0, "1", 1580, 1582, 1579),
                                                                                      (3, "1", 1580, 1582, 1579)]
    assert timeouts[0].time == "0321 02:07:08"
    assert w.max_seq() == 1580 and w.mismatches() == ()


def test_legacy_format_without_numel() -> None:
    w = parse("nccl_logs/pytorch-watchdog-timeout-legacy-no-numel-1800s.txt")
    assert sorted(p.rank for p in w.progress()) == [1, 2, 3, 6, 7]
    assert {(p.seq, p.op) for p in w.progress()} == {(469508, "ALLREDUCE")}
    assert {r.timeout_ms for r in w.records} == {1800000}
    assert w.records[0].ran_for_ms == 1802212 and w.records[0].numel_in is None


def test_optype_mismatch_at_same_seqnum() -> None:
    w = parse("nccl_logs/pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt")
    (m,) = w.mismatches()
    assert m.seq == 80078 and m.ops == {"BROADCAST": (7,), "ALLREDUCE": (3,)}
    assert len(m.evidence) == 2 and m.evidence[0].line == 1


def test_progress_bar_glued_record_and_rank_behind() -> None:
    w = parse("nccl_logs/pytorch-watchdog-progressbar-glued-seqnum-desync.txt")
    assert w.records[0].seq == 96120 and w.records[0].rank == 0  # glued to the tqdm line
    prog = {p.rank: p.seq for p in w.progress()}
    assert prog == {0: 96125, 7: 64088}


def test_size_mismatch_same_op() -> None:
    text = "\n".join(
        f"[rank{r}]:[E816 01:45:40.1 ProcessGroupNCCL.cpp:607] [Rank {r}] Watchdog caught collective operation timeout: "
        f"WorkNCCL(SeqNum=5, OpType=ALLREDUCE, NumelIn={n}, NumelOut={n}, Timeout(ms)=600000) ran for 600026 milliseconds"
        for r, n in ((0, 10), (1, 10), (2, 12)))
    (m,) = parse_watchdog(text).mismatches()
    assert m.ops == {"ALLREDUCE NumelIn=10": (0, 1), "ALLREDUCE NumelIn=12": (2,)}


def test_no_watchdog_is_unparseable() -> None:
    assert isinstance(parse_watchdog("the watchdog barked"), Unparseable)
    assert isinstance(parse_watchdog("gpu:1:1 [0] NCCL INFO x"), Unparseable)
