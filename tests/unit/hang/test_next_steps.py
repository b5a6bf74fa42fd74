"""When no cause is named, the verdict says what to run next, in order, for what was and was not seen
(preflight/hang/next_steps.py): offline on real corpus logs, live on gathered facts as the collector sends them."""

from __future__ import annotations

import io
import json
from pathlib import Path

from rich.console import Console

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang
from preflight.hang.verdict import analyze
from preflight.parse.common import strip_corpus_header
from preflight.report import hang_console

ROOT = Path(__file__).resolve().parents[3]
LOGS = ROOT / "tests" / "fixtures" / "corpus" / "nccl_logs"
PYSPY = ROOT / "preflight" / "sim" / "profiles" / "pyspy-collective" / "py-spy-dump.txt"


def _first(steps: tuple[str, ...], needle: str) -> int:
    return next(i for i, s in enumerate(steps) if needle in s)


def test_nccl_info_log_with_ranks_names_their_stacks_first() -> None:
    """32 ranks' Init COMPLETE lines (NCCL_DEBUG=INFO was on), no watchdog, no dump: py-spy on named ranks, RAS,
    IB rates, dmesg, then the flight recorder for the next run; NCCL_DEBUG is not asked for again."""
    v = analyze([LOGS / "nccl-init-complete-32ranks-legacy.txt"])
    assert v.causes == () and v.next_commands
    steps = v.next_commands
    lowest = min(v.ranks, key=lambda r: r.rank)
    assert steps[0].startswith(f"ssh {lowest.node} 'py-spy dump --pid {lowest.pid}'  (rank {lowest.rank})")
    order = [_first(steps, k) for k in ("py-spy", "ncclras", "--sweeps 2", "dmesg -T", "TORCH_NCCL_TRACE_BUFFER_SIZE",
                                        "preflight analyze")]
    assert order == sorted(order)
    assert not any("NCCL_DEBUG=INFO" in s for s in steps)
    assert "-H server1,server2,server3,server4" in steps[_first(steps, "--sweeps 2")]


def test_watchdog_only_asks_for_nccl_logs_and_names_no_node() -> None:
    v = analyze([LOGS / "pytorch-watchdog-timeout-legacy-no-numel-1800s.txt"])
    assert v.causes == ()
    steps = v.next_commands
    env = steps[_first(steps, "restart with")]
    assert "NCCL_DEBUG=INFO" in env and "NCCL_DEBUG_SUBSYS=INIT,NET,ENV" in env and "NCCL_DEBUG_FILE=/tmp/nccl.%h.%p.log" in env
    assert not any("py-spy" in s for s in steps)  # no node or pid known: nothing to name
    assert not any("keep the job's stdout" in s for s in steps)  # the watchdog lines are here


def test_old_nccl_is_not_sent_to_ras_a_new_one_is() -> None:
    """NCCL 2.4.7 has no RAS (2.24+): no ncclras step; NCCL 2.28: asked, on the log's node."""
    old = analyze([LOGS / "nccl-2.4.7-socket-and-ib-horovod.txt"])
    assert old.causes == () and old.next_commands and not any("ncclras" in s for s in old.next_commands)
    new = analyze([LOGS / "nccl-2.28-gb200-k8s-ras-socket-gin-plugin-init-start.txt"])
    assert new.causes == () and any("ncclras -t 5" in s for s in new.next_commands)


def test_json_and_console_carry_the_steps(tmp_path) -> None:
    v = analyze([LOGS / "nccl-init-complete-32ranks-legacy.txt"])
    doc = v.to_dict()
    assert doc["next_commands"] == list(v.next_commands) and doc["jobs"][0]["next_commands"] == list(v.next_commands)
    out = io.StringIO()
    hang_console.render(v, Console(file=out, width=200, color_system=None))
    text = out.getvalue()
    assert "next, in order:" in text and f"1. {v.next_commands[0]}" in text


def _raw(name: str, procs: list[dict]) -> NodeRaw:
    probes = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None,
                            "kind": "builtin"}}
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})


def _proc(pid: int, rank: int, stack: str | None, world: int = 4) -> dict:
    p = {"pid": pid, "cmdline": "python train.py", "state": "S (sleeping)",
         "env": {"RANK": str(rank), "LOCAL_RANK": str(rank % 2), "WORLD_SIZE": str(world), "NCCL_DEBUG": "INFO"}}
    if stack is not None:
        p["pyspy"] = {"rc": 0, "stdout": stack, "stderr": ""}
    return p


def test_live_all_in_collectives_goes_native_then_ras_then_ib_rates() -> None:
    """Every rank healthy and in all_reduce (the recorded py-spy dump): the native stack of rank 0, NCCL's RAS view
    from its node, IB rates over two sweeps with the gather's own pattern and nodes."""
    dump = strip_corpus_header(PYSPY.read_text())[1]
    bundle = Bundle(nodes=[_raw("gpu-01", [_proc(11, 0, dump), _proc(12, 1, dump)]),
                           _raw("gpu-02", [_proc(21, 2, dump), _proc(22, 3, dump)])], label="hang",
                    options={"job": {"pattern": "train.py", "pyspy": True}})
    result = judge_hang(bundle)
    assert result.verdict.causes == ()
    steps = result.verdict.next_commands
    assert steps[0].startswith("ssh gpu-01 'py-spy dump --native --pid 11'  (rank 0")
    assert steps[1].startswith("ssh gpu-01 ncclras -t 5")
    assert steps[2].startswith("preflight hang -H gpu-01,gpu-02 --job-pattern train.py --sweeps 2")
    assert result.to_dict()["next_commands"] == list(steps)


def test_live_second_sweep_and_ras_answer_are_not_asked_again() -> None:
    bundle = Bundle(nodes=[_raw("gpu-01", [_proc(11, 0, None, 2), _proc(12, 1, None, 2)])], label="hang",
                    options={"job": {"pattern": "train.py"}, "ib_first_sweep": {"gpu-01": {}}})
    bundle.nodes[0].collector["probes"]["ncclras"] = {"rc": 0, "stdout": "RAS report", "stderr": ""}
    result = judge_hang(bundle)
    steps = result.verdict.next_commands
    assert result.verdict.causes == () and steps
    assert steps[0] == "ssh gpu-01 'py-spy dump --pid 11'  (rank 0)  [stacks first, while the job still hangs]"
    assert not any("ncclras" in s or "--sweeps" in s for s in steps)


def test_a_named_cause_has_no_next_commands_list() -> None:
    v = analyze([LOGS / "pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt"])
    assert v.causes and v.next_commands == ()


def test_live_ranks_with_a_debug_info_pipe_are_offered_dump_fr_once() -> None:
    """Ranks naming TORCH_NCCL_DEBUG_INFO_PIPE_FILE and no dump read: `--dump-fr` right after the stacks; once the
    gather asked (probe fr_dump present), it is not offered again."""
    procs = [_proc(11, 0, None, 2), _proc(12, 1, None, 2)]
    for p in procs:
        p["env"]["TORCH_NCCL_DEBUG_INFO_PIPE_FILE"] = "/tmp/pipe_"
    bundle = Bundle(nodes=[_raw("gpu-01", procs)], label="hang", options={"job": {"pattern": "train.py"}})
    steps = judge_hang(bundle).verdict.next_commands
    assert steps[2].startswith("preflight hang -H gpu-01 --job-pattern train.py --dump-fr")
    assert not any("TORCH_NCCL_DEBUG_INFO_PIPE_FILE=" in s for s in steps)
    bundle.nodes[0].collector["probes"]["fr_dump"] = {"rc": 0, "stdout": "{}", "stderr": "", "error": None}
    again = judge_hang(bundle).verdict.next_commands
    assert not any("--dump-fr" in s for s in again)
    plain = judge_hang(Bundle(nodes=[_raw("gpu-01", [_proc(11, 0, None, 1)])], label="hang")).verdict.next_commands
    assert any("TORCH_NCCL_DEBUG_INFO_PIPE_FILE=/tmp/nccl_debug_pipe_" in s for s in plain)
    assert not any("--dump-fr" in s for s in plain)
