"""Flight-recorder dumps: the corpus text form, torchfrtrace output, restricted pickles, cross-rank mismatch."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

from hang_corpus import body

from preflight.hang.flight_recorder import (
    FrDump,
    FrTrace,
    first_mismatch,
    load_dump,
    parse_dump_text,
    parse_frtrace,
    safe_unpickle,
)
from preflight.hang.verdict import analyze
from preflight.parse.common import Unparseable


def test_unpickled_text_dump_from_the_tutorial() -> None:
    d = parse_dump_text(body("flight_recorder/fr-unpickled-dump-v2.5-example.txt"))
    assert isinstance(d, FrDump)
    assert d.version == "2.5" and d.pg_ranks == {"0": (0, 1)}
    assert d.pg_status["0"]["last_completed_collective"] == 2
    (e,) = d.entries  # the '...' elision is dropped
    assert (e.collective_seq_id, e.profiling_name, e.state, e.input_sizes, e.pg_desc) == (
        1, "nccl:all_reduce", "completed", "[[3, 4]]", "default_pg")
    assert d.last_entered == e and d.last_completed == e


def test_torchfrtrace_missing_rank() -> None:
    t = parse_frtrace(body("flight_recorder/torchfrtrace-not-all-ranks-joining-2rank.txt"), "fr.txt")
    assert isinstance(t, FrTrace)
    (f,) = t.findings
    assert (f.kind, f.seq, f.pg, f.op, f.ranks, f.state) == ("missing", 5, "0", "nccl:all_reduce", (1,), "scheduled")
    assert str(f.evidence[0]) == "fr.txt:2: Not all ranks joining collective 5 at entry 4"


def test_torchfrtrace_culprit_errors_block() -> None:
    text = ("Collective 12 at entry 11 errors\ngroup info: 0:default_pg\ncollective: nccl:all_gather\n"
            "error msg: Culprit rank 97; Error type: SIZE_OR_SYNTAX_MISMATCH, Expected input sizes: '[[8]]' does not match\n")
    (f,) = parse_frtrace(text).findings
    assert (f.kind, f.seq, f.ranks) == ("mismatch", 12, (97,)) and "SIZE_OR_SYNTAX_MISMATCH" in f.detail


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo owned > /dev/null",))


def test_restricted_unpickler_refuses_classes_and_callables(tmp_path: Path) -> None:
    r = safe_unpickle(pickle.dumps(_Evil()))
    assert isinstance(r, Unparseable) and "refused global" in r.reason
    p = tmp_path / "nccl_trace_rank_0"
    p.write_bytes(pickle.dumps(_Evil()))
    assert isinstance(load_dump(p), Unparseable)
    assert isinstance(safe_unpickle(b"\x80\x04garbage"), Unparseable)


def _entry(seq: int, op: str = "nccl:all_reduce", state: str = "completed", sizes=((3, 4),)) -> dict:
    return {"record_id": seq, "pg_id": 0, "process_group": ("0", "default_pg"), "collective_seq_id": seq,
            "p2p_seq_id": 0, "op_id": seq, "profiling_name": op, "time_created_ns": 1, "input_sizes": [list(s) for s in sizes],
            "input_dtypes": ["Float"], "output_sizes": [list(s) for s in sizes], "output_dtypes": ["Float"],
            "state": state, "time_discovered_started_ns": None, "time_discovered_completed_ns": 2, "retired": True,
            "timeout_ms": 600000, "is_p2p": False}


def _dump(rank: int, entries: list[dict]) -> dict:
    return {"version": "2.5", "pg_config": {"0": {"name": "0", "desc": "default_pg", "ranks": "[0, 1, 2, 3]"}},
            "pg_status": {"0": {"last_enqueued_collective": 5}}, "entries": entries}


def test_pickle_dumps_first_missing_rank_through_analyze(tmp_path: Path) -> None:
    for rank in range(4):
        n = 4 if rank == 2 else 6  # rank 2 never entered #5
        entries = [_entry(s, state="completed" if s < n else "started") for s in range(1, n + 1)]
        (tmp_path / f"nccl_trace_rank_{rank}").write_bytes(pickle.dumps(_dump(rank, entries)))
    dumps = [load_dump(tmp_path / f"nccl_trace_rank_{r}") for r in range(4)]
    assert all(isinstance(d, FrDump) for d in dumps)
    assert [d.rank for d in dumps] == [0, 1, 2, 3]
    assert (dumps[2].last_entered.collective_seq_id, dumps[0].last_completed.collective_seq_id) == (4, 5)
    f = first_mismatch(dumps)
    assert (f.kind, f.seq, f.ranks) == ("missing", 5, (2,))
    v = analyze([tmp_path])
    assert v.culprit.kind == "fr_missing" and v.culprit.rank == 2
    assert {r.rank: r.fr_last_entered for r in v.ranks} == {0: 6, 1: 6, 2: 4, 3: 6}


def test_op_and_size_mismatch_between_dumps() -> None:
    base = [_entry(1), _entry(2)]
    dumps = [parse_dump_text(repr(_dump(r, base + [_entry(3, "nccl:broadcast" if r == 3 else "nccl:all_reduce")])), f"trace_{r}")
             for r in range(4)]
    f = first_mismatch(dumps)
    assert (f.kind, f.seq, f.ranks) == ("mismatch", 3, (3,)) and "profiling_name" in f.detail
    dumps = [parse_dump_text(repr(_dump(r, base + [_entry(3, sizes=((5,),) if r == 1 else ((3, 4),))])), f"trace_{r}")
             for r in range(4)]
    f = first_mismatch(dumps)
    assert (f.seq, f.ranks) == (3, (1,)) and "input_sizes" in f.detail


def test_ring_buffer_not_starting_at_zero_is_not_a_missing_rank() -> None:
    a = parse_dump_text(repr(_dump(0, [_entry(s) for s in range(10, 14)])), "trace_0")
    b = parse_dump_text(repr(_dump(1, [_entry(s) for s in range(12, 14)])), "trace_1")
    assert first_mismatch([a, b]) is None


def test_not_a_dump() -> None:
    assert isinstance(parse_dump_text("{'entries': 3}"), Unparseable)
    assert isinstance(parse_dump_text("{'entries': [__import__('os')]}"), Unparseable)  # never evaluated
    assert isinstance(parse_frtrace("nothing here"), Unparseable)
