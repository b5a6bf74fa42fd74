"""Causes from kernel logs: Xid events and GPUs fallen off the bus, tied to the node (and, by PCI bus id, the
rank) they hit; repeated lines of one Xid on one node folded into one cause."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from preflight.hang.joined import JoinedInputs
from preflight.hang.lines import Evidence
from preflight.hang.sniff import HangFile
from preflight.hang.verdict_types import Cause, evidence_tuple
from preflight.parse.xid import describe_xid


@dataclass(frozen=True)
class Xid:
    """One Xid event (or a GPU fallen off the bus) with the node and, when its PCI bus id matches, the rank."""

    node: str | None
    code: int | None  # None for 'fallen off the bus' without an Xid
    name: str
    fatal: bool
    pci: str | None
    time: str | None
    evidence: str
    rank: int | None


def find_xids(world: JoinedInputs) -> list[Xid]:
    """Every Xid / fallen-off-the-bus line of every kernel log, its node named by the file path or the log."""
    hosts = sorted({r.host for r in world.nccl}, key=len, reverse=True)
    by_bus = {(r.host, r.bus_id[:10]): r.rank for r in world.nccl if r.bus_id and r.rank is not None}
    out: list[Xid] = []
    for path, f in world.files:
        if f.kernel is None:
            continue
        where = str(path)
        node = next((h for h in hosts if h in where), None) or f.kernel_host
        for x in f.kernel.xids:
            cat = describe_xid(x.code) or {}
            pci = x.pci[:10] if x.pci else None
            rank = by_bus.get((node, pci)) if node and pci else None
            out.append(Xid(node, x.code, str(cat.get("name") or "uncatalogued Xid"), bool(cat.get("fatal")), pci,
                       x.timestamp, _kline(path, f, x.raw_line), rank))
        for o in f.kernel.others:
            if o.kind != "fallen_off_bus":
                continue
            pci = o.device.lower()[:10] if o.device and ":" in o.device else None
            rank = by_bus.get((node, pci)) if node and pci else None
            out.append(Xid(node, None, "GPU has fallen off the bus", True, pci, o.timestamp,
                       _kline(path, f, o.raw_line), rank))
    return out


def _kline(path: Path, f: HangFile, raw: str) -> str:
    """A kernel-log event as one evidence line (a multi-line event flattened), numbered by its first line."""
    first = raw.split("\n")[0].strip()
    text = " ".join(part.strip() for part in raw.split("\n"))
    return str(Evidence(f.source, f.kernel_lines.get(first, 0), text[:300]))


def xid_phrase(x: Xid) -> str:
    """'node-3 logged Xid 79 (GPU has fallen off the bus) at ...': shared by Xid causes and watchdog titles."""
    what = f"Xid {x.code} ({x.name})" if x.code is not None else x.name
    when = f" at {x.time.strip('[] ')}" if x.time else ""
    return f"{x.node or 'a node'} logged {what}{when}"


def xid_causes(xids: list[Xid], folded: set[str | None]) -> list[Cause]:
    """One cause per Xid event, except on nodes in `folded` (a watchdog cause there already names the Xid)."""
    causes: list[Cause] = []
    for x in xids:
        if x.node in folded and x.node is not None:
            continue
        who = f" on the GPU that rank {x.rank} uses" if x.rank is not None else (f" (GPU {x.pci})" if x.pci else "")
        causes.append(Cause(0.8 if x.fatal else 0.45, xid_phrase(x) + who, x.rank, x.node, (x.evidence,),
                            f"drain {x.node or 'the node'}; ssh {x.node or '<node>'} 'nvidia-smi -q"
                            + (f" -i {x.pci}" if x.pci else "") + "; dmesg -T | grep -i xid'", "xid",
                            (x.rank,) if x.rank is not None else ()))
    return causes


def dedupe_xid(causes: list[Cause]) -> list[Cause]:
    """Repeated Xid lines of one code on one node are one cause (the first line kept, the rest as evidence)."""
    out: list[Cause] = []
    seen: dict[tuple[str | None, str], int] = {}
    for c in causes:
        if c.kind != "xid":
            out.append(c)
            continue
        key = (c.node, c.title.split(" at ")[0])
        if key in seen:
            i = seen[key]
            out[i] = Cause(out[i].score, out[i].title, out[i].rank, out[i].node,
                           evidence_tuple(out[i].evidence + c.evidence), out[i].next_command, out[i].kind, out[i].ranks)
            continue
        seen[key] = len(out)
        out.append(c)
    return out
