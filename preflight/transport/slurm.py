"""Slurm as a transport: one `srun` runs the collector once on every node of an allocation.

Where users reach nodes through Slurm rather than SSH, `collect_slurm` launches a single job step

    srun --ntasks-per-node=1 --nodes=N [--partition=P] [--nodelist=L] --kill-on-bad-exit=0
         --label --input=all --job-name=preflight ... sh -c WRAPPER preflight-slurm sh -s

and feeds the collector script to srun's stdin. How the script reaches every node: srun's
`--input=all` broadcasts its stdin to every task (srun's documented default, stated explicitly so
a site's SLURM_INPUT or an `extra_args` default cannot send it to task 0 only), so no shared
filesystem, temp file or environment-size limit (the script is ~30 KB) is involved. How each node's output is told apart:
`--label` prefixes every line with the task number, and the fixed WRAPPER prints a header line
with `$SLURMD_NODENAME` (several slurmd on one host share a hostname, so the collector's own
`hostname` is not enough) and the step's node list, then a footer with the collector's exit code.
The wrapper always exits 0, so srun reports no "bad exit"; the collector's exit code travels in
the footer and `decode_output` judges it as the SSH path does. Node names and the inventory are
only ever argv words (`--nodelist=...`, `scontrol show hostnames ...`), never shell text.

Failures are node results, as with SSH:
- a task whose footer never came while the whole run hit `time_limit_s` -> `timeout`
  (srun's process group is sent SIGTERM by PID, then SIGKILL; the job's own `--time` is a backstop);
- a node whose task launch failed ("Task launch for StepId=... failed on node X") -> `error`.
  srun aborts the whole step when one node cannot launch, so the other nodes are asked once more
  in a second step without the failed ones (same time bound);
- a node of the allocation that gave nothing for another reason -> `error` with srun's stderr tail.
When the node names are not known beforehand (`--partition P --nodes N` outside an allocation) they
are learnt from the tasks' headers; if nothing answered at all, one pseudo-node named
`slurm:<partition>` carries the reason (e.g. still queued when the time limit came).
"""

from __future__ import annotations

import base64
import binascii
import math
import os
import re
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from preflight.collect.bundle import NodeRaw
from preflight.collect.script import decode_output

# The same callback as preflight.transport.fanout.Event (kind: started|finished), declared here so the
# Slurm path does not import paramiko.
Event = Callable[[str, str, NodeRaw | None], None]

NODE_MARK = "@@PREFLIGHT-SLURM-NODE"
B64_MARK = "@@PREFLIGHT-SLURM-B64"
RAW_MARK = "@@PREFLIGHT-SLURM-RAW"
RC_MARK = "@@PREFLIGHT-SLURM-RC"
END_MARK = "@@PREFLIGHT-SLURM-END"
# Fixed text: the node name comes from slurmd's environment at run time, never from preflight.
# srun --label cuts lines longer than 1024 bytes into labelled pieces (a real newline and a cut
# look the same), and the collector prints its JSON on one long line: so the task's output and
# its exit code go through `base64` (76-column lines) and are decoded here, byte for byte.
WRAPPER = (
    f'printf "%s %s %s\\n" {NODE_MARK} "${{SLURMD_NODENAME:-$(hostname)}}" "${{SLURM_STEP_NODELIST:-}}"; '
    'if command -v base64 >/dev/null 2>&1; then '
    f'echo {B64_MARK}; {{ "$@"; printf "\\n%s %s\\n" {RC_MARK} "$?"; }} | base64; '
    f'else echo {RAW_MARK}; "$@"; printf "\\n%s %s\\n" {RC_MARK} "$?"; fi; '
    f'echo {END_MARK}; exit 0'
)
_LABEL = re.compile(r"^\s*(\d+): ?(.*)$")
_LAUNCH_FAILED = re.compile(r"(?:Task launch for \S+ failed on node|launch failed on node)\s+([^\s:]+)")


@dataclass(frozen=True)
class SlurmOptions:
    """How to launch. Inside an allocation (`SLURM_JOB_ID` set) srun makes a step in it; otherwise
    `partition` and/or `nodes` (or `nodelist`) let srun make the allocation itself."""

    partition: str | None = None
    nodes: int | None = None
    nodelist: str | None = None  # a Slurm hostlist ("gpu[01-04]") or comma-separated names
    time_limit_s: float = 300.0  # the whole collection, queue wait included
    srun: str = "srun"
    extra_args: tuple[str, ...] = ()  # passed to srun as given (argv words, e.g. ("--account=ml",))
    command: tuple[str, ...] = ("sh", "-s")  # what runs on each node with the script on stdin
    env: tuple[tuple[str, str], ...] = ()  # extra environment for srun/scontrol (e.g. SLURM_CONF)


def in_allocation(environ: dict[str, str] | None = None) -> bool:
    return bool((environ if environ is not None else os.environ).get("SLURM_JOB_ID"))


def _env(options: SlurmOptions) -> dict[str, str]:
    env = dict(os.environ)
    env.update(dict(options.env))
    return env


def expand_hostlist(hostlist: str, options: SlurmOptions | None = None) -> list[str] | None:
    """`gpu[01-03],x` -> ['gpu01', 'gpu02', 'gpu03', 'x'] via `scontrol show hostnames` (an argv, no shell);
    None when scontrol is missing or fails."""
    if not hostlist:
        return []
    if not any(c in hostlist for c in "[]"):
        return [h for h in hostlist.split(",") if h]
    env = _env(options or SlurmOptions())
    scontrol = shutil.which("scontrol", path=env.get("PATH"))
    if not scontrol:
        return None
    try:
        proc = subprocess.run([scontrol, "show", "hostnames", hostlist], capture_output=True, text=True,
                              timeout=10, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return proc.stdout.split()


def srun_argv(options: SlurmOptions, *, nodelist: str | None = None, nnodes: int | None = None,
              inside: bool | None = None) -> list[str]:
    """The srun command line (an argv; nothing here goes through a shell)."""
    inside = in_allocation(_env(options)) if inside is None else inside
    argv = [options.srun, "--ntasks-per-node=1", "--kill-on-bad-exit=0", "--label", "--input=all",
            "--job-name=preflight"]
    n = nnodes if nnodes is not None else options.nodes
    if n:
        argv.append(f"--nodes={int(n)}")
    if options.partition and not inside:
        argv.append(f"--partition={options.partition}")
    listed = nodelist if nodelist is not None else options.nodelist
    if listed:
        argv.append(f"--nodelist={listed}")
    if inside:
        argv.append("--overlap")  # a step beside the job's own steps, not queued behind them
    else:
        argv.append(f"--time={max(1, math.ceil(options.time_limit_s / 60))}")  # Slurm's own backstop
    argv += list(options.extra_args)
    argv += ["sh", "-c", WRAPPER, "preflight-slurm", *options.command]
    return argv


@dataclass
class _Task:
    lines: list[str]
    err: list[str]
    node: str | None = None
    step_nodes: str = ""
    mode: str | None = None  # B64_MARK or RAW_MARK once the header came
    output: str = ""
    rc: int | None = None
    done: bool = False
    duration_s: float = 0.0  # from this srun's start to the task's last line (queue wait included)


def _finish_task(task: _Task) -> None:
    """Decode a task's framed output: the collector's stdout and its exit code."""
    if task.mode == B64_MARK:
        try:
            text = base64.b64decode("".join(task.lines), validate=False).decode("utf-8", "replace")
        except (ValueError, binascii.Error) as exc:
            text = f"[preflight: undecodable base64 from the node: {exc}]"
    else:
        text = "\n".join(task.lines) + "\n"
    body, sep, tail = text.rpartition("\n" + RC_MARK + " ")
    if sep:
        value = tail.strip()
        task.rc = int(value) if value.lstrip("-").isdigit() else None
        task.output = body
    else:
        task.output = text
    task.done = True


@dataclass
class _Attempt:
    tasks: dict[int, _Task]
    stderr: str
    returncode: int | None
    timed_out: bool
    launch_failed: list[str]


class _Reader:
    """srun's labelled output -> per-task records: on_start(node) at a task's header, on_done(task) at its end."""

    def __init__(self, on_start: Callable[[str], None], on_done: Callable[[_Task], None]) -> None:
        self.tasks: dict[int, _Task] = {}
        self.srun_err: list[str] = []
        self.t_start = time.monotonic()
        self.on_start, self.on_done = on_start, on_done

    def line(self, kind: str, raw: bytes) -> None:
        text = raw.decode("utf-8", "replace")
        m = _LABEL.match(text)
        if not m:
            if kind == "err" or text.strip():
                self.srun_err.append(text)
            return
        task = self.tasks.setdefault(int(m.group(1)), _Task([], []))
        body = m.group(2)
        if kind == "err":
            task.err.append(body)
        elif task.done:
            return
        elif body.startswith(NODE_MARK + " ") and task.node is None:
            parts = body.split()
            task.node = parts[1] if len(parts) > 1 else None
            task.step_nodes = parts[2] if len(parts) > 2 else ""
            if task.node:
                self.on_start(task.node)
        elif body in (B64_MARK, RAW_MARK) and task.mode is None:
            task.mode = body
        elif body == END_MARK and task.mode is not None:
            _finish_task(task)
            task.duration_s = round(time.monotonic() - self.t_start, 3)
            self.on_done(task)
        elif task.mode is not None:
            task.lines.append(body)


def _pump(proc: subprocess.Popen[bytes], reader: _Reader, deadline: float) -> bool:
    """Read srun's stdout and stderr line by line into `reader` until both close; True when `deadline` came first."""
    sel = selectors.DefaultSelector()
    assert proc.stdout is not None and proc.stderr is not None
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    partial = {"out": b"", "err": b""}
    open_streams = 2
    try:
        while open_streams:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            for key, _ in sel.select(timeout=min(remaining, 0.5)):
                chunk = os.read(key.fileobj.fileno(), 65536)  # type: ignore[union-attr]
                if not chunk:
                    sel.unregister(key.fileobj)
                    open_streams -= 1
                    if partial[key.data]:
                        reader.line(key.data, partial[key.data])
                        partial[key.data] = b""
                    continue
                data = partial[key.data] + chunk
                *whole, partial[key.data] = data.split(b"\n")
                for raw in whole:
                    reader.line(key.data, raw)
        return False
    finally:
        sel.close()


def _run_srun(argv: list[str], script: str, env: dict[str, str], deadline: float,
              on_start: Callable[[str], None], on_done: Callable[[_Task], None]) -> _Attempt:
    """One srun: stream its labelled output into per-task records, calling on_start(node) at a
    task's header and on_done(task) at its end marker; stop srun at `deadline`."""
    reader = _Reader(on_start, on_done)
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=env, start_new_session=True)
    except OSError as exc:
        return _Attempt({}, f"cannot start srun: {exc}", None, False, [])

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write(script.encode())
            proc.stdin.close()
        except (OSError, ValueError):  # srun gone before reading: its stderr says why
            pass

    threading.Thread(target=feed, daemon=True).start()
    timed_out = _pump(proc, reader, deadline)
    if timed_out:
        _stop(proc)
    try:
        proc.wait(timeout=max(0.1, min(5.0, deadline + 5.0 - time.monotonic())))
    except subprocess.TimeoutExpired:
        _stop(proc)
    for stream in (proc.stdout, proc.stderr):
        stream.close()  # type: ignore[union-attr]
    stderr = "\n".join(reader.srun_err)
    failed = sorted(set(_LAUNCH_FAILED.findall(stderr)))
    return _Attempt(reader.tasks, stderr, proc.returncode, timed_out, failed)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """srun forwards SIGTERM to the step and cancels it; SIGKILL if it has not gone in 3 s. By PID only."""
    for sig, wait_s in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 3.0)):
        if proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, sig)  # its own session: srun and nothing else of ours
        except OSError:
            pass
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _node_raw(name: str, started: float, t0: float, outcome: str, message: str,
              doc: dict[str, Any] | None, duration_s: float | None = None) -> NodeRaw:
    took = duration_s if duration_s is not None else round(time.monotonic() - t0, 3)
    return NodeRaw(name=name, address=name, port=None, user=None, groups=[], outcome=outcome, message=message,
                   started=started, duration_s=took, transport="slurm", collector=doc)


def _tail(text: str, n: int = 400) -> str:
    text = "; ".join(line.strip() for line in text.splitlines() if line.strip())
    return text[-n:]


def _launch_error(stderr: str, name: str) -> str:
    """srun's own line about this node's failed launch (else its stderr tail)."""
    for line in stderr.splitlines():
        if _LAUNCH_FAILED.search(line) and _LAUNCH_FAILED.search(line).group(1) == name:  # type: ignore[union-attr]
            return line.replace("srun: error: ", "").strip()
    return _tail(stderr)


def collect_slurm(script: str, options: SlurmOptions, *, expected_nodes: Sequence[str] | None = None,
                  on_event: Event | None = None) -> list[NodeRaw]:
    """Run `script` once per node through srun; one NodeRaw per node (transport "slurm").

    `expected_nodes`: the nodes that must answer (inventory names = Slurm node names), in the
    order results come back. Without it: `options.nodelist` expanded, else the allocation's
    `SLURM_JOB_NODELIST` when inside one, else whatever the tasks report (sorted by name).
    Nodes that answered but were not expected are appended after the expected ones.
    Returns within about `time_limit_s` + 10 s (srun is signalled at the limit).
    """
    run = _SlurmRun(script, options, expected_nodes, on_event)
    # --nodes: what the caller asked, or every expected node; --nodelist: the caller's list, or the
    # expected nodes when they were given explicitly (an inventory of Slurm node names)
    first_list = options.nodelist
    if first_list is None and expected_nodes is not None:
        first_list = ",".join(run.expected or [])
    first = run.attempt(first_list, options.nodes or (len(run.expected) if run.expected else None))
    if run.failed and not first.timed_out and time.monotonic() < run.deadline - 1:
        # srun aborts the whole step when one node cannot launch: ask the others once more without it
        pool = run.expected if run.expected is not None else run.learnt
        again = [n for n in pool if n not in run.results and n not in run.failed]
        if again:
            run.attempt(",".join(again), len(again))
    return run.finish()


class _SlurmRun:
    """The state of one collection across its srun attempts: who answered, who failed, who was learnt."""

    def __init__(self, script: str, options: SlurmOptions, expected_nodes: Sequence[str] | None,
                 on_event: Event | None) -> None:
        self.script, self.options = script, options
        self.env = _env(options)
        self.emit = on_event or (lambda kind, name, raw: None)
        self.started = time.time()
        self.t0 = time.monotonic()
        self.deadline = self.t0 + options.time_limit_s
        self.inside = in_allocation(self.env)
        self.expected = self._expected(expected_nodes)
        self.announced: set[str] = set()
        self.results: dict[str, NodeRaw] = {}
        self.learnt: list[str] = []
        self.held: dict[str, NodeRaw] = {}  # non-ok results of the running srun: final only if its step was not aborted
        self.failed: dict[str, str] = {}
        self.attempts: list[_Attempt] = []
        for name in self.expected or []:
            self.on_start(name)

    def _expected(self, expected_nodes: Sequence[str] | None) -> list[str] | None:
        expected: list[str] | None = list(expected_nodes) if expected_nodes is not None else None
        if expected is None and self.options.nodelist:
            expected = expand_hostlist(self.options.nodelist, self.options)
        if expected is None and self.inside and self.env.get("SLURM_JOB_NODELIST") and not self.options.nodes:
            expected = expand_hostlist(self.env["SLURM_JOB_NODELIST"], self.options)
        return expected

    def on_start(self, name: str) -> None:
        if name not in self.announced:
            self.announced.add(name)
            self.emit("started", name, None)

    def on_done(self, task: _Task) -> None:
        if task.node is None or task.node in self.results:
            return
        outcome, message, doc = decode_output(task.rc, task.output, "\n".join(task.err))
        raw = _node_raw(task.node, self.started, self.t0, outcome, message, doc, task.duration_s)
        if outcome == "ok":
            self.results[task.node] = raw
            self.emit("finished", task.node, raw)
        else:
            self.held[task.node] = raw

    def attempt(self, nodelist: str | None, nnodes: int | None) -> _Attempt:
        """One srun over these nodes; what it learnt, settled, and the launches that failed."""
        argv = srun_argv(self.options, nodelist=nodelist, nnodes=nnodes, inside=self.inside)
        att = _run_srun(argv, self.script, self.env, self.deadline, self.on_start, self.on_done)
        self._learn(att)
        self._settle(att)
        self.attempts.append(att)
        for name in att.launch_failed:
            self.failed.setdefault(name, f"srun could not launch the collector on {name}: "
                                         f"{_launch_error(att.stderr, name)}")
        return att

    def _settle(self, att: _Attempt) -> None:
        """A step srun aborted (a launch failed elsewhere) killed the other tasks: their non-ok
        results are the abort's doing and those nodes are asked again; otherwise they stand."""
        if not att.launch_failed:
            for name, raw in self.held.items():
                if name not in self.results:
                    self.results[name] = raw
                    self.emit("finished", name, raw)
        self.held.clear()

    def _learn(self, att: _Attempt) -> None:
        for task in att.tasks.values():
            names = [task.node] if task.node else []
            if task.step_nodes:
                names += expand_hostlist(task.step_nodes, self.options) or []
            for name in names:
                if name not in self.learnt:
                    self.learnt.append(name)

    def finish(self) -> list[NodeRaw]:
        """One NodeRaw per node, in order: answered, failed to launch, timed out, or silent."""
        names = list(self.expected) if self.expected is not None else sorted(self.learnt)
        names += sorted(n for n in list(self.results) + list(self.failed) if n not in names)
        if not names:
            return [self._nobody()]
        out: list[NodeRaw] = []
        for name in names:
            if name in self.results:
                out.append(self.results[name])
                continue
            self.on_start(name)
            raw = _node_raw(name, self.started, self.t0, *self._why_not(name), None)
            self.emit("finished", name, raw)
            out.append(raw)
        return out

    def _why_not(self, name: str) -> tuple[str, str]:
        """(outcome, message) of a node that gave no result."""
        last, limit = self.attempts[-1], self.options.time_limit_s
        if name in self.failed:
            return "error", self.failed[name]
        if last.timed_out:
            if any(t.node == name for t in last.tasks.values()):
                return "timeout", f"collector started but did not finish within the Slurm time limit of {limit:g} s"
            # e.g. still queued: srun says why ("Required node not available (down, drained or reserved)")
            return "timeout", (f"collector did not start within the Slurm time limit of {limit:g} s: "
                               f"{_tail(last.stderr) or 'srun printed nothing'}")
        task = next((t for a in self.attempts for t in a.tasks.values() if t.node == name), None)
        detail = _tail("\n".join(task.err)) if task and task.err else ""
        return "error", (f"no collector output from this node (srun exit {last.returncode}): "
                         f"{detail or _tail(last.stderr) or 'nothing on stderr'}")

    def _nobody(self) -> NodeRaw:
        """No node answered and none was known: one pseudo-node named `slurm:<where>` carries the reason."""
        last = self.attempts[-1]
        where = self.options.partition or self.options.nodelist or self.env.get("SLURM_JOB_ID") or "default"
        pseudo = f"slurm:{where}"
        if last.timed_out:
            outcome, message = "timeout", (f"no node answered within {self.options.time_limit_s:g} s "
                                           f"(queued or hung?): {_tail(last.stderr) or 'srun printed nothing'}")
        else:
            outcome, message = "error", f"srun exited {last.returncode} with no node answering: {_tail(last.stderr)}"
        raw = _node_raw(pseudo, self.started, self.t0, outcome, message, None)
        self.on_start(pseudo)
        self.emit("finished", pseudo, raw)
        return raw
