"""Run the commands of docs/oncall.md's 3 a.m. walkthrough on a simulated fleet and print their real output.

    PYTHONPATH=. python scripts/oncall_walkthrough.py [OUT_DIR]

A SimFleet of four nodes (real sshd on 127.0.0.1, stand-in GPU/IB tools printing recorded outputs; see
preflight/sim/fleet.py) runs two stand-in jobs: `pretrain.py` (8 ranks, rank 7 gone; gpu-01 answers RAS with
the NCCL guide's recorded MISMATCH report) and `finetune.py` (4 ranks on gpu-02, every one in all_reduce per the
recorded py-spy dump: nothing wrong to see). Then each command of the walkthrough runs with COLUMNS=80 and its
stdout/stderr are printed under a `$ command` line. Every process started is stopped by PID at the end.
"""

from __future__ import annotations

import os
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from preflight.parse.common import strip_corpus_header
from preflight.sim.fleet import SimFleet

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
NODES = [("gpu-01", "ncclras-mismatch"), ("gpu-02", "pyspy-collective"), ("gpu-03", "ib-errors"),
         ("gpu-04", "h100-healthy")]
SLEEP = [sys.executable, "-c", "import time; time.sleep(900)"]


def _jobs(fleet: SimFleet) -> None:
    layout = {"gpu-01": [0, 1], "gpu-02": [2, 3], "gpu-03": [4, 5], "gpu-04": [6]}  # rank 7 is gone
    for node, ranks in layout.items():
        for local, rank in enumerate(ranks):
            env = {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": "8", "NCCL_DEBUG": "INFO",
                   "NCCL_DEBUG_FILE": "/var/log/nccl/%h.%p.log", "HF_TOKEN": "hf_walkthrough_token"}
            pid = fleet.start_job(node, [*SLEEP, "pretrain.py"], env)
            if rank == 0:  # rank 0's NCCL_DEBUG_FILE: a real NCCL INFO log (corpus), where the collector reads it
                log = fleet.host_root(node) / "var" / "log" / "nccl" / f"{socket.gethostname()}.{pid}.log"
                log.parent.mkdir(parents=True, exist_ok=True)
                text = (CORPUS / "nccl_logs" / "nccl-h100-setting-affinity-ignore-cpu-affinity.txt").read_text()
                log.write_text(strip_corpus_header(text)[1])
    for local in range(4):
        env = {"RANK": str(local), "LOCAL_RANK": str(local), "WORLD_SIZE": "4"}
        fleet.start_job("gpu-02", [*SLEEP, "finetune.py"], env)


def _run(cmd: list[str], cwd: Path, *, tool: str = "preflight") -> None:
    shown = shlex.join(cmd).replace(str(cwd) + "/", "")
    print(f"\n$ {tool + ' ' if tool else ''}{shown}", flush=True)
    env = {**os.environ, "COLUMNS": "80", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "preflight", *cmd] if tool == "preflight" else cmd
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    print(proc.stderr + proc.stdout, end="")
    print(f"[exit {proc.returncode}]", flush=True)


def _screen(bundle_dir: Path, keys: tuple[str, ...]) -> None:
    """The hang screen of `preflight tui DIR` at 80x24, as the terminal shows it (Textual's own render)."""
    import asyncio

    from preflight.collect.bundle import load_bundle
    from preflight.hang.gather import judge_hang
    from preflight.tui.screens.hang import HangApp

    app = HangApp(judge_hang(load_bundle(str(bundle_dir))), f"preflight hang · {bundle_dir.name}")

    async def show() -> None:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            for k in keys:
                await pilot.press(k)
                await pilot.pause()
            strips = app.screen._compositor.render_strips()
            print("\n".join("".join(seg.text for seg in strip).rstrip() for strip in strips))

    print(f"\n$ preflight tui {bundle_dir.name}    # keys: {' '.join(keys) or '(none)'}", flush=True)
    asyncio.run(show())


def main() -> int:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="oncall-"))
    out.mkdir(parents=True, exist_ok=True)
    fleet = SimFleet(out / "fleet", NODES)
    try:
        fleet.start()
        _jobs(fleet)
        inv = fleet.write_inventory(out / "prod.yaml", thresholds=fleet.sandbox_thresholds())
        shutil.copy(inv, out / "prod.yaml") if inv != out / "prod.yaml" else None
        live = ["-i", "prod.yaml", "--ib-interval", "1", "--no-color"]
        _run(["hang", *live, "--job-pattern", r"pretrain\.py", "--save", "hang-0312"], out)
        _screen(out / "hang-0312", ())
        _screen(out / "hang-0312", ("r",))
        _run(["hang", *live, "--job-pattern", r"pretrain\.py", "--sweeps", "2"], out)
        _run(["hang", "--bundle", "hang-0312", "--no-color", "--json", "replay.json"], out)
        _run(["grep", "-o", '"kind": "[a-z_]*"', "replay.json"], out, tool="")
        _run(["tar", "czf", "hang-0312.tgz", "hang-0312"], out, tool="")
        _run(["tar", "tzf", "hang-0312.tgz"], out, tool="")
        _run(["grep", "-c", "HF_TOKEN", "hang-0312/bundle.json"], out, tool="")
        _run(["hang", *live, "--job-pattern", r"finetune\.py", "--json", "finetune.json"], out)
        subprocess.run([sys.executable, "-m", "preflight.hang.scenarios", str(out / "copied"), "--nodes", "4",
                        "--gpus", "2", "--scenario", "xid"], check=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, timeout=120)
        _run(["analyze", "copied/xid/", "--no-color"], out)
        shutil.copy(CORPUS / "nccl_logs" / "ncclras-2.30.7-8rank-incomplete-rank7-exited.txt", out / "ras-0312.txt")
        _run(["analyze", "ras-0312.txt", "--no-color"], out)
        (out / "mixed").mkdir(exist_ok=True)
        for name in ("err-sglang-h100-socket-c-abort-then-python-traceback.txt",
                     "pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt"):
            shutil.copy(CORPUS / "nccl_logs" / name, out / "mixed" / name)
        _run(["analyze", "mixed/", "--no-color"], out)
    finally:
        fleet.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
