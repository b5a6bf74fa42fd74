"""Fan the collector out to many nodes: a bounded pool, per-node and whole-run deadlines.

Not fabric's ThreadingGroup: it has no per-host deadline and raises when one host fails.
Here every node ends as a NodeRaw whatever happens (down, refused, bad key, hung, garbage),
and the run returns by its deadline even if a thread is stuck in a socket: the deadline
handler closes the stuck connection and records the node as timed out.
"""

from __future__ import annotations

import logging
import queue
import select
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import paramiko

from preflight.collect.bundle import NodeRaw
from preflight.collect.script import decode_output
from preflight.textsafe import clean_text
from preflight.transport.ssh import HostKeyRejected, SshOptions, secure_connection

LOCAL_ADDRESSES = ("local", "localhost-local")
# paramiko logs a traceback for every failed handshake; the failure is reported as the node's result instead
logging.getLogger("paramiko").setLevel(logging.CRITICAL)


class Target(Protocol):
    name: str
    address: str
    port: int | None
    user: str | None
    identity_file: str | None
    jump_host: str | None
    connect_timeout_s: float
    command_timeout_s: float
    groups: tuple[str, ...]


class ConnectionPool:
    """Open SSH connections kept across sweeps (a TUI session, `preflight hang --watch`).

    A second sweep over the same nodes skips TCP, key exchange and authentication: it opens a
    new channel on the live transport. A connection that died is dropped and made again. Host
    keys were verified when each connection was made. Close the pool (or use it as a context
    manager) to end them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cxns: dict[tuple[Any, ...], Any] = {}
        self._closed = False
        self.reused = 0
        self.opened = 0

    @staticmethod
    def key(node: Target) -> tuple[Any, ...]:
        return (node.name, node.address, node.port, node.user, node.identity_file, node.jump_host)

    def take(self, node: Target) -> Any | None:
        """A live connection for this node, removed from the pool while in use; None if there is none."""
        with self._lock:
            cxn = self._cxns.pop(self.key(node), None)
        if cxn is None:
            return None
        transport = cxn.client.get_transport() if cxn.is_connected else None
        if transport is None or not transport.is_active():
            _quiet_close(cxn)
            return None
        with self._lock:
            self.reused += 1
        return cxn

    def give(self, node: Target, cxn: Any) -> None:
        with self._lock:
            if self._closed:  # given back after close(): nobody will take it
                old, cxn = cxn, None
            else:
                old = self._cxns.pop(self.key(node), None)
                self._cxns[self.key(node)] = cxn
        if old is not None and old is not cxn:
            _quiet_close(old)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            cxns, self._cxns = list(self._cxns.values()), {}
        for cxn in cxns:
            _quiet_close(cxn)

    def __len__(self) -> int:
        return len(self._cxns)

    def __enter__(self) -> ConnectionPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _quiet_close(cxn: Any) -> None:
    try:
        cxn.close()
    except Exception:
        pass


@dataclass(frozen=True)
class FanoutOptions:
    forks: int = 32
    run_deadline_s: float | None = None  # whole run; default: the longest per-node budget + slack
    ssh: SshOptions = SshOptions()
    pool: ConnectionPool | None = None  # keep connections open for the next sweep
    stop: threading.Event | None = None  # set it to end the run now (a UI quitting): pending nodes end as timeouts

    # preflight.session drives a run through these two, so that it (and the TUI above it) never imports
    # the transport: the options a request carries are the transport.
    def fan_out(self, nodes: Sequence[Target], script: str, on_event: Event | None = None) -> list[NodeRaw]:
        """`collect_fleet` with these options."""
        return collect_fleet(nodes, script, self, on_event)

    @staticmethod
    def connection_pool() -> ConnectionPool:
        """A pool for sweeps that keep their connections (close it to end them)."""
        return ConnectionPool()


Event = Callable[[str, str, NodeRaw | None], None]  # (kind, node name, result) kind: started|finished


class _Cancel:
    """Things a stuck node thread is blocked on, so the deadline handler can close them."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.closers: list[Callable[[], None]] = []
        self.cancelled = False

    def add(self, fn: Callable[[], None]) -> None:
        with self.lock:
            self.closers.append(fn)
            if self.cancelled:
                fn()

    def cancel(self) -> None:
        with self.lock:
            self.cancelled = True
            for fn in self.closers:
                try:
                    fn()
                except Exception:  # closing a half-dead socket may fail; it is closed either way
                    pass


def _read_channel(chan: paramiko.Channel, deadline: float) -> tuple[int | None, str, str, bool]:
    """Drain stdout/stderr until exit or deadline; returns (rc, out, err, timed_out)."""
    out: list[bytes] = []
    err: list[bytes] = []
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace"), True
        if chan.eof_received and not chan.recv_ready() and not chan.recv_stderr_ready():
            # after EOF paramiko's pipe stays readable: select() would spin; wait for the exit status instead
            chan.status_event.wait(min(remaining, 1.0))
        else:
            select.select([chan], [], [], min(remaining, 1.0))
        while chan.recv_ready():
            out.append(chan.recv(65536))
        while chan.recv_stderr_ready():
            err.append(chan.recv_stderr(65536))
        # the exit status can arrive before the last output (sshd under load): finish only at end of file
        drained = (chan.eof_received or chan.closed) and not chan.recv_ready() and not chan.recv_stderr_ready()
        if drained and chan.exit_status_ready():
            rc = chan.recv_exit_status()
            return rc, b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace"), False
        if chan.closed and drained:
            break
    return None, b"".join(out).decode("utf-8", "replace"), b"".join(err).decode("utf-8", "replace"), False


def _base(node: Target, transport: str, started: float) -> dict[str, Any]:
    return {
        "name": node.name,
        "address": node.address,
        "port": node.port,
        "user": node.user,
        "groups": list(node.groups),
        "started": started,
        "transport": transport,
    }


def _finish(base: dict[str, Any], t0: float, outcome: str, message: str, doc: dict[str, Any] | None) -> NodeRaw:
    return NodeRaw(**base, outcome=outcome, message=message, duration_s=round(time.monotonic() - t0, 3), collector=doc)


def classify_error(exc: BaseException) -> tuple[str, str]:
    """Map a connection exception to (outcome, one-line message)."""
    if isinstance(exc, paramiko.BadHostKeyException):
        return "hostkey_rejected", (
            f"host key CHANGED for {exc.hostname}: got {exc.key.get_name()} {exc.key.fingerprint}, "
            f"known_hosts has {exc.expected_key.fingerprint}; possible man-in-the-middle or a reinstalled node: "
            "verify, then fix known_hosts (ssh-keygen -R)"
        )
    if isinstance(exc, HostKeyRejected):
        return "hostkey_rejected", str(exc)
    if isinstance(exc, paramiko.AuthenticationException) or "no authentication methods" in str(exc).lower():
        return "auth_failed", f"authentication failed: {exc}"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, paramiko.ssh_exception.NoValidConnectionsError)
    ):
        return "refused", f"connection refused: {exc}"
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timeout", f"timed out connecting: {exc or 'no answer'}"
    if isinstance(exc, paramiko.SSHException) and any(k in str(exc).lower() for k in ("banner", "no existing session")):
        return "timeout", f"no SSH banner in time (hung sshd or overloaded node): {exc}"
    if isinstance(exc, socket.gaierror):
        return "unreachable", f"cannot resolve host: {exc}"
    if isinstance(exc, OSError):
        return "unreachable", f"{type(exc).__name__}: {exc}"
    if isinstance(exc, paramiko.SSHException):
        return "error", f"SSH error: {exc}"
    return "error", f"{type(exc).__name__}: {exc}"


def collect_ssh(node: Target, script: str, options: SshOptions, cancel: _Cancel,
                pool: ConnectionPool | None = None) -> NodeRaw:
    started = time.time()
    t0 = time.monotonic()
    base = _base(node, "ssh", started)
    deadline = t0 + node.connect_timeout_s * 3 + node.command_timeout_s
    cxn = pool.take(node) if pool is not None else None
    keep = False
    try:
        if cxn is None:
            cxn = secure_connection(
                node.address,
                options,
                user=node.user,
                port=node.port,
                identity_file=node.identity_file,
                jump_host=node.jump_host,
                connect_timeout_s=node.connect_timeout_s,
            )
            cancel.add(cxn.close)
            cxn.open()
            if pool is not None:
                with pool._lock:
                    pool.opened += 1
        else:
            cancel.add(cxn.close)
        transport = cxn.client.get_transport()
        assert transport is not None
        try:
            chan = transport.open_session(timeout=node.connect_timeout_s)
        except paramiko.SSHException as exc:
            if "Timeout opening channel" in str(exc):
                return _finish(base, t0, "timeout", f"no channel within {node.connect_timeout_s:g} s (the node stopped answering)", None)
            raise
        # The collector goes through the raw channel: fabric's run(in_stream=...) costs ~1 s a call.
        chan.exec_command("sh -s")
        chan.sendall(script.encode())
        chan.shutdown_write()
        rc, out, err, timed_out = _read_channel(chan, deadline)
        if timed_out:
            return _finish(base, t0, "timeout", f"collector did not finish within {node.command_timeout_s:g} s", None)
        chan.close()
        keep = pool is not None and not cancel.cancelled
        outcome, message, doc = decode_output(rc, out, err)
        return _finish(base, t0, outcome, message, doc)
    except Exception as exc:  # every failure of one node is that node's result
        if cancel.cancelled:
            return _finish(base, t0, "timeout", "run deadline reached before the node answered", None)
        outcome, message = classify_error(exc)
        return _finish(base, t0, outcome, message, None)
    finally:
        if cxn is not None:
            if keep and pool is not None:
                pool.give(node, cxn)
            else:
                _quiet_close(cxn)


def collect_local(node: Target, script: str, cancel: _Cancel) -> NodeRaw:
    """The controller itself as a node: same script, run by the local sh."""
    started = time.time()
    t0 = time.monotonic()
    base = _base(node, "local", started)
    try:
        proc = subprocess.Popen(["sh", "-s"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
    except OSError as exc:
        return _finish(base, t0, "error", f"cannot start sh: {exc}", None)
    cancel.add(proc.kill)
    try:
        out, err = proc.communicate(script.encode(), timeout=node.command_timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return _finish(base, t0, "timeout", f"collector did not finish within {node.command_timeout_s:g} s", None)
    outcome, message, doc = decode_output(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"))
    return _finish(base, t0, outcome, message, doc)


def collect_fleet(
    nodes: Sequence[Target],
    script: str,
    options: FanoutOptions,
    on_event: Event | None = None,
) -> list[NodeRaw]:
    """Collect from every node; returns one NodeRaw per node, in inventory order."""
    if not nodes:
        return []
    budget = max(n.connect_timeout_s * 3 + n.command_timeout_s for n in nodes)
    waves = -(-len(nodes) // max(1, options.forks))
    run_deadline = options.run_deadline_s or budget * waves + 5.0
    t_end = time.monotonic() + run_deadline
    cancels = {n.name: _Cancel() for n in nodes}
    results: dict[str, NodeRaw] = {}
    emit = on_event or (lambda kind, name, raw: None)

    def one(node: Target) -> NodeRaw:
        emit("started", node.name, None)
        if node.address in LOCAL_ADDRESSES:
            return collect_local(node, script, cancels[node.name])
        return collect_ssh(node, script, options.ssh, cancels[node.name], options.pool)

    pool = ThreadPoolExecutor(max_workers=max(1, min(options.forks, len(nodes))), thread_name_prefix="preflight-node")
    futures: dict[Future[NodeRaw], Target] = {pool.submit(one, n): n for n in nodes}
    # Each future puts itself on this queue when it ends: taking the next one is O(1). `wait(pending,
    # FIRST_COMPLETED)` hooked a waiter on every pending future at every call, O(N) a node and O(N^2) a run.
    ended: queue.SimpleQueue[Future[NodeRaw]] = queue.SimpleQueue()
    for fut in futures:
        fut.add_done_callback(ended.put)
    pending = set(futures)
    try:
        while pending:
            remaining = t_end - time.monotonic()
            if remaining <= 0 or (options.stop is not None and options.stop.is_set()):
                break
            step = min(remaining, 0.2) if options.stop is not None else remaining
            try:
                fut = ended.get(timeout=step)
            except queue.Empty:
                continue
            pending.discard(fut)
            node = futures[fut]
            try:
                raw = fut.result()
            except Exception as exc:  # defensive: collect_* never raise, but a bug must stay one node's
                raw = NodeRaw(**_base(node, "ssh", time.time()), outcome="error", message=repr(exc),
                              duration_s=0.0)
            results[node.name] = raw
            emit("finished", node.name, raw)
        for fut in pending:
            node = futures[fut]
            cancels[node.name].cancel()
            fut.cancel()
            stopped = options.stop is not None and options.stop.is_set()
            raw = NodeRaw(**_base(node, "ssh", time.time()), outcome="timeout",
                          message="run stopped before the node answered" if stopped
                          else f"run deadline of {run_deadline:.0f} s reached before the node answered",
                          duration_s=round(run_deadline, 3))
            results[node.name] = raw
            emit("finished", node.name, raw)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return [results[n.name] for n in nodes]


def run_command(node: Target, argv: list[str], options: SshOptions, timeout_s: float) -> tuple[int | None, str, str]:
    """Run one argv on one node (quoted word by word), bounded by timeout_s; errors come back as (None, "", why).
    What the node printed comes back inert and scrubbed (preflight.textsafe), as a NodeRaw's text does."""
    rc, out, err = _run_command(node, argv, options, timeout_s)
    return rc, clean_text(out), clean_text(err)


def _run_command(node: Target, argv: list[str], options: SshOptions, timeout_s: float) -> tuple[int | None, str, str]:
    import shlex

    line = " ".join(shlex.quote(a) for a in argv)
    if node.address in LOCAL_ADDRESSES:
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, "", f"{type(exc).__name__}: {exc}"
        return proc.returncode, proc.stdout, proc.stderr
    cxn = None
    try:
        cxn = secure_connection(node.address, options, user=node.user, port=node.port, identity_file=node.identity_file,
                                jump_host=node.jump_host, connect_timeout_s=node.connect_timeout_s)
        cxn.open()
        transport = cxn.client.get_transport()
        assert transport is not None
        chan = transport.open_session(timeout=node.connect_timeout_s)
        chan.exec_command(line)
        chan.shutdown_write()
        rc, out, err, timed_out = _read_channel(chan, time.monotonic() + timeout_s)
        if timed_out:
            return None, out, err + f"\n[preflight: command did not finish within {timeout_s:g} s]"
        return rc, out, err
    except Exception as exc:
        outcome, message = classify_error(exc)
        return None, "", f"{outcome}: {message}"
    finally:
        if cxn is not None:
            try:
                cxn.close()
            except Exception:
                pass
