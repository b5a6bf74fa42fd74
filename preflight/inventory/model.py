"""The inventory model: the nodes to check, how to reach them, and what to expect of them.

Everything a caller holds after loading lives here (:class:`Node`, :class:`Inventory`,
:class:`Expectations`, :class:`InventoryError`); nothing here reads a file. Every problem is an
:class:`InventoryError` whose text is one line, ``<file>:<line>: <key path>: <what is wrong>``.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import preflight.inventory.hostpattern as hostpattern

DEFAULT_CONNECT_TIMEOUT_S = 10.0
DEFAULT_COMMAND_TIMEOUT_S = 120.0
# Node.jump_host is `[user@]host[:port]` (ProxyJump) or this prefix and a ProxyCommand shell line
# (from an Ansible inventory's ansible_ssh_common_args); transport/ssh.py tells the two apart
PROXY_COMMAND_PREFIX = "ProxyCommand="


# ---- errors ---------------------------------------------------------------------------


def _fmt_path(path: Sequence[Any]) -> str:
    out = ""
    for seg in path:
        if isinstance(seg, int) and not isinstance(seg, bool):
            out += f"[{seg}]"
            continue
        s = str(seg)
        if not s or re.search(r"[.\s\"']", s):
            s = json.dumps(s)
        out += ("." if out else "") + s
    return out or "(top level)"


class InventoryError(Exception):
    """A problem with an inventory; ``str(e)`` is one line: ``<file>:<line>: <key path>: <problem>``."""

    def __init__(self, file: str, line: int | None, key_path: str | Sequence[Any], problem: str) -> None:
        self.file = str(file)
        self.line = line
        self.key_path = key_path if isinstance(key_path, str) else _fmt_path(key_path)
        self.problem = " ".join(str(problem).split())
        where = f"{self.file}:{line}" if line else self.file
        self.message = f"{where}: {self.key_path}: {self.problem}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


# ---- model ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Expectations:
    """What a node must look like; None = no expectation (the engine then uses the fleet majority)."""

    gpus_per_node: int | None = None
    gpu_model: str | None = None
    driver_version: str | None = None
    cuda_version: str | None = None
    nccl_version: str | None = None
    ib_ports: int | None = None
    ib_rate_gbps: float | None = None
    nvlinks_per_gpu: int | None = None
    host_memory_gib_min: float | None = None
    shm_gib_min: float | None = None
    hugepages_gib_min: float | None = None  # static hugepages a workload needs (DPDK, some RDMA stacks); unset: none required
    allreduce_busbw_gbps_min: float | None = None
    nccl_socket_ifname: str | None = None  # NCCL_SOCKET_IFNAME the jobs use: comma list, '^' excludes, '=' exact
    nccl_ib_hca: str | None = None  # NCCL_IB_HCA the jobs use: comma list of HCA[:port], '^' excludes, '=' exact
    nccl_net: str | None = None  # the inter-node NCCL network the fabric is meant to carry: ib (default) | socket
    # facts that cannot be had by design, said once: {check id, glob or fact key: why} (e.g. {xid: "no root for dmesg"});
    # their checks read `accepted`, with who said so, instead of `error` on every run
    accept: Mapping[str, str] | None = None
    # findings acknowledged for this node (from the inventory's top-level `acknowledge:` list, never `expect:`):
    # each {check, reason, expires (YYYY-MM-DD), by, source}; judged failures/warnings they name read `acknowledged`
    acknowledge: tuple[Mapping[str, str], ...] | None = None
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # only ``x_``-prefixed keys

    def as_dict(self) -> dict[str, Any]:
        """The set expectations only (``extra`` keys included), in schema order."""
        out = {k: getattr(self, k) for k in EXPECT_KEYS if getattr(self, k) is not None}
        if self.acknowledge:
            out["acknowledge"] = [dict(a) for a in self.acknowledge]
        out.update(self.extra)
        return out

    def get(self, key: str, default: Any = None) -> Any:
        if key in EXPECT_KEYS or (key == "acknowledge" and self.acknowledge):
            value = getattr(self, key)
            return default if value is None else value
        return self.extra.get(key, default)


# the keys an `expect:` mapping may hold (`acknowledge` comes from the top-level list only)
EXPECT_KEYS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Expectations)
                                     if f.name not in ("extra", "acknowledge"))



@dataclass(frozen=True)
class Node:
    """One machine to check and how to reach it (port/user None: ~/.ssh/config or ssh's default)."""

    name: str
    address: str
    port: int | None = None
    user: str | None = None
    identity_file: str | None = None
    jump_host: str | None = None
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    command_timeout_s: float = DEFAULT_COMMAND_TIMEOUT_S
    groups: tuple[str, ...] = ()
    expect: Expectations = field(default_factory=Expectations)
    thresholds: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    # expectation key -> where its value came from (see expect_source)
    expect_sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def expect_source(self, key: str) -> str:
        """Where the expectation ``key`` came from: ``inventory:<file> group <g>`` / ``host <h>`` / ``defaults``."""
        if key in self.expect_sources:
            return self.expect_sources[key]
        if self.expect.get(key) is not None:
            return "inventory"
        raise KeyError(f"node {self.name!r} has no expectation {key!r}")

    @property
    def proxy_command(self) -> str | None:
        """The ProxyCommand shell line (``%h %p %r`` not yet expanded) when ``jump_host`` carries one, else None."""
        if self.jump_host and self.jump_host.startswith(PROXY_COMMAND_PREFIX):
            return self.jump_host[len(PROXY_COMMAND_PREFIX):]
        return None


@dataclass(frozen=True)
class Inventory:
    path: str
    nodes: tuple[Node, ...]
    known_hosts: tuple[str, ...] = ()
    format: str = "preflight"  # "preflight" | "ansible"
    ssh_config: str | None = None  # an ssh_config file to use instead of ~/.ssh/config
    slurm: Mapping[str, Any] | None = None  # Slurm settings for multi-node tests (later issues)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n.name for n in self.nodes)

    @property
    def groups(self) -> tuple[str, ...]:
        """Every group some node belongs to, sorted."""
        return tuple(sorted({g for n in self.nodes for g in n.groups}))

    def select(self, patterns: str | None) -> Inventory:
        """The nodes matching a comma list of patterns, in inventory order.

        A pattern is a host name, a glob (``gpu-0*``), a range (``gpu-[00-63]``), a group
        (``@h100``, ``group:h100``, or a bare group name that is no host name; ``@all`` is
        everything); ``!pattern`` removes matches. A pattern matching nothing is an error.
        """
        if patterns is None or not str(patterns).strip():
            return self
        include: set[int] = set()
        exclude: set[int] = set()
        positive = False
        for token in hostpattern.split_list(str(patterns)):
            negate = token.startswith("!")
            body = token[1:].strip() if negate else token
            matched = self._match(body, token)
            if negate:
                exclude |= matched
            else:
                positive = True
                include |= matched
        if not positive:
            include = set(range(len(self.nodes)))
        chosen = tuple(n for i, n in enumerate(self.nodes) if i in include and i not in exclude)
        if not chosen:
            raise InventoryError(self.path, None, "select", f"selection {patterns!r} leaves no host")
        return dataclasses.replace(self, nodes=chosen)

    def _match(self, body: str, token: str) -> set[int]:
        groups = set(self.groups)
        group: str | None = None
        if body.startswith("@"):
            group = body[1:]
        elif body.startswith("group:"):
            group = body[len("group:"):]
        if group is not None:
            if group == "all":
                return set(range(len(self.nodes)))
            members = {i for i, n in enumerate(self.nodes) if group in n.groups}
            if not members:
                self._no_match(token, f"no group {group!r}", [f"@{g}" for g in groups], group)
            return members
        try:
            items = hostpattern.expand(body)
        except hostpattern.HostPatternError as exc:
            raise InventoryError(self.path, None, "select", f"bad pattern {token!r}: {exc}") from None
        index = {n.name: i for i, n in enumerate(self.nodes)}
        hits: set[int] = set()
        for item in items:
            if any(c in item for c in "*?"):
                hits |= {i for name, i in index.items() if fnmatch.fnmatchcase(name, item)}
            elif item in index:
                hits.add(index[item])
            elif item in groups:
                hits |= {i for i, n in enumerate(self.nodes) if item in n.groups}
            elif item == "all":
                hits |= set(range(len(self.nodes)))
        if not hits:
            self._no_match(token, "matches no host", list(index) + [f"@{g}" for g in groups], body)
        return hits

    def _no_match(self, token: str, what: str, known: list[str], probe: str) -> None:
        close = difflib.get_close_matches(probe, known, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        hosts = hostpattern.compress(self.names)
        if len(hosts) > 160:
            hosts = hosts[:157] + "..."
        groups = ", ".join(self.groups) or "none"
        raise InventoryError(self.path, None, "select",
                             f"pattern {token!r}: {what}{hint}; hosts: {hosts}; groups: {groups}")
