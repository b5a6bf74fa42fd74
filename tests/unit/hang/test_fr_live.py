"""`preflight hang --dump-fr` on the controller: the dumps the nodes sent, checked, parsed and compared across
ranks (hang/fr_live.py through hang/gather.judge_hang). The dumps are the fr-never-joined profile's, derived from
the PyTorch tutorial's recorded dump (rank 2 never entered all_reduce #3), pickled as the stand-in rank does."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.collect.probes import FR_PROBE
from preflight.hang.flight_recorder import parse_dump_bytes, safe_unpickle
from preflight.hang.gather import judge_hang
from preflight.parse.common import Unparseable
from preflight.sim.fr_job import FR_PROFILE, recorded_dump
from preflight.sim.profile import PROFILES


def _collected(rank: int, data: bytes | None = None, pid: int = 100) -> dict:
    data = recorded_dump(PROFILES / FR_PROFILE / f"fr-rank{rank}.txt") if data is None else data
    return {"pid": pid + rank, "rank": rank, "uid": 1000, "outcome": "collected", "pipe": f"/tmp/fr/pipe_{rank}.pipe",
            "dump_path": f"/tmp/fr/nccl_trace_rank_{rank}", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
            "data_b64": base64.b64encode(data).decode()}


def _raw(name: str, ranks: list[dict], fr: dict | None = None) -> NodeRaw:
    procs = [{"pid": r["pid"], "cmdline": "python trainFR.py", "state": "S (sleeping)",
              "env": {"RANK": str(r["rank"]), "LOCAL_RANK": str(r["rank"] % 2), "WORLD_SIZE": "4"}} for r in ranks]
    probes = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None, "kind": "builtin"},
              FR_PROBE: fr or {"rc": 0, "stdout": json.dumps({"wait_s": 15, "ranks": ranks}), "stderr": "", "error": None,
                               "kind": "builtin"}}
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})


def _fleet(r2: dict | None = None) -> Bundle:
    return Bundle(nodes=[_raw("fr-01", [_collected(0), _collected(1)]),
                         _raw("fr-02", [r2 or _collected(2), _collected(3)])])


def test_the_never_joined_rank_is_first_with_the_dumps_as_evidence() -> None:
    res = judge_hang(_fleet())
    top = res.verdict.causes[0]
    assert top.kind == "live_fr_missing" and top.rank == 2 and top.node == "fr-02" and top.ranks == (2,)
    assert "never entered nccl:all_reduce #3" in top.title and "ranks 0, 1, 3" in top.title
    assert any(e.startswith("fr-02:/tmp/fr/nccl_trace_rank_2: rank 2 last entered nccl:all_reduce #2 (completed)")
               for e in top.evidence), top.evidence
    assert any("fr-01:/tmp/fr/nccl_trace_rank_0: rank 0 entered nccl:all_reduce #3 (started)" in e for e in top.evidence)
    assert "--pid 102" in top.next_command
    doc = res.to_dict()
    assert [(o["rank"], o["outcome"], o["parsed"], o["last_entered"]) for o in doc["flight_recorder"]] == \
        [(0, "collected", True, 3), (1, "collected", True, 3), (2, "collected", True, 2), (3, "collected", True, 3)]
    assert "data_b64" not in json.dumps(doc)  # outcomes, not the bytes


def test_agreeing_dumps_name_no_cause() -> None:
    same = recorded_dump(PROFILES / FR_PROFILE / "fr-rank0.txt")
    res = judge_hang(Bundle(nodes=[_raw("fr-01", [_collected(r, same) for r in range(4)])]))
    assert not [c for c in res.verdict.causes if c.kind.startswith("live_fr")]
    assert "flight recorder: 4 rank(s) found, 4 dump(s) collected and read" in res.notes


def test_a_rank_whose_dump_was_not_had_is_a_note_and_never_a_culprit() -> None:
    absent = {"pid": 102, "rank": 2, "outcome": "no_reader", "note": "/tmp/fr/pipe_2.pipe: no process has it open"}
    res = judge_hang(_fleet(absent))
    assert not [c for c in res.verdict.causes if c.kind.startswith("live_fr")]  # 0, 1, 3 agree: no evidence on 2
    assert "flight recorder: no_reader: rank 2 on fr-02; rank 2 (pid 102): /tmp/fr/pipe_2.pipe: no process has it open" \
        in res.notes


def test_a_dump_altered_on_the_way_is_refused_not_misread() -> None:
    rec = _collected(2)
    rec["sha256"] = "0" * 64
    res = judge_hang(_fleet(rec))
    out = {o["rank"]: o for o in res.to_dict()["flight_recorder"]}
    assert out[2]["parsed"] is False and "sha256" in out[2]["refused"]
    assert not [c for c in res.verdict.causes if c.kind.startswith("live_fr")]


class _Evil:
    def __reduce__(self):  # what a hostile pickle does: call a global on load
        return (os.system, ("echo pwned > /tmp/preflight-fr-pwned",))


def test_a_hostile_dump_with_a_global_is_refused() -> None:
    hostile = pickle.dumps({"version": "2.5", "entries": [], "x": _Evil()}, protocol=2)
    assert isinstance(safe_unpickle(hostile), Unparseable)
    got = parse_dump_bytes(hostile, "n:/tmp/fr/nccl_trace_rank_2")
    assert isinstance(got, Unparseable) and "refused global" in got.reason
    res = judge_hang(_fleet(_collected(2, hostile)))
    out = {o["rank"]: o for o in res.to_dict()["flight_recorder"]}
    assert out[2]["parsed"] is False and "refused global" in out[2]["refused"]
    assert not os.path.exists("/tmp/preflight-fr-pwned")


def test_a_json_dump_is_read_too() -> None:
    obj = pickle.loads(recorded_dump(PROFILES / FR_PROFILE / "fr-rank2.txt"))
    as_json = json.dumps(obj).encode()  # the process_group tuple becomes a list, as PyTorch's dump_json writes it
    res = judge_hang(_fleet(_collected(2, as_json)))
    assert res.verdict.causes[0].kind == "live_fr_missing" and res.verdict.causes[0].rank == 2
    empty = parse_dump_bytes(json.dumps({"version": "2.5", "pg_config": {}, "pg_status": {}}).encode(), "n:/x_1")
    assert not isinstance(empty, Unparseable) and empty.entries == () and empty.rank == 1


def test_a_node_that_could_not_run_the_trigger_says_why() -> None:
    notrun = {"rc": None, "stdout": "", "stderr": "", "error": "not run", "note": "the flight-recorder trigger needs python3",
              "kind": "builtin"}
    res = judge_hang(Bundle(nodes=[_raw("fr-01", [_collected(0)], fr=notrun)]))
    assert any(n.startswith("flight recorder on fr-01: not run: the flight-recorder trigger needs python3") for n in res.notes)


def test_without_dump_fr_nothing_is_said() -> None:
    raw = _raw("fr-01", [_collected(0)])
    del raw.collector["probes"][FR_PROBE]
    res = judge_hang(Bundle(nodes=[raw]))
    assert res.to_dict()["flight_recorder"] == [] and not [n for n in res.notes if "flight recorder" in n]


def test_a_fleet_of_ranks_without_the_pipe_is_one_note() -> None:
    unnamed = [{"pid": 100 + r, "rank": r, "outcome": "no_pipe_named", "note": "TORCH_NCCL_DEBUG_INFO_PIPE_FILE is not in "
                "the rank's environment"} for r in range(64)]
    res = judge_hang(Bundle(nodes=[_raw(f"n{i:02d}", unnamed[i * 8:(i + 1) * 8]) for i in range(8)]))
    fr = [n for n in res.notes if n.startswith("flight recorder")]
    assert fr == ["flight recorder: 64 rank(s) found, 0 dump(s) collected and read",
                  "flight recorder: no_pipe_named: ranks 0-63 on n00, n01, n02, n03 and 4 more node(s); rank 0 (pid 100): "
                  "TORCH_NCCL_DEBUG_INFO_PIPE_FILE is not in the rank's environment"]
