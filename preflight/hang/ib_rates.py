"""Grey InfiniBand failures in `preflight hang`: error counters judged as rates, not totals since boot.

A link whose symbol errors or link recoveries rise *now* stalls or slows every collective that crosses it while
the port still reads Active. Totals since boot cannot tell an old, healed burst from a failing cable; two reads can.
Two sources of two reads:

- `ib_traffic` (every gather): the port counters read twice `--ib-interval` seconds apart on the node
  (symbol_error, port_rcv_errors, link_downed; link_downed is judged by gather.py);
- `hang --sweeps N` (N >= 2): the `ib_sysfs` counters of the first sweep (kept in the bundle's options as
  `ib_first_sweep`) against the last sweep's, over the time between them (symbol_error, link_error_recovery,
  port_rcv_errors).

Thresholds: any rise warns; a rise of 10 or more fails. 10 is the value infiniband-diags' ibqueryerrors(8) gives
for SymbolErrorCounter and LinkErrorRecoveryCounter in its error_thresholds example, a count it applies since the
last counter clear; reached within seconds of a gather it is far past it. Pure: bundle in, causes out.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.verdict_types import Cause

RISE_FAIL = 10  # ibqueryerrors(8) error_thresholds example: SymbolErrorCounter=10, LinkErrorRecoveryCounter=10
WATCHED = ("symbol_error", "link_error_recovery", "port_rcv_errors")
MEANING = {"symbol_error": "symbol errors (bit errors on the wire: cable, transceiver, dirty connector)",
           "link_error_recovery": "link error recoveries (the link retrained: each stalls its traffic)",
           "port_rcv_errors": "receive errors (malformed packets arriving)"}
SWEEP_KEY = "ib_first_sweep"


@dataclass(frozen=True)
class Rise:
    node: str
    port: str
    counter: str
    before: int
    after: int
    seconds: float
    source: str  # 'ib_traffic' | 'sweeps'

    @property
    def delta(self) -> int:
        return self.after - self.before

    @property
    def per_min(self) -> float:
        return self.delta * 60.0 / self.seconds if self.seconds > 0 else float(self.delta)


def _json(raw: NodeRaw, probe: str) -> dict[str, Any]:
    p = raw.probe(probe) or {}
    text = p.get("stdout") or ""
    if p.get("error") or not text.strip().startswith("{"):
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _num(v: Any) -> int | None:
    try:
        return int(str(v).strip())
    except (TypeError, ValueError):
        return None


def sysfs_counters(raw: NodeRaw) -> dict[str, dict[str, int]]:
    """'mlx5_0/1' -> {counter: value} from the ib_sysfs probe (what `hang --sweeps` keeps of the first sweep)."""
    out: dict[str, dict[str, int]] = {}
    for dev, entry in _json(raw, "ib_sysfs").items():
        for port, attrs in ((entry or {}).get("ports") or {}).items() if isinstance(entry, dict) else ():
            counters = (attrs or {}).get("counters") or {} if isinstance(attrs, dict) else {}
            vals = {k: n for k in WATCHED + ("link_downed",) if (n := _num(counters.get(k))) is not None}
            if vals:
                out[f"{dev}/{port}"] = vals
    return out


def first_sweep(bundle: Bundle) -> dict[str, Any]:
    """What `hang --sweeps` keeps of the first sweep: per node its start time and ib_sysfs counters."""
    return {raw.name: {"t": raw.started, "ports": sysfs_counters(raw)} for raw in bundle.nodes
            if raw.outcome == "ok" and sysfs_counters(raw)}


def rises(bundle: Bundle) -> list[Rise]:
    """Every watched counter that went up, from the longest window each node has (sweeps, else ib_traffic)."""
    kept = bundle.options.get(SWEEP_KEY) if isinstance(bundle.options, dict) else None
    out: list[Rise] = []
    for raw in bundle.nodes:
        if raw.outcome != "ok":
            continue
        first = (kept or {}).get(raw.name) if isinstance(kept, dict) else None
        now = sysfs_counters(raw)
        if isinstance(first, dict) and now and isinstance(first.get("ports"), dict):
            secs = max(0.0, float(raw.started) - float(first.get("t") or raw.started))
            out += _diff(raw.name, first["ports"], now, secs, "sweeps")
            continue
        doc = _json(raw, "ib_traffic")
        if isinstance(doc.get("first"), dict) and isinstance(doc.get("second"), dict):
            out += _diff(raw.name, doc["first"], doc["second"], float(doc.get("interval_s") or 0), "ib_traffic")
    return out


def _diff(node: str, before: dict[str, Any], after: dict[str, Any], secs: float, source: str) -> list[Rise]:
    out = []
    for port, vals in sorted(before.items()):
        now = after.get(port)
        if not isinstance(vals, dict) or not isinstance(now, dict):
            continue
        for k in WATCHED:
            a, b = _num(vals.get(k)), _num(now.get(k))
            if a is not None and b is not None and b > a:
                out.append(Rise(node, str(port), k, a, b, secs, source))
    return out


def ib_rate_causes(bundle: Bundle) -> list[Cause]:
    """One cause per port whose error counters rise: fail at >= RISE_FAIL in the window, else warn."""
    by_port: dict[tuple[str, str], list[Rise]] = {}
    for r in rises(bundle):
        by_port.setdefault((r.node, r.port), []).append(r)
    out = []
    for (node, port), rs in sorted(by_port.items()):
        worst = max(rs, key=lambda r: (r.delta >= RISE_FAIL, r.counter == "link_error_recovery", r.delta))
        fail = any(r.delta >= RISE_FAIL for r in rs)
        what = "; ".join(f"{r.counter} +{r.delta} in {r.seconds:.1f} s ({r.per_min:.1f}/min)" for r in rs)
        verdict = "fail" if fail else "warn"
        title = (f"{verdict}: IB port {port} on {node}: {MEANING[worst.counter]} rising now: {what} "
                 f"(fail at +{RISE_FAIL} in the window, ibqueryerrors' threshold)")
        ev = tuple(f"{node}: {port} {r.counter} {r.before} -> {r.after} over {r.seconds:.1f} s "
                   f"({'first vs last sweep' if r.source == 'sweeps' else 'two reads of ib_traffic'})" for r in rs)
        dev = port.split("/")[0]
        cmd = (f"ssh {shlex.quote(node)} " + shlex.quote(f"mlxlink -d {dev} -m -c -e; perfquery -x; "
               f"cat /sys/class/infiniband/{dev}/ports/*/counters/{{symbol_error,link_error_recovery}}")
               + "  (module temperature, pre-/post-FEC BER; reseat or replace the cable/transceiver; drain the node"
               " if it keeps rising)")
        out.append(Cause(0.82 if fail else 0.55, title, None, node, ev, cmd, "live_ib_errors_rising"))
    return out
