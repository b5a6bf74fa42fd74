"""The live hang judge as a pure function: gathered facts (as the collector sends them) in, causes out."""

from __future__ import annotations

import json
from pathlib import Path

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang, main_thread_stack
from preflight.parse.common import strip_corpus_header

PROFILES = Path(__file__).resolve().parents[3] / "preflight" / "sim" / "profiles"


def _raw(name: str, procs: list[dict], ib: dict | None = None, table: str = "") -> NodeRaw:
    probes = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None, "kind": "builtin"},
              "smi_table": {"rc": 0, "stdout": table, "stderr": "", "error": None, "kind": "cmd"}}
    if ib is not None:
        probes["ib_traffic"] = {"rc": 0, "stdout": json.dumps(ib), "stderr": "", "error": None, "kind": "builtin"}
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})


def _proc(pid: int, rank: int, state: str = "S (sleeping)", world: int = 4) -> dict:
    return {"pid": pid, "cmdline": "python train.py", "state": state,
            "env": {"RANK": str(rank), "LOCAL_RANK": str(rank % 2), "WORLD_SIZE": str(world)}}


def test_main_thread_stack_reads_a_recorded_dump() -> None:
    text = strip_corpus_header((PROFILES / "pyspy-collective" / "py-spy-dump.txt").read_text())[1]
    stack = main_thread_stack(text)
    assert stack[0] == "all_reduce (torch/distributed/distributed_c10d.py:1316)" and stack[-1].startswith("<module>")
    merged = 'Thread 1 (active): "MainThread"\nThread 2 (active): "MainThread"\n    barrier (torch/distributed/distributed_c10d.py:2784)\n'
    assert main_thread_stack(merged) == ("barrier (torch/distributed/distributed_c10d.py:2784)",)


def test_a_link_that_went_down_during_the_gather_is_a_cause() -> None:
    flat = {"port_xmit_data": 10, "port_rcv_data": 10, "link_downed": 0}
    ib_ok = {"interval_s": 3, "first": {"mlx5_0/1": {"port_xmit_data": 10, "port_rcv_data": 10, "link_downed": 0}},
             "second": {"mlx5_0/1": {"port_xmit_data": 99, "port_rcv_data": 99, "link_downed": 0}}}
    ib_down = {"interval_s": 3, "first": {"mlx5_1/1": flat}, "second": {"mlx5_1/1": {**flat, "link_downed": 1}}}
    result = judge_hang(Bundle(nodes=[_raw("a", [_proc(1, 0), _proc(2, 1)], ib_ok),
                                      _raw("b", [_proc(3, 2), _proc(4, 3)], ib_down)]))
    kinds = {(c.kind, c.node) for c in result.verdict.causes}
    assert ("live_ib_down", "b") in kinds and ("live_ib_flat", "b") in kinds
    assert result.verdict.causes[0].kind == "live_ib_down"


def test_no_cause_when_every_rank_is_present_and_healthy() -> None:
    result = judge_hang(Bundle(nodes=[_raw("a", [_proc(1, 0), _proc(2, 1)]), _raw("b", [_proc(3, 2), _proc(4, 3)])]))
    assert result.verdict.causes == () and [r.rank for r in result.ranks] == [0, 1, 2, 3]


def test_zombie_rank_outranks_nothing_else_and_names_its_node() -> None:
    result = judge_hang(Bundle(nodes=[_raw("a", [_proc(1, 0), _proc(2, 1, "Z (zombie)")]), _raw("b", [_proc(3, 2), _proc(4, 3)])]))
    first = result.verdict.causes[0]
    assert (first.kind, first.rank, first.node) == ("live_state", 1, "a") and "zombie" in first.title


def test_ranks_of_an_unreachable_or_unselected_node_are_not_called_dead() -> None:
    def world4(pid, rank):
        return {**_proc(pid, rank, world=4), "env": {"RANK": str(rank), "LOCAL_RANK": str(rank % 2), "WORLD_SIZE": "4"}}
    only_a = judge_hang(Bundle(nodes=[_raw("a", [world4(1, 0), world4(2, 1)])]))  # node b not gathered (-l)
    assert {c.kind for c in only_a.verdict.causes} == {"live_unseen_rank"}
    assert all(c.score < 0.5 for c in only_a.verdict.causes)
    down = _raw("b", [])
    down.outcome, down.message = "timeout", "no answer"
    result = judge_hang(Bundle(nodes=[_raw("a", [world4(1, 0), world4(2, 1)]), down]))
    assert result.verdict.causes[0].kind == "live_unreachable" and result.verdict.causes[0].node == "b"


def test_launcher_agents_and_dataloader_workers_are_not_ranks() -> None:
    waiting = "Thread 1 (active): \"MainThread\"\n    all_reduce (torch/distributed/distributed_c10d.py:1316)\n"
    agent = {"pid": 5, "ppid": 1, "cmdline": "torchrun train.py", "state": "S", "env": {"WORLD_SIZE": "2"},
             "pyspy": {"stdout": "Thread 5 (idle): \"MainThread\"\n    _invoke_run (torch/distributed/elastic/agent/server/api.py:835)\n"}}
    r0 = {**_proc(10, 0, world=2), "ppid": 5, "pyspy": {"stdout": waiting}}
    r1 = {**_proc(11, 1, world=2), "ppid": 5, "pyspy": {"stdout": waiting}}
    worker = {**_proc(12, 0, world=2), "ppid": 10, "pyspy": {"stdout": "Thread 12 (idle): \"MainThread\"\n    get (queue.py:179)\n"}}
    result = judge_hang(Bundle(nodes=[_raw("a", [agent, r0, r1, worker])]))
    assert [r.pid for r in result.ranks] == [10, 11]
    assert result.verdict.causes == ()


def test_a_garbled_gather_is_judged_without_a_crash() -> None:
    bad = _raw("a", [{"pid": "x", "env": {"RANK": "zero"}}, "junk"],
               ib={"first": {"mlx5_0/1": {"port_xmit_data": "many"}}, "second": []})
    result = judge_hang(Bundle(nodes=[bad]))
    assert result.ranks == ()
