"""Grey links from `mlxlink -m -c` in `preflight hang` (the collector's `mlxlink` probe, part of every gather): a
port that still reads Active while its post-FEC errors, link downs, retrainings or a hot module stall or slow every
collective crossing it. One cause per port over a threshold (preflight/ib_link.py: the thresholds and their
sources), naming node, device, port, the numbers and the action; a node without mlxlink, a port mlxlink did not
answer for and a port whose output lacks a section are notes (not judged), never a healthy link. Pure: bundle in.
"""

from __future__ import annotations

import shlex

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.verdict_types import Cause
from preflight.ib_link import LinkFinding, judge_port
from preflight.parse.common import Unparseable
from preflight.parse.mlxlink import MlxlinkPort, ports_from_probe


def node_ports(raw: NodeRaw) -> tuple[dict[str, MlxlinkPort | Unparseable], str | None]:
    """Per port ('mlx5_0/1') the parsed mlxlink output or why not; and why there is nothing at all, if so."""
    return ports_from_probe(raw.probe("mlxlink"), shell=(raw.collector or {}).get("mode") == "shell")


def link_quality_causes(bundle: Bundle) -> tuple[list[Cause], list[str]]:
    """One cause per port that crosses a threshold (fail: 0.8, warn: 0.5); notes for nodes or ports not judged."""
    causes: list[Cause] = []
    notes: list[str] = []
    unseen: dict[str, list[str]] = {}
    for raw in bundle.nodes:
        if raw.outcome != "ok":
            continue
        ports, why = node_ports(raw)
        if why and why not in ("mlxlink not asked", "no /sys/class/infiniband"):
            unseen.setdefault(why, []).append(raw.name)
        for key, port in ports.items():
            if isinstance(port, Unparseable):
                notes.append(f"mlxlink on {raw.name} {key}: could not judge ({port.reason})")
                continue
            found = judge_port(port)
            if found:
                causes.append(_cause(raw.name, key, port, found))
            elif port.missing:
                notes.append(f"mlxlink on {raw.name} {key}: nothing over a threshold in what it showed; "
                             f"not seen: {'; '.join(port.missing)}")
    notes += [f"{why} on {', '.join(sorted(names))}: their links' BER, module temperature and link-down counters "
              f"were not read (not judged)" for why, names in sorted(unseen.items())]
    return causes, notes


def _cause(node: str, key: str, port: MlxlinkPort, found: list[LinkFinding]) -> Cause:
    dev, _, num = key.partition("/")
    fail = any(f.level == "fail" for f in found)
    level = "fail" if fail else "warn"
    what = "; ".join(f.what for f in found)
    title = (f"{level}: {dev} port {num} on {node} ({port.speed or 'speed not shown'}, {port.state or 'state not shown'}"
             f"): grey link: {what}")
    evidence = tuple(f"{node}: {key}: {f.what} [threshold: {f.source}]" for f in found)
    evidence += (f"{node}: {key}: module {port.identifier or '?'} {port.part_number or ''} {port.cable_type or ''}, "
                 f"FEC {port.fec or 'not shown'}, raw BER {_ber(port.raw_ber)}, effective BER {_ber(port.effective_ber)}"
                 .replace("  ", " "),)
    actions = "; ".join(dict.fromkeys(f.action for f in found))
    q = shlex.quote
    check = (f"ssh {q(node)} " + q(f"mlxlink -d {dev} -p {num} -m -c")
             + f"  ({actions}; then clear with `mlxlink -d {dev} -p {num} --clear_counters` (or `ibdiagnet --pc`), "
             f"let traffic run 5-10 min and run `mlxlink -d {dev} -p {num} -c` again; drain {node} if it persists)")
    return Cause(0.8 if fail else 0.5, title, None, node, evidence, check, "link_quality")


def _ber(value: float | None) -> str:
    if value is None:
        return "not shown"
    return "0 (none counted)" if value == 0 else f"{value:.0E}"
