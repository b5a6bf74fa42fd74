"""Grey links from `mlxlink -m -c` (the collector's `mlxlink` probe): a port that still reads Active while its
post-FEC errors, link downs, retrainings or a hot module stall or slow every collective crossing it.

Thresholds, each with its source (also in preflight/data/reference/thresholds.md):

- Effective (post-FEC) BER worse than 1E-12 fails: ibdiagnet's BER test threshold ("default threshold=10^-12",
  NVIDIA ibdiagnet User Manual, Bit Error Rate (BER)), the IBTA compliant-link BER NVIDIA's NVSentinel NIC health
  monitor cites ("Failed (Fatal) > 10E-12"). On a link without FEC the raw BER is what arrives, judged the same.
- Any effective physical error below that warns: they are "the actual errors seen by the application level after
  error correction" (same ibdiagnet page).
- Raw (pre-FEC) BER worse than 2.4E-4 fails on a link with FEC: "The IEEE standards require all links involving
  50G/100G PAM4 to achieve a pre-FEC Bit Error Rate (BER) of 2.4E-04 or better" (Dell KB 000286734, Mellanox
  ConnectX-6 Dx). Below it a raw BER is expected on PAM4 (NVSentinel: "non-zero raw BER is expected").
- Module temperature at or above the module's own high threshold (the `[low..high]` mlxlink -m prints beside the
  temperature) fails.
- Link Down Counter or Link Error Recovery Counter above 0 since the counters were last cleared warns, with the
  rate over that time: NVSentinel treats any link_downed increment as fatal and link_error_recovery above 5/min
  as degradation, but one read cannot tell an old, healed burst from now (the sysfs counters' rise between two
  reads is ib_rates.py's).
- mlxlink's own Troubleshooting Recommendation, when it is not "No issue was observed", warns, quoted.

A port whose output lacks a section is judged on what it has and says what it could not see. Pure: bundle in.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from typing import Any

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.verdict_types import Cause
from preflight.parse.common import Unparseable
from preflight.parse.mlxlink import MlxlinkPort, parse_mlxlink

EFFECTIVE_BER_FAIL = 1e-12
RAW_BER_FAIL_FEC = 2.4e-4
RECOVERY_PER_MIN = 5.0
SRC_IBDIAG = ("NVIDIA ibdiagnet User Manual, Bit Error Rate (BER): default threshold 10^-12 "
              "(docs.nvidia.com/networking/display/ibdiagnetusermanualv221/Bit+Error+Rate+(BER))")
SRC_SENTINEL = ("NVIDIA NVSentinel NIC Health Monitor, link counter detection "
                "(docs.nvidia.com/nvsentinel/components/nic-health-monitor/link-counter-detection)")
SRC_IEEE_PREFEC = ("pre-FEC BER 2.4E-04 or better for 50G/100G PAM4 links per IEEE, Dell KB 000286734 "
                   "(dell.com/support/kbdoc/en-us/000286734)")
SRC_MODULE = "the module's own high temperature threshold, as mlxlink -m prints it ([low..high])"
NO_ISSUE = "no issue was observed"


@dataclass(frozen=True)
class LinkFinding:
    level: str  # "fail" | "warn"
    what: str  # the number and the threshold, one line
    source: str
    action: str


def judge_port(p: MlxlinkPort) -> list[LinkFinding]:
    """Every threshold this port's output crosses (empty: nothing crossed in what it showed; see p.missing)."""
    out: list[LinkFinding] = []
    cable = "reseat, then replace the cable or transceiver (clean the connector of an optical one)"
    no_fec = p.fec is not None and "no fec" in p.fec.lower()  # FEC not shown: the raw BER cannot be judged
    fec = p.fec is not None and not no_fec
    if p.effective_ber is not None and p.effective_ber > EFFECTIVE_BER_FAIL:
        out.append(LinkFinding("fail", f"effective (post-FEC) BER {p.effective_ber:.0E} > {EFFECTIVE_BER_FAIL:.0E}",
                               SRC_IBDIAG, cable))
    elif p.effective_errors:
        out.append(LinkFinding("warn", f"{p.effective_errors} effective (post-FEC) physical errors since the counters "
                               f"were cleared{_since(p)} (BER {p.effective_ber or 0:.0E}, fail above "
                               f"{EFFECTIVE_BER_FAIL:.0E})", SRC_IBDIAG, cable))
    if p.raw_ber is not None and no_fec and p.raw_ber > EFFECTIVE_BER_FAIL:
        out.append(LinkFinding("fail", f"raw BER {p.raw_ber:.0E} > {EFFECTIVE_BER_FAIL:.0E} on a link without FEC "
                               f"({p.fec})", SRC_IBDIAG, cable))
    elif p.raw_ber is not None and fec and p.raw_ber > RAW_BER_FAIL_FEC:
        out.append(LinkFinding("fail", f"raw (pre-FEC) BER {p.raw_ber:.0E} > {RAW_BER_FAIL_FEC:.1E}: past what "
                               f"{p.fec} is specified to correct", SRC_IEEE_PREFEC, cable))
    if p.module_temp_c is not None and p.module_temp_high_c is not None and p.module_temp_c >= p.module_temp_high_c:
        out.append(LinkFinding("fail", f"module temperature {p.module_temp_c:g} C >= its high threshold "
                               f"{p.module_temp_high_c:g} C", SRC_MODULE,
                               "check cooling: airflow, fans, blanking panels, the module's seating; replace the "
                               "module if it stays hot"))
    for count, name, limit in ((p.link_down, "link downs", None),
                               (p.link_error_recovery, "link error recoveries", RECOVERY_PER_MIN)):
        if count:
            rate = count / p.time_since_clear_min if p.time_since_clear_min else None
            per_min = "" if rate is None else f" ({rate:.3g}/min" + (
                f", over {limit:g}/min)" if limit is not None and rate > limit else ")")
            out.append(LinkFinding("warn", f"{count} {name} since the counters were cleared{_since(p)}{per_min}",
                                   SRC_SENTINEL, cable))
    if p.recommendation and p.recommendation.strip().rstrip(".").lower() != NO_ISSUE:
        out.append(LinkFinding("warn", f"mlxlink recommends: {p.recommendation}", "mlxlink Troubleshooting Info "
                               "(NVIDIA's own analysis of the port)", "follow mlxlink's recommendation"))
    return out


def _since(p: MlxlinkPort) -> str:
    return f" {p.time_since_clear_min:g} min ago" if p.time_since_clear_min is not None else " (time not shown)"


def node_ports(raw: NodeRaw) -> tuple[dict[str, MlxlinkPort | Unparseable], str | None]:
    """Per port ('mlx5_0/1') the parsed mlxlink output or why not; and why there is nothing at all, if so."""
    p = raw.probe("mlxlink")
    if p is None:
        return {}, "mlxlink not asked"
    if p.get("error") == "absent":
        return {}, "mlxlink not installed"
    if p.get("error"):
        return {}, f"mlxlink probe: {p.get('error')}"
    try:
        doc: Any = json.loads(p.get("stdout") or "")
    except ValueError:
        return {}, "mlxlink probe output unreadable"
    if not isinstance(doc, dict) or not isinstance(doc.get("ports"), dict):
        return {}, "mlxlink probe output unreadable"
    if doc.get("no_ib"):
        return {}, "no /sys/class/infiniband"
    out: dict[str, MlxlinkPort | Unparseable] = {}
    for key, res in sorted(doc["ports"].items()):
        res = res if isinstance(res, dict) else {}
        if res.get("error"):
            out[str(key)] = Unparseable(f"mlxlink {res.get('error')}" + (f" ({res['note']})" if res.get("note") else ""))
            continue
        got = parse_mlxlink(res.get("stdout") or "")
        if isinstance(got, Unparseable) and res.get("rc") not in (0, None):
            got = Unparseable(f"mlxlink exit {res.get('rc')}: {got.reason}", got.excerpt)
        out[str(key)] = got
    return out, None


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
