"""One IB port's mlxlink reading judged: the thresholds, their sources and the action, for `preflight hang`
(preflight/hang/link_quality.py) and `preflight run --mlxlink` (checks/link_quality.py, through the registry).

Thresholds, each with its source (preflight/data/reference/README.md lists them too):

- Effective (post-FEC) BER worse than 1E-12 fails: ibdiagnet's BER test threshold ("default threshold=10^-12",
  NVIDIA ibdiagnet User Manual, Bit Error Rate (BER)), the IBTA compliant-link BER NVIDIA's NVSentinel NIC health
  monitor cites ("Failed (Fatal) > 10E-12"). On a link shown with `No FEC` the raw BER is what arrives, judged the same.
- Any effective physical error below that warns: they are "the actual errors seen by the application level after
  error correction" (same ibdiagnet page).
- Raw (pre-FEC) BER worse than 2.4E-4 fails on a link with FEC: "The IEEE standards require all links involving
  50G/100G PAM4 to achieve a pre-FEC Bit Error Rate (BER) of 2.4E-04 or better" (Dell KB 000286734, Mellanox
  ConnectX-6 Dx). Below it a raw BER is expected on PAM4 (NVSentinel: "non-zero raw BER is expected"). With the
  FEC not shown, the raw BER is not judged.
- Module temperature at or above the module's own high threshold (the `[low..high]` mlxlink -m prints beside the
  temperature) fails; with no threshold shown none is invented.
- Link Down Counter or Link Error Recovery Counter above 0 since the counters were last cleared warns, with the
  rate over that time: NVSentinel treats any link_downed increment as fatal and link_error_recovery above 5/min
  as degradation, but one read cannot tell an old, healed burst from now (a rise between two reads of the sysfs
  counters is preflight/hang/ib_rates.py's).
- mlxlink's own Troubleshooting Recommendation, when it is not "No issue was observed", warns, quoted.

Stdlib only, and it reads the port by its attributes (preflight.parse.mlxlink.MlxlinkPort): the registry
re-exports it for the checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


def judge_port(p: Any, *, effective_ber_max: float = EFFECTIVE_BER_FAIL,
               raw_ber_max_fec: float = RAW_BER_FAIL_FEC) -> list[LinkFinding]:
    """Every threshold this port's output crosses (empty: nothing crossed in what it showed; see p.missing)."""
    out: list[LinkFinding] = []
    cable = "reseat, then replace the cable or transceiver (clean the connector of an optical one)"
    no_fec = p.fec is not None and "no fec" in p.fec.lower()  # FEC not shown: the raw BER cannot be judged
    fec = p.fec is not None and not no_fec
    if p.effective_ber is not None and p.effective_ber > effective_ber_max:
        out.append(LinkFinding("fail", f"effective (post-FEC) BER {p.effective_ber:.0E} > {effective_ber_max:.0E}",
                               SRC_IBDIAG, cable))
    elif p.effective_errors:
        out.append(LinkFinding("warn", f"{p.effective_errors} effective (post-FEC) physical errors since the counters "
                               f"were cleared{_since(p)} (BER {p.effective_ber or 0:.0E}, fail above "
                               f"{effective_ber_max:.0E})", SRC_IBDIAG, cable))
    if p.raw_ber is not None and no_fec and p.raw_ber > effective_ber_max:
        out.append(LinkFinding("fail", f"raw BER {p.raw_ber:.0E} > {effective_ber_max:.0E} on a link without FEC "
                               f"({p.fec})", SRC_IBDIAG, cable))
    elif p.raw_ber is not None and fec and p.raw_ber > raw_ber_max_fec:
        out.append(LinkFinding("fail", f"raw (pre-FEC) BER {p.raw_ber:.0E} > {raw_ber_max_fec:.1E}: past what "
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


def _since(p: Any) -> str:
    return f" {p.time_since_clear_min:g} min ago" if p.time_since_clear_min is not None else " (time not shown)"
