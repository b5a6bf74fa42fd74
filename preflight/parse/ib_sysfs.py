"""The collector's `/sys/class/infiniband` listing (JSON) -> IbPortFacts, and merged with ibstat's ports.

sysfs is the second source of IB facts: it adds the port counters and the HCA's PCIe link to ibstat's
ports, keeps the ports ibstat did not print (an ibstat cut short is not "fewer ports"), and stands alone
when ibstat is absent.
"""

from __future__ import annotations

import json
import re
from typing import Any

from preflight.facts import IbPortFacts
from preflight.parse.common import to_int
from preflight.parse.ibstat import IbStat

# sysfs prints `4: ACTIVE` / `5: LinkUp`: the number is the IB spec's state code
SYSFS_STATE = {"1": "Down", "2": "Initializing", "3": "Armed", "4": "Active", "5": "Active Defer"}
SYSFS_PHYS = {"1": "Sleep", "2": "Polling", "3": "Disabled", "4": "PortConfigurationTraining", "5": "LinkUp",
              "6": "LinkErrorRecovery", "7": "Phy Test"}


def sysfs_doc(text: str | None) -> dict[str, Any]:
    """The listing as a dict (device -> {fw_ver, pcie, ports}); {} when absent or not JSON."""
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def port_counters(doc: dict[str, Any], ca: str, port: int) -> dict[str, int]:
    """`ports/N/counters` of one port, numbers only (a counter sysfs could not read is left out)."""
    raw = ((doc.get(ca) or {}).get("ports") or {}).get(str(port), {}).get("counters") or {}
    return {k: int(v) for k, v in raw.items() if str(v).strip().isdigit()}


def _port_number(port: Any) -> int:
    return to_int(port, whole=True) or 0


def sysfs_ports(devices: dict[str, Any]) -> list[IbPortFacts]:
    """Every port of the listing, in device and port order."""
    ports = []
    for dev, entry in sorted(devices.items()):
        if not isinstance(entry, dict):
            continue
        for port, attrs in sorted((entry.get("ports") or {}).items()):
            if not isinstance(attrs, dict):
                continue
            state = str(attrs.get("state") or "")
            phys = str(attrs.get("phys_state") or "")
            rate = str(attrs.get("rate") or "")
            ports.append(IbPortFacts(
                ca=dev, port=_port_number(port),
                state=SYSFS_STATE.get(state.split(":")[0].strip(), state or None),
                phys_state=SYSFS_PHYS.get(phys.split(":")[0].strip(), phys or None),
                rate_gbps=_rate(rate), link_layer=attrs.get("link_layer"),
                firmware=entry.get("fw_ver"), counters=port_counters(devices, dev, _port_number(port)),
                pcie=dict(entry.get("pcie") or {}),
                evidence=(f"/sys/class/infiniband/{dev}/ports/{port}: state={state} phys_state={phys} rate={attrs.get('rate')}",),
            ))
    return ports


def _rate(text: str) -> float | None:
    """`400 Gb/sec (4X NDR)` -> 400.0."""
    m = re.match(r"\s*([\d.]+)", text)
    return float(m.group(1)) if m else None


def merge_ibstat_sysfs(stat: IbStat, sysfs: dict[str, Any]) -> list[IbPortFacts]:
    """ibstat's ports with sysfs counters and PCIe link, then the sysfs ports ibstat did not print."""
    ports = [IbPortFacts(ca=ca.name, port=p.number, state=p.state, phys_state=p.phys_state, rate_gbps=p.rate_gbps,
                         link_layer=p.link_layer, firmware=ca.firmware, evidence=p.raw_lines,
                         counters=port_counters(sysfs, ca.name, p.number),
                         pcie=dict((sysfs.get(ca.name) or {}).get("pcie") or {}))
             for ca in stat.cas for p in ca.ports]
    seen = {(p.ca, p.port) for p in ports}
    return ports + [p for p in sysfs_ports(sysfs) if (p.ca, p.port) not in seen]
