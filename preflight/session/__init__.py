"""A live run, the layer under both the CLI and the TUI: inventory nodes in, a bundle out.

It owns what a run needs between "which nodes" and "judge": the request (`LiveRequest`), one stop
event, the transport's connection pool when connections are kept, the expectations attached to each
node's result (once, `attach_expectations`), and a `FactsCache` that parses each node while the others
still answer, so `engine.judge(bundle, cache=...)` finds the facts ready.

This module never imports the transport: the request carries it (`LiveRequest.options` is a
`preflight.transport.fanout.FanoutOptions`, which fans out and makes connection pools), chosen where
the request is made (`preflight.session.request`, called by the CLI). So the TUI, which imports this
module, loads neither paramiko nor fabric, and `import preflight.tui.app` stays light.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import gc
import hashlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from preflight import __version__
from preflight.collect.bundle import Bundle, BundleWriter, NodeRaw
from preflight.collect.script import build_script, select_probes
from preflight.engine import FactsCache
from preflight.facts import NodeFacts
from preflight.parse.node import build_node_facts, is_text_key

Event = Callable[[str, str, NodeRaw | None], None]  # (kind, node name, result), kind: started | finished
LOCAL_ADDRESSES = ("local", "localhost-local")


class Node(Protocol):
    """What the session reads of an inventory node (`preflight.inventory.Node`, a frozen dataclass: read-only)."""

    @property
    def name(self) -> str: ...
    @property
    def address(self) -> str: ...
    @property
    def command_timeout_s(self) -> float: ...
    @property
    def expect(self) -> Any: ...  # preflight.inventory.Expectations
    @property
    def thresholds(self) -> Any: ...


class Transport(Protocol):
    """How nodes are reached: `FanoutOptions` (SSH, or the controller itself for `local`)."""

    @property
    def forks(self) -> int: ...

    @property
    def ssh(self) -> Any: ...

    def fan_out(self, nodes: Sequence[Any], script: str, on_event: Event | None = None) -> list[NodeRaw]: ...

    def connection_pool(self) -> Any: ...


@dataclass(frozen=True)
class LiveRequest:
    """What a live run needs, resolved before any SSH (`preflight.session.request.live_request`)."""

    nodes: tuple[Node, ...]
    options: Transport  # FanoutOptions
    include_optional: tuple[str, ...]
    inventory_path: str | None
    save: str | None
    slurm: bool = False  # the inventory has a `slurm:` section (launchers default to srun)
    active: dict[str, Any] = field(default_factory=dict)  # --level's tests: {level, budget_s, force}
    shard: dict[str, Any] | None = None  # --shard K/N: its record (inventory/shard.py), saved in the bundle's options
    peers: tuple[str, ...] | None = None  # peer names to resolve when not the nodes' own (a shard: the whole selection's)


def expectations_of(node: Node) -> tuple[dict[str, Any], dict[str, str]]:
    """(expect, where each key came from) of an inventory node, as a bundle records them."""
    expect = node.expect.as_dict() if hasattr(node.expect, "as_dict") else dict(node.expect or {})
    sources: dict[str, str] = {}
    for key in expect:
        try:
            sources[key] = node.expect_source(key)  # type: ignore[attr-defined]
        except Exception:  # an inventory without provenance still works
            sources[key] = "inventory"
    for key, src in dict(getattr(node, "expect_sources", None) or {}).items():
        if key.startswith("accept."):  # who accepted each gap
            sources[key] = src
    return expect, sources


def attach_expectations(raw: NodeRaw, node: Node) -> NodeRaw:
    """Put the inventory's expectations and thresholds on a node's result: judging compares against them."""
    raw.expect, raw.expect_sources = expectations_of(node)
    raw.thresholds = {k: dict(v) for k, v in dict(getattr(node, "thresholds", {}) or {}).items()}
    return raw


def peer_names(nodes: Sequence[Node]) -> tuple[str, ...]:
    """Host names the inventory reaches nodes by (IP literals and `local` need no resolving)."""
    names = []
    for n in nodes:
        try:
            ipaddress.ip_address(n.address)
            continue
        except ValueError:
            pass
        if n.address not in LOCAL_ADDRESSES:
            names.append(n.address)
    return tuple(sorted(set(names)))


class _Recent(dict[Any, Any]):
    """A parse memo (`build_node_facts(raw, memo)`) holding the last few parses only: it keys on whole documents
    and probe texts, so an unbounded one would keep every distinct node's raw output alive.

    Two kinds of entry share it: a whole document's parse, and one probe text's parse (`parse.node.is_text_key`,
    ~20 a document). Each kind is evicted on its own, oldest first: with one
    bound for both, a document's own probe entries pushed its parse out before the next node could use it."""

    def __init__(self, keep: int, keep_texts: int = 128) -> None:
        super().__init__()
        self.keep = keep
        self.keep_texts = keep_texts
        self._docs: collections.deque[Any] = collections.deque()
        self._texts: collections.deque[Any] = collections.deque()

    def __setitem__(self, key: Any, value: Any) -> None:
        order, bound = (self._texts, self.keep_texts) if is_text_key(key) else (self._docs, self.keep)
        if key not in self:
            while len(order) >= bound:
                self.pop(order.popleft(), None)
            order.append(key)
        super().__setitem__(key, value)


class RunFacts(FactsCache):
    """The session's facts cache: each node parsed as it answers, keeping no collector document alive.

    engine.FactsCache keeps each parsed node's document (its identity is the key); this one keys on
    `raw.facts_key()`, whose document part is a serial number that survives `NodeRaw.drop_collector`, so a node
    whose raw output was let go after parsing (`LiveSession(drop_raw=True)`) is still judged on exactly the
    facts parsed from it. A dropped node is never parsed again: with only its expectations or thresholds
    changed since (the one input parsing reads of them, `gpus_per_node` and its source, unchanged) its facts
    get the new ones; anything else is a bug, raised, never a node judged on nothing.

    Nodes whose documents are equal (the judge's own rule, `parse.node._doc_key`: every probe field but its
    duration, in order and with types) are parsed once, as `judge(share_parses=True)` does; the memo keeps the
    last 8 documents' parses (nodes of one kind answer together), so it never holds a fleet's raw output.
    """

    def __init__(self) -> None:
        super().__init__()
        self._parsed: dict[str, tuple[tuple[Any, ...], NodeFacts]] = {}  # one dict op at a time: GIL-safe
        self._memo = _Recent(8)

    def add(self, raw: NodeRaw) -> None:
        """Parse now; a node that fails to parse is left for `judge` to parse (and report) again."""
        try:
            self._parsed[raw.name] = (raw.facts_key(), build_node_facts(raw, self._memo))
        except Exception:
            self._parsed.pop(raw.name, None)

    def has(self, raw: NodeRaw) -> bool:
        """True when the facts of this raw, as it is now, are parsed."""
        hit = self._parsed.get(raw.name)
        return hit is not None and hit[0] == raw.facts_key()

    def facts(self, raw: NodeRaw, memo: dict[Any, Any] | None = None) -> NodeFacts:
        hit = self._parsed.get(raw.name)
        if hit is not None and hit[0] == raw.facts_key():
            return hit[1]
        if not raw.dropped:
            return build_node_facts(raw, memo)
        parsed = hit[1] if hit is not None and hit[0][:2] == raw.facts_key()[:2] else None  # same document, outcome
        if parsed is None or parsed.expect.get("gpus_per_node") != raw.expect.get("gpus_per_node") \
                or parsed.expect_sources.get("gpus_per_node") != raw.expect_sources.get("gpus_per_node"):
            raise RuntimeError(f"{raw.name}: its raw output was dropped after parsing and the facts parsed from it "
                               "no longer apply; a run that changes a node after collecting must keep raw outputs")
        return dataclasses.replace(parsed, expect=dict(raw.expect), expect_sources=dict(raw.expect_sources),
                                   thresholds=dict(raw.thresholds))


_sweeps_lock = threading.Lock()
_sweeps = 0  # sweeps running now (the TUI may run two): the first sets the threshold, the last puts it back
_saved_threshold: tuple[int, ...] = ()


@contextlib.contextmanager
def _young_collections_rarer(threshold0: int = 20_000) -> Iterator[None]:
    """A sweep allocates many short-lived objects per node (paramiko's packets and messages, each answer's
    document): with the default threshold (700) the cyclic collector runs a young collection every few packets
    and a full one over the whole heap (every node answered so far) ever more often: ~5 % of a sweep's CPU. It
    still runs, only after 20,000 allocations, so paramiko's reference cycles are still freed."""
    global _sweeps, _saved_threshold
    with _sweeps_lock:
        if _sweeps == 0:
            _saved_threshold = gc.get_threshold()
            if _saved_threshold[0] and _saved_threshold[0] < threshold0:
                gc.set_threshold(threshold0, *_saved_threshold[1:])
        _sweeps += 1
    try:
        yield
    finally:
        with _sweeps_lock:
            _sweeps -= 1
            if _sweeps == 0 and _saved_threshold:
                gc.set_threshold(*_saved_threshold)


def collect(
    nodes: Sequence[Node],
    options: Transport,
    *,
    inventory_path: str | None = None,
    include_optional: tuple[str, ...] = (),
    on_event: Event | None = None,
    only: tuple[str, ...] | None = None,
    job: dict[str, Any] | None = None,
    cache: FactsCache | None = None,
    active: dict[str, Any] | None = None,
    peers: tuple[str, ...] | None = None,
    save: str | None = None,
    drop_raw: bool = False,
    shard: dict[str, Any] | None = None,
) -> Bundle:
    """One sweep: the script built once, fanned out, each result given its expectations as it arrives.

    `only` restricts the probes to these ids (the hang gather); `job` is its settings (pattern, py-spy,
    interval). With a `cache`, each node is parsed as soon as it answers (the fan-out thread would only
    wait), so judging after the last node has nothing left to parse. `save`: the bundle is streamed there
    node by node as they answer (`BundleWriter`). `drop_raw` (with a `RunFacts` cache): once a node is
    parsed (and written), its collector document is let go; a node that did not parse keeps it, so judging
    parses and reports it as before.
    """
    ngpus = max((int(n.expect.gpus_per_node or 0) for n in nodes if getattr(n.expect, "gpus_per_node", None)), default=8)
    probes = [p for p in select_probes(include_optional) if only is None or p.id in only]
    script = build_script(probes, ngpus=ngpus, deadline_s=max((n.command_timeout_s for n in nodes), default=120.0),
                          peers=(peer_names(nodes) if peers is None else peers) if only is None else (), job=job,
                          active=active)
    started = time.time()
    by_name = {n.name: n for n in nodes}
    attached: set[str] = set()
    shell = Bundle(nodes=[], created=started, tool_version=__version__, inventory=_inventory_doc(inventory_path),
                   options={"forks": options.forks, "probes": [p.id for p in probes], **({"job": dict(job)} if job else {}),
                            **({"shard": dict(shard)} if shard else {}),
                            "accept_new_hostkeys": options.ssh.accept_new_hostkeys})
    writer = BundleWriter(save, shell.header()) if save else None
    dropping = drop_raw and isinstance(cache, RunFacts) and only is None

    def finished(kind: str, name: str, raw: NodeRaw | None) -> None:
        if kind == "finished" and raw is not None and name in by_name:
            attach_expectations(raw, by_name[name])
            attached.add(name)
            if cache is not None and only is None:
                cache.add(raw)
            if writer is not None:
                writer.add(raw)
            if dropping and isinstance(cache, RunFacts) and cache.has(raw):
                raw.drop_collector()
        if on_event is not None:
            on_event(kind, name, raw)

    try:
        with _young_collections_rarer():
            raws = options.fan_out(nodes, script, on_event=finished)
        for node, raw in zip(nodes, raws):
            if node.name not in attached:  # the fan-out reports every node; this is the guard if one did not
                attach_expectations(raw, node)
            if writer is not None and raw.name not in writer:
                writer.add(raw)
        if writer is not None:
            writer.close([raw.name for raw in raws])
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    shell.nodes = raws
    return shell


def _inventory_doc(path: str | None) -> dict[str, Any]:
    inv: dict[str, Any] = {"path": path}
    if path and Path(path).is_file():
        inv["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return inv


class LiveSession:
    """One live run's machinery, shared by every sweep: a stop event, kept connections, parsed facts.

    `keep_connections`: later sweeps (the TUI re-running a node, `preflight hang --sweeps`) reuse the
    open SSH connections. Close the session (or use it as a context manager) to stop the fan-out at
    once and end the connections; nothing it started keeps the process alive.
    """

    def __init__(self, request: LiveRequest, *, keep_connections: bool = False, drop_raw: bool = False,
                 stream_save: bool = False) -> None:
        """`drop_raw`: a node's collector document is let go once it is parsed (`preflight run` without
        --timings: nothing after judging reads raw outputs); `stream_save`: each sweep streams its bundle to
        the request's `save` path as nodes answer (`Bundle`s returned then hold dropped nodes: save nothing
        from them again)."""
        self.request = request
        self.stop = threading.Event()
        self.pool: Any = request.options.connection_pool() if keep_connections else None
        self.facts = RunFacts()
        self.drop_raw = drop_raw
        self.stream_save = stream_save

    def collect(self, names: Iterable[str] | None = None, *, on_event: Event | None = None,
                only: tuple[str, ...] | None = None, job: dict[str, Any] | None = None,
                include_optional: tuple[str, ...] | None = None) -> Bundle:
        """One sweep over the request's nodes (or those named), parsing each node as it answers."""
        req = self.request
        wanted = None if names is None else set(names)
        nodes = [n for n in req.nodes if wanted is None or n.name in wanted]
        options = dataclasses.replace(req.options, stop=self.stop, pool=self.pool)  # type: ignore[type-var]
        extra = req.include_optional if include_optional is None else include_optional
        bundle = collect(nodes, options, inventory_path=req.inventory_path, include_optional=extra,
                         on_event=on_event, only=only, job=job, cache=self.facts,
                         active=req.active if only is None else None, peers=req.peers,
                         save=req.save if self.stream_save else None, drop_raw=self.drop_raw,
                         shard=req.shard)  # which slice of which selection: `preflight merge` joins the shards
        return bundle

    def close(self) -> None:
        self.stop.set()
        if self.pool is not None:
            self.pool.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["Event", "LiveRequest", "LiveSession", "Node", "RunFacts", "Transport", "attach_expectations", "collect",
           "expectations_of", "peer_names"]
