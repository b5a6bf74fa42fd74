"""NCCL_DEBUG=INFO logs of any era: per rank the version, init status, network, interfaces, warnings and errors.

Accepted line shapes (after launcher prefixes, see lines.strip_launcher):
  host:pid:tid [dev] NCCL INFO <msg>            host:pid:tid [dev] file.cc:123 NCCL WARN <msg>
  NCCL version 2.4.7+cuda10.0                   (bare, printed by the process of the previous line)
  init.cc:1247 NCCL WARN <msg>                  (quoted without prefix: unattributed)
  Ring 00 : 15 -> 0 [send] via NET/Socket/0     (2.3/2.4 connection lines: no [busid]/[dev] after the ranks)
  RuntimeError: NCCL error in: ..., NCCL version 2.10.3   (PyTorch exceptions, flattened paragraphs)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from preflight.hang.lines import Evidence, evidence, split_lines, strip_launcher
from preflight.parse.common import Unparseable

_PREFIX = re.compile(r"(?<![\w.\-])(?P<host>[A-Za-z0-9][\w.\-]*):(?P<pid>\d+):(?P<tid>\d+) \[(?P<dev>\d+)\] (?P<rest>.*)$")
_INFO = re.compile(r"^NCCL INFO\s?(?P<msg>.*)$")
_WARN = re.compile(r"^(?:(?P<src>[\w./\-]+:\d+) )?NCCL WARN\s?(?P<msg>.*)$")
_VERSION = re.compile(r"NCCL version (?P<v>\d+\.\d+\.\d+(?:[-.]\d+)?)(?P<cuda>\+cuda[\d.]+)?")
_COMM = re.compile(
    r"\bcomm (?P<ptr>0x[0-9a-fA-F]+) rank (?P<rank>\d+) n\w*ks (?P<nranks>\d+)"
    r"(?: cudaDev (?P<cuda>\d+))?(?: nvmlDev (?P<nvml>\d+))?(?: busId (?P<bus>[0-9a-fA-F]+))?"
    r"(?: commId (?P<cid>0x[0-9a-fA-F]+))?"
)
_RANK_OLD = re.compile(r"^rank (?P<rank>\d+) nranks (?P<nranks>\d+)\s*$")  # NCCL 2.3
_NET_IB = re.compile(r"^NET/IB ?: Using (?P<devs>(?:\[\d+\]\S+\s*)+)(?:; OOB (?P<oob>[^:\s]+)(?::(?P<ip>\S+))?)?")
_NET_SOCKET = re.compile(r"^NET/Socket ?: Using (?P<ifs>(?:\[\d+\]\S+\s*)+)")
_BOOTSTRAP = re.compile(r"^Bootstrap ?: Using (?:\[\d+\])?(?P<if>[^:\s]+)(?::(?P<ip>\S+))?")
_NET_OLD = re.compile(r"^NET ?: Using interface (?P<if>[^:\s]+)(?::(?P<ip>\S+))?")  # NCCL 2.3
_SIDEBAND = re.compile(r"^NET/IB : Using interface (?P<if>\S+) for sideband")  # NCCL 2.3
_USING_NET = re.compile(r"^Using network (?P<net>\w+)")
_INTERNAL_NET = re.compile(r"^Using (?:internal|external) Network (?P<net>\w+)")  # NCCL 2.3: IB init failed -> Socket
# 'Channel 00/0 : 0[90000] -> 1[1000] [send] via NET/Socket/3'; NCCL 2.3/2.4 'Ring 00 : 15 -> 0 [send] via NET/Socket/0'
_VIA = re.compile(r"^(?:Channel|Ring) \d+(?:/\d+)? : (?P<a>\d+)(?:\[[0-9a-fA-F]+\])? -> (?P<b>\d+)(?:\[[0-9a-fA-F]+\])?"
                  r"(?: \[(?P<dir>send|receive)\])? via (?P<via>.+?)\s*$")
_IBVERBS = re.compile(r"Failed to open libibverbs\.so")  # WARN (<= 2.1x, 'misc/ibvwrap.cc:63') or INFO (newer)
_IB_DISABLE = re.compile(r"^NCCL_IB_DISABLE set by environment to (?P<v>\d+)")
_TREE_SELF = re.compile(r"^Trees \[0\] [\d/\-]+->(?P<me>\d+)->")
_RETCODE = re.compile(r"^(?P<src>[\w./\-]+:\d+) -> (?P<code>\d+)\b")
_ERROR = re.compile(
    r"NCCL failure|NCCL error|nccl\w*Error\b|unhandled (?:system|cuda) error|Last error:|internal error|"
    r"remote process exited|Connection refused|Connection closed",
    re.I,
)
RETCODES = {1: "ncclUnhandledCudaError", 2: "ncclSystemError", 3: "ncclInternalError", 4: "ncclInvalidArgument",
            5: "ncclInvalidUsage", 6: "ncclRemoteError", 7: "ncclInProgress"}


@dataclass(frozen=True)
class NcclRank:
    """What one NCCL process/device printed. `rank` is its rank in the largest communicator it logged."""

    host: str
    pid: int
    cuda_dev: int
    rank: int | None = None
    nranks: int | None = None
    version: str | None = None
    init_complete: bool = False
    # 'IB' | 'Socket' | a plugin's name: from 'Using network X' / 'Using internal Network X' / 'via NET/X/..' /
    # a 'NET/IB : Using [0]mlx5_0:1/IB' list. A bare 'NET/Socket : Using' is the bootstrap socket (2.4 era), not a verdict.
    transport: str | None = None
    net_devices: tuple[str, ...] = ()  # 'mlx5_0:1/IB', 'mlx5_2:1/RoCE'
    interfaces: tuple[str, ...] = ()  # socket / bootstrap / OOB interface names: 'eth0', 'ib0'
    bus_id: str | None = None  # '0000:97:00.0' from 'busId 97000'
    comm_ids: tuple[str, ...] = ()
    warnings: tuple[Evidence, ...] = ()
    errors: tuple[Evidence, ...] = ()
    retcodes: tuple[int, ...] = ()  # distinct 'file.cc:N -> code' unwind codes, in order seen
    first_line: Evidence | None = None
    net_evidence: Evidence | None = None  # the line that chose the network
    version_evidence: Evidence | None = None
    init_evidence: Evidence | None = None
    # socket fallback: 'Failed to open libibverbs.so[.1]' (no RDMA verbs library), then a 'NET/Socket : Using' list
    ibverbs_failure: Evidence | None = None
    socket_evidence: Evidence | None = None  # the first 'NET/Socket : Using [0]ib0:...' line
    socket_via_evidence: Evidence | None = None  # the first '... via NET/Socket/N' connection line
    ib_disabled: Evidence | None = None  # 'NCCL_IB_DISABLE set by environment to 1'
    comm_hashes: tuple[str, ...] = ()  # 'commId 0x996ee6f117cb8e1e' (the job-wide id; comm_ids also holds pointers)

    @property
    def socket_fallback(self) -> bool:
        """NCCL could not load libibverbs and carried its traffic over sockets (TCP, e.g. IPoIB): no RDMA."""
        return self.ibverbs_failure is not None and self.transport == "Socket"

    @property
    def key(self) -> tuple[str, int, int]:
        return (self.host, self.pid, self.cuda_dev)

    @property
    def label(self) -> str:
        r = f"rank {self.rank}" if self.rank is not None else f"dev {self.cuda_dev} (pid {self.pid})"
        return f"{r} on {self.host}"


@dataclass(frozen=True)
class NcclLog:
    """One NCCL log: its ranks (processes × devices) and what could not be attributed to one."""

    ranks: tuple[NcclRank, ...]
    versions: tuple[str, ...]  # every NCCL version printed, first-seen order
    unattributed: tuple[Evidence, ...] = ()  # WARN / error lines without a host:pid:tid prefix
    nccl_lines: int = 0
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.host for r in self.ranks))

    def by_rank(self) -> dict[int, NcclRank]:
        return {r.rank: r for r in self.ranks if r.rank is not None}


def bus_id_from_nccl(value: str) -> str | None:
    """NCCL's `busId 97000` (hex int64: domain<<20 | bus<<12 | dev<<4 | fn) as `0000:97:00.0`."""
    try:
        n = int(value, 16)
    except (TypeError, ValueError):
        return None
    return f"{n >> 20:04x}:{(n & 0xff000) >> 12:02x}:{(n & 0xff0) >> 4:02x}.{n & 0xf:x}"


class _Acc:
    """Mutable per-process accumulator, frozen into NcclRank at the end."""

    __slots__ = ("host", "pid", "dev", "rank", "nranks", "rank_hint", "version", "complete", "transport", "via",
                 "devices", "ifaces", "bus", "comms", "warns", "errs", "codes", "first", "net_ev", "ver_ev", "init_ev",
                 "ibv_fail", "sock_ev", "sock_via_ev", "ib_off", "hashes")

    def __init__(self, host: str, pid: int, dev: int, first: Evidence) -> None:
        self.host, self.pid, self.dev = host, pid, dev
        self.rank: int | None = None
        self.nranks: int | None = None
        self.rank_hint: int | None = None
        self.version: str | None = None
        self.complete = False
        self.transport: str | None = None  # from 'Using network X' (authoritative)
        self.via: str | None = None  # from channel 'via NET/X'
        self.devices: dict[str, None] = {}
        self.ifaces: dict[str, None] = {}
        self.bus: str | None = None
        self.comms: dict[str, None] = {}
        self.warns: list[Evidence] = []
        self.errs: list[Evidence] = []
        self.codes: dict[int, None] = {}
        self.first = first
        self.net_ev: Evidence | None = None
        self.ver_ev: Evidence | None = None
        self.init_ev: Evidence | None = None
        self.ibv_fail: Evidence | None = None
        self.sock_ev: Evidence | None = None
        self.sock_via_ev: Evidence | None = None
        self.ib_off: Evidence | None = None
        self.hashes: dict[str, None] = {}

    def freeze(self) -> NcclRank:
        transport = self.transport or self.via
        if transport is None and self.devices:
            transport = "IB"
        warns = self.warns
        net_ev = self.net_ev
        if self.ibv_fail is not None and self.sock_ev is not None and transport in (None, "Socket"):
            # no verbs library, a socket list: sockets are the only network this process has (2.4 prints no
            # 'Using network'); the failure line is that fact, not a loose warning
            transport = "Socket"
            warns = [w for w in warns if w is not self.ibv_fail]
            net_ev = self.sock_via_ev or net_ev
        rank = self.rank if self.rank is not None else self.rank_hint
        return NcclRank(self.host, self.pid, self.dev, rank, self.nranks, self.version, self.complete, transport,
                        tuple(self.devices), tuple(self.ifaces), self.bus, tuple(self.comms), tuple(warns),
                        tuple(self.errs), tuple(self.codes), self.first, net_ev, self.ver_ev, self.init_ev,
                        self.ibv_fail, self.sock_ev, self.sock_via_ev, self.ib_off, tuple(self.hashes))


def _comm_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    """'comm 0x.. rank R nranks N cudaDev D busId B ...': the rank in the largest communicator seen wins."""
    m = _COMM.search(msg)
    if not m:
        return False
    rank, nranks = int(m.group("rank")), int(m.group("nranks"))
    if acc.nranks is None or nranks >= acc.nranks:
        acc.rank, acc.nranks = rank, nranks
    if m.group("bus"):
        acc.bus = bus_id_from_nccl(m.group("bus"))
    acc.comms[m.group("cid") or m.group("ptr")] = None
    if m.group("cid"):
        acc.hashes[m.group("cid").lower().removeprefix("0x")] = None
    if "Init COMPLETE" in msg:
        acc.complete = True
        acc.init_ev = ev
    return True


def _init_complete(acc: _Acc, msg: str, ev: Evidence) -> bool:
    if "Init COMPLETE" not in msg:
        return False
    acc.complete = True
    acc.init_ev = ev
    return True


def _version_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    m = _VERSION.search(msg)
    if not m:
        return False
    acc.version = m.group("v")
    acc.ver_ev = ev
    return True


def _via_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    """A channel/ring connection line: a rank hint (its local end) and the network it goes over."""
    m = _VIA.match(msg)
    if not m:
        return False
    local = m.group("b") if m.group("dir") == "receive" else m.group("a")
    if acc.rank is None and acc.rank_hint is None:
        acc.rank_hint = int(local)
    via = m.group("via")
    if via.startswith("NET/"):
        acc.via = via.split("/")[1]
        if acc.net_ev is None:
            acc.net_ev = ev
        if acc.via == "Socket" and acc.sock_via_ev is None:
            acc.sock_via_ev = ev
    return True


def _net_ib_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    m = _NET_IB.match(msg)
    if not m:
        return False
    for d in re.findall(r"\[\d+\](\S+)", m.group("devs")):
        acc.devices[d] = None
    if m.group("oob"):
        acc.ifaces[m.group("oob")] = None
    acc.net_ev = ev
    return True


def _net_socket_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    m = _NET_SOCKET.match(msg)
    if not m:
        return False
    for i in re.findall(r"\[\d+\]([^:\s]+)", m.group("ifs")):
        acc.ifaces[i] = None
    if acc.net_ev is None:
        acc.net_ev = ev
    if acc.sock_ev is None:
        acc.sock_ev = ev
    return True


def _ibverbs_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    if not _IBVERBS.search(msg):
        return False
    acc.ibv_fail = acc.ibv_fail or ev
    return True


def _ib_disable_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    m = _IB_DISABLE.match(msg)
    if not m:
        return False
    if m.group("v") != "0":
        acc.ib_off = ev
    return True


def _interface_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    """Bootstrap / NCCL 2.3 interface / sideband lines: an interface name, no verdict on the transport."""
    m = _BOOTSTRAP.match(msg) or _NET_OLD.match(msg) or _SIDEBAND.match(msg)
    if not m:
        return False
    acc.ifaces[m.group("if")] = None
    return True


def _using_network(acc: _Acc, msg: str, ev: Evidence) -> bool:
    """'Using network X' / NCCL 2.3's 'Using internal Network X': the authoritative transport."""
    m = _USING_NET.match(msg) or _INTERNAL_NET.match(msg)
    if not m:
        return False
    acc.transport = m.group("net")
    acc.net_ev = ev
    return True


def _old_rank_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    m = _RANK_OLD.match(msg)
    if not m:
        return False
    rank, nranks = int(m.group("rank")), int(m.group("nranks"))
    if acc.nranks is None or nranks >= acc.nranks:
        acc.rank, acc.nranks = rank, nranks
    return True


def _tree_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    """'Trees [0] a->me->b': a rank hint only while nothing better is known (else the line reads on)."""
    m = _TREE_SELF.match(msg)
    if not (m and acc.rank is None and acc.rank_hint is None):
        return False
    acc.rank_hint = int(m.group("me"))
    return True


def _retcode_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    m = _RETCODE.match(msg)
    if not m:
        return False
    acc.codes[int(m.group("code"))] = None
    return True


def _error_line(acc: _Acc, msg: str, ev: Evidence) -> bool:
    if not _ERROR.search(msg):
        return False
    acc.errs.append(ev)
    return True


# Tried in this order; the first that recognises an INFO message consumes it.
_INFO_READERS = (_comm_line, _init_complete, _version_line, _via_line, _net_ib_line, _net_socket_line, _ibverbs_line,
                 _ib_disable_line, _interface_line, _using_network, _old_rank_line, _tree_line, _retcode_line,
                 _error_line)


def _info(acc: _Acc, msg: str, ev: Evidence) -> None:
    """Fold one NCCL INFO message into its process's accumulator."""
    for read in _INFO_READERS:
        if read(acc, msg, ev):
            return


def parse_nccl_log(text: str, source: str = "") -> NcclLog | Unparseable:
    """Parse NCCL_DEBUG output; Unparseable when no line looks like NCCL's. Never raises on bad input."""
    if not isinstance(text, str) or not text.strip():
        return Unparseable.of("empty input: no NCCL log lines", text if isinstance(text, str) else "")
    procs: dict[tuple[str, int, int], _Acc] = {}
    versions: dict[str, None] = {}
    unattributed: list[Evidence] = []
    last: _Acc | None = None
    nccl_lines = 0
    for lineno, raw in enumerate(split_lines(text), 1):
        if "NCCL" not in raw and "nccl" not in raw:
            continue
        line, _tag = strip_launcher(raw)
        m = _PREFIX.search(line)
        if m is None:
            ev = evidence(source, lineno, line)
            v = _VERSION.search(line)
            if v:
                versions[v.group("v")] = None
                nccl_lines += 1
                if line.startswith("NCCL version") and last is not None and last.version is None:
                    last.version, last.ver_ev = v.group("v"), ev  # bare line printed by the process just logged
            if "NCCL WARN" in line or _ERROR.search(line):
                unattributed.append(ev)
                nccl_lines += 1
            continue
        rest = m.group("rest").rstrip()
        if "NCCL" not in rest:
            continue  # application line that happens to have a host:pid:tid shape
        nccl_lines += 1
        key = (m.group("host"), int(m.group("pid")), int(m.group("dev")))
        ev = evidence(source, lineno, line)
        acc = procs.get(key)
        if acc is None:
            acc = procs[key] = _Acc(key[0], key[1], key[2], ev)
        last = acc
        w = _WARN.match(rest)
        if w:
            acc.warns.append(ev)
            if _IBVERBS.search(w.group("msg")):
                acc.ibv_fail = acc.ibv_fail or ev
            continue
        i = _INFO.match(rest)
        if i:
            _info(acc, i.group("msg").strip(), ev)
            if acc.version:
                versions[acc.version] = None
        elif _ERROR.search(rest):
            acc.errs.append(ev)
    if nccl_lines == 0:
        return Unparseable.of("no NCCL log lines (expected 'host:pid:tid [dev] NCCL INFO ...')", text)
    ranks = tuple(a.freeze() for a in procs.values())
    return NcclLog(ranks, tuple(versions), tuple(unattributed), nccl_lines, source)
