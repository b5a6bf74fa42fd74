"""A live run: inventory in, bundle out (collection only; judging is engine.judge)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from preflight import __version__
from preflight.collect.bundle import Bundle, NodeRaw
from preflight.collect.script import build_script, select_probes
from preflight.transport.fanout import Event, FanoutOptions, collect_fleet


def _expect_of(node: Any) -> tuple[dict[str, Any], dict[str, str]]:
    expect = node.expect.as_dict() if hasattr(node.expect, "as_dict") else dict(node.expect or {})
    sources: dict[str, str] = {}
    for key in expect:
        try:
            sources[key] = node.expect_source(key)
        except Exception:  # an inventory without provenance still works
            sources[key] = "inventory"
    for key, src in dict(getattr(node, "expect_sources", None) or {}).items():
        if key.startswith("accept."):  # who accepted each gap
            sources[key] = src
    return expect, sources


def peer_names(nodes: Sequence[Any]) -> tuple[str, ...]:
    """Host names the inventory reaches nodes by (IP literals and `local` need no resolving)."""
    import ipaddress

    names = []
    for n in nodes:
        try:
            ipaddress.ip_address(n.address)
            continue
        except ValueError:
            pass
        if n.address not in ("local", "localhost-local"):
            names.append(n.address)
    return tuple(sorted(set(names)))


def prebuild_facts(raw: NodeRaw) -> None:
    """Parse one node's facts now and keep them on the (unsaved) raw for engine.judge."""
    from preflight.parse.node import build_node_facts

    try:
        raw._prebuilt = (raw.facts_key(), build_node_facts(raw))  # type: ignore[attr-defined]
    except Exception:  # judge parses it again and reports whatever went wrong there
        pass


def collect(
    nodes: Sequence[Any],
    options: FanoutOptions,
    *,
    inventory_path: str | None = None,
    include_optional: tuple[str, ...] = (),
    on_event: Event | None = None,
    only: tuple[str, ...] | None = None,
    job: dict[str, Any] | None = None,
) -> Bundle:
    """`only` restricts the probes to these ids (the hang gather); `job` is its settings (pattern, py-spy, interval)."""
    ngpus = max((int(n.expect.gpus_per_node or 0) for n in nodes if getattr(n.expect, "gpus_per_node", None)), default=8)
    probes = [p for p in select_probes(include_optional) if only is None or p.id in only]
    script = build_script(probes, ngpus=ngpus, deadline_s=max((n.command_timeout_s for n in nodes), default=120.0),
                          peers=peer_names(nodes) if only is None else (), job=job)
    started = time.time()
    by_name = {n.name: n for n in nodes}

    def _attach(node: Any, raw: NodeRaw) -> None:
        raw.expect, raw.expect_sources = _expect_of(node)
        raw.thresholds = {k: dict(v) for k, v in dict(getattr(node, "thresholds", {}) or {}).items()}

    def finished(kind: str, name: str, raw: NodeRaw | None) -> None:
        # parse each node while the others are still answering (the fan-out thread would only wait);
        # engine.judge reuses these facts, so the parse after the last node is gone from the wall time
        if kind == "finished" and raw is not None and name in by_name and only is None:
            _attach(by_name[name], raw)
            prebuild_facts(raw)
        if on_event is not None:
            on_event(kind, name, raw)

    raws: list[NodeRaw] = collect_fleet(nodes, script, options, on_event=finished)
    for node, raw in zip(nodes, raws):
        _attach(node, raw)
    inv: dict[str, Any] = {"path": inventory_path}
    if inventory_path and Path(inventory_path).is_file():
        inv["sha256"] = hashlib.sha256(Path(inventory_path).read_bytes()).hexdigest()
    return Bundle(
        nodes=raws,
        created=started,
        tool_version=__version__,
        inventory=inv,
        options={"forks": options.forks, "probes": [p.id for p in probes], **({"job": dict(job)} if job else {}),
                 "accept_new_hostkeys": options.ssh.accept_new_hostkeys},
    )
