"""mlx5_core health events in a kernel log: the ConnectX firmware stopped answering, asserted, or lost its PCI slot.

A NIC whose firmware is wedged can keep its port Active and its counters still while no RDMA completes: every
collective through it hangs. The kernel's mlx5 health poller (drivers/net/ethernet/mellanox/mlx5/core/health.c)
says so in the kernel log; the lines below are those it prints:

  poll_health: device's health compromised - reached miss count    the firmware's health counter stopped
  poll_health: Fatal error N detected / print_health: Fatal error detected
  print_health_info: Health issue observed, <text>, severity(N) ...
  print_health_info: synd 0xN: <text>                              the firmware's syndrome, named by the driver
  print_health_info: PCI slot [N ]is unavailable                   the device fell off PCIe
  mlx5_health_try_recover: health recovery flow aborted ...        the driver gave up recovering
  fw_fatal (devlink health reporter name)                          firmware fatal reported through devlink

Actions as NVIDIA documents them: a fatal device error starts the driver's reset flow (MLNX_OFED "Reset Flow");
NVSentinel's NIC syslog detection treats a compromised health poll and an unrecoverable syndrome as fatal for the
node (docs.nvidia.com/nvsentinel, NIC Health Monitor: Syslog Detection). So: drain the node, collect the firmware
dump, reset the device (mlxfwreset) or reboot; replace the adapter if it recurs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from preflight.hang.lines import Evidence
from preflight.hang.verdict_types import Cause, evidence_tuple

_DEV = r"mlx5_core (?P<bdf>[0-9A-Fa-f]{4}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)"
_PATTERNS = (
    ("health_compromised", re.compile(_DEV + r":.*device's health compromised")),
    ("fatal", re.compile(_DEV + r":.*Fatal error(?: (?P<n>\d+))? detected")),
    ("issue", re.compile(_DEV + r":.*Health issue observed, (?P<text>.+?)(?:, severity\((?P<sev>\d+)\).*)?$")),
    ("syndrome", re.compile(_DEV + r":.*\bsynd (?P<synd>0x[0-9A-Fa-f]+): (?P<text>.+)$")),
    ("pci_unavailable", re.compile(_DEV + r":.*PCI slot (?:\d+ )?is unavailable")),
    ("recovery_aborted", re.compile(_DEV + r":.*health recovery flow aborted(?P<text>.*)$")),
    ("fw_fatal", re.compile(_DEV + r":.*\bfw[_ ]fatal\b", re.I)),
)
FATAL = {"health_compromised", "fatal", "pci_unavailable", "recovery_aborted", "fw_fatal"}
WHAT = {"health_compromised": "its firmware stopped updating the health counter (health compromised)",
        "fatal": "the driver detected a fatal firmware error", "pci_unavailable": "its PCI slot is unavailable",
        "recovery_aborted": "the driver's health recovery was aborted", "fw_fatal": "firmware fatal (devlink)",
        "issue": "the firmware reported a health issue", "syndrome": "the firmware reported a syndrome"}


@dataclass(frozen=True)
class Mlx5Event:
    bdf: str
    kind: str
    detail: str  # syndrome with its text, the issue text, the fatal error number
    evidence: Evidence


def parse_mlx5_health(text: str, source: str = "") -> list[Mlx5Event]:
    """Every mlx5_core health line, in order; [] when there is none. One regex pass per mlx5 line."""
    out: list[Mlx5Event] = []
    for i, line in enumerate(text.split("\n"), 1):
        if "mlx5_core" not in line:
            continue
        for kind, rx in _PATTERNS:
            m = rx.search(line)
            if m:
                g = m.groupdict()
                detail = {"syndrome": f"synd {g.get('synd')}: {(g.get('text') or '').strip()}",
                          "issue": (g.get("text") or "").strip() + (f", severity {g['sev']}" if g.get("sev") else ""),
                          "fatal": f"fatal error {g['n']}" if g.get("n") else "fatal error"}.get(kind, "")
                out.append(Mlx5Event(m.group("bdf").lower(), kind, detail, Evidence(source, i, line.strip()[:300])))
                break
    return out


def mlx5_causes(events: list[Mlx5Event], node: str | None) -> list[Cause]:
    """One cause per adapter (PCI address): fatal when any of its lines is, with its syndromes named."""
    by_dev: dict[str, list[Mlx5Event]] = {}
    for e in events:
        by_dev.setdefault(e.bdf, []).append(e)
    out = []
    for bdf, es in sorted(by_dev.items()):
        kinds = list(dict.fromkeys(e.kind for e in es))
        fatal = any(k in FATAL for k in kinds)
        named = list(dict.fromkeys(e.detail for e in es if e.kind in ("syndrome", "issue") and e.detail))
        what = "; ".join(WHAT[k] for k in kinds if k not in ("syndrome", "issue"))
        title = (f"{'fail' if fatal else 'warn'}: ConnectX adapter {bdf}" + (f" on {node}" if node else "")
                 + f": {what or WHAT[kinds[0]]}" + (f" ({'; '.join(named[:3])})" if named else "")
                 + ": RDMA through it stalls while its port may still read Active")
        on = f"ssh {node} " if node else ""
        nxt = (f"drain {node or 'the node'}; {on}'dmesg -T | grep mlx5_core; devlink health show; "
               f"mlxfwreset -d {bdf} query'  (collect the firmware dump, reset the adapter or reboot; replace it "
               "if it recurs)")
        key = [e for e in es if e.kind in FATAL][:2] + [e for e in es if e.kind == "syndrome"][:2] + es[:2]
        out.append(Cause(0.87 if fatal else 0.5, title, None, node, evidence_tuple(str(e.evidence) for e in key), nxt,
                         "mlx5_health"))
    return out
