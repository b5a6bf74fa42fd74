"""NCCL RAS in `preflight hang`: which node to ask, and the RAS report joined to the gathered ranks.

NCCL >= 2.24 runs a RAS thread in every job process; any one of them answers for the whole job on its RAS client
socket (NCCL_RAS_ADDR, default localhost:28028; the `ncclras` client speaks to it). `preflight hang` asks once,
from the node of the lowest rank it found, after the sweep (collector probe `ncclras`). RAS names processes by
the address of their node and their pid; the gather knows each rank's pid on each node, so a RAS rank or process
is joined to the node and GPU the gather saw it on. Pure: bundle in, causes out.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.causes.ras import ras_causes
from preflight.hang.ncclras import RasReport, parse_ras
from preflight.hang.verdict_types import Cause, evidence_tuple

RAS_PROBE = "ncclras"
RAS_MIN_VERSION = (2, 24)
_VERSION = re.compile(r"NCCL version (\d+)\.(\d+)\.(\d+)")


def ras_target(bundle: Bundle, ranks: Iterable[Any]) -> tuple[str | None, dict[str, Any], str]:
    """(node, the probe's `ras` config, why): the node of the lowest rank, the RAS address its environment sets.
    node None when RAS cannot answer: no rank, NCCL_RAS_ENABLE=0, or an NCCL older than 2.24 in its debug log."""
    live = sorted((r for r in ranks if r.rank is not None), key=lambda r: r.rank)
    if not live:
        return None, {}, "no rank found: nothing to ask RAS about"
    first = live[0]
    env = first.nccl_env
    if str(env.get("NCCL_RAS_ENABLE", "1")).strip() == "0":
        return None, {}, f"rank {first.rank} runs with NCCL_RAS_ENABLE=0"
    version = _job_version(bundle)
    if version is not None and version[:2] < RAS_MIN_VERSION:
        return None, {}, f"the job's NCCL {'.'.join(map(str, version))} has no RAS (2.24 and later)"
    cfg = {"timeout_s": 5, "addr": env.get("NCCL_RAS_ADDR") or "localhost:28028"}
    return first.node, cfg, f"asked on {first.node} (rank {first.rank}) at {cfg['addr']}"


def _job_version(bundle: Bundle) -> tuple[int, ...] | None:
    """The NCCL version the job's debug-file tails print (the first found), None when none does."""
    for raw in bundle.nodes:
        text = (raw.probe("job_procs") or {}).get("stdout") or ""
        try:
            doc = json.loads(text) if text.strip().startswith("{") else {}
        except ValueError:
            doc = {}
        for proc in (doc.get("processes") or []) if isinstance(doc, dict) else []:
            dbg = proc.get("nccl_debug_file") if isinstance(proc, dict) else None
            m = _VERSION.search(dbg.get("tail") or "") if isinstance(dbg, dict) else None
            if m:
                return tuple(int(x) for x in m.groups())
    return None


def ras_report(raw: NodeRaw) -> tuple[RasReport | None, str]:
    """The RAS report a node's `ncclras` probe brought back, or None with why (not asked, no answer, unparseable)."""
    p = raw.probe(RAS_PROBE)
    if p is None:
        return None, ""
    text = p.get("stdout") or ""
    if p.get("error") or not text.strip():
        return None, f"ncclras on {raw.name}: {p.get('error') or 'no output'} {(p.get('stderr') or '')[:200]}".strip()
    rep = parse_ras(text, f"{raw.name}: ncclras")
    if not isinstance(rep, RasReport):
        return None, f"ncclras on {raw.name}: {rep.reason}"
    return rep, ""


def ras_live_causes(bundle: Bundle, ranks: list[Any]) -> tuple[list[Cause], list[str]]:
    """RAS causes with RAS's (address, pid) joined to the gathered node, rank and GPU; notes on what RAS said."""
    causes: list[Cause] = []
    notes: list[str] = []
    for raw in bundle.nodes:
        rep, why = ras_report(raw)
        if why:
            notes.append(why)
        if rep is None:
            continue
        if rep.healthy:
            notes.append(f"ncclras on {raw.name}: every communicator RUNNING / OK (RAS counts launched operations: "
                         "a launched collective that never completes does not show)")
        where = _node_of(rep, bundle, ranks)
        causes += [_joined(c, where, ranks) for c in ras_causes([rep])]
    return causes, notes


def _pids(rep: RasReport) -> list[tuple[int, str]]:
    out = [(p.pid, p.node) for p in rep.processes]
    groups = [g for m in rep.mismatches for g in m.groups]
    for r in [r for inc in rep.incomplete for r in inc.ranks] + [r for g in groups for r in g.ranks]:
        if r.pid is not None and r.node:
            out.append((r.pid, r.node))
    return out


def _node_of(rep: RasReport, bundle: Bundle, ranks: list[Any]) -> dict[str, str]:
    """RAS node address -> the gathered node: by the node's address, else by a pid only that node runs."""
    addrs = Counter(raw.address for raw in bundle.nodes if raw.address)
    out = {raw.address: raw.name for raw in bundle.nodes if raw.address and addrs[raw.address] == 1}  # unique only
    by_pid: dict[int, set[str]] = {}
    for r in ranks:
        by_pid.setdefault(r.pid, set()).add(r.node)
    for pid, addr in _pids(rep):
        nodes = by_pid.get(pid, set())
        if addr not in out and len(nodes) == 1:
            out[addr] = next(iter(nodes))
    return out


def _joined(c: Cause, where: dict[str, str], ranks: list[Any]) -> Cause:
    """The cause on the gathered node (RAS's address kept in the title), with the live rank's line as evidence."""
    if not c.node or c.node not in where:
        if c.node:
            return replace(c, title=c.title + f" ({c.node} is not one of the gathered nodes' addresses)")
        return c
    name = where[c.node]
    pids = {int(m) for m in re.findall(r"process (\d+)", " ".join(c.evidence))}
    live = [r for r in ranks if r.node == name and (r.pid in pids or (r.rank is not None and r.rank in c.ranks))]
    extra = [f"{r.node}: pid {r.pid} RANK={r.rank} GPU {r.gpu} state {r.state or '?'} (gathered)" for r in live[:4]]
    title = c.title.replace(f"on {c.node}", f"on {name} ({c.node})")
    return replace(c, node=name, title=title, evidence=evidence_tuple(list(c.evidence[:1]) + extra + list(c.evidence[1:])),
                   next_command=c.next_command.replace(f"ssh {c.node} ", f"ssh {name} "))
