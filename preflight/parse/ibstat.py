"""Parser for `ibstat`: each CA (HCA) and its ports' state, physical state, rate, link layer."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from preflight.parse.common import Unparseable, is_probably_text


@dataclass(frozen=True)
class IbPort:
    number: int
    state: str | None = None
    phys_state: str | None = None
    rate_gbps: float | None = None
    base_lid: int | None = None
    link_layer: str | None = None
    raw_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class IbCa:
    name: str
    ca_type: str | None = None
    firmware: str | None = None
    node_guid: str | None = None
    ports: tuple[IbPort, ...] = ()


@dataclass(frozen=True)
class IbStat:
    cas: tuple[IbCa, ...]
    errors: tuple[str, ...] = field(default_factory=tuple)  # e.g. "ibpanic: ... failed"


_KV = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$")


def parse_ibstat(text: str) -> IbStat | Unparseable:
    """`ibstat` (all CAs)."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    cas: list[IbCa] = []
    errors: list[str] = []
    ca: dict | None = None
    port: dict | None = None

    def close_port() -> None:
        nonlocal port
        if ca is not None and port is not None:
            ca["ports"].append(IbPort(**{k: v for k, v in port.items() if k != "raw"}, raw_lines=tuple(port["raw"])))
        port = None

    def close_ca() -> None:
        nonlocal ca
        close_port()
        if ca is not None:
            cas.append(IbCa(name=ca["name"], ca_type=ca.get("ca_type"), firmware=ca.get("firmware"),
                            node_guid=ca.get("node_guid"), ports=tuple(ca["ports"])))
        ca = None

    for line in text.splitlines():
        if line.startswith("ibpanic") or line.startswith("ibwarn") or "failed:" in line:
            errors.append(line.strip())
            continue
        m = re.match(r"^\s*CA\s+'([^']+)'", line)
        if m:
            close_ca()
            ca = {"name": m.group(1), "ports": []}
            continue
        if ca is None:
            continue
        pm = re.match(r"^\s*Port\s+(\d+)\s*:\s*$", line)
        if pm:
            close_port()
            port = {"number": int(pm.group(1)), "raw": [f"CA '{ca['name']}'", line]}
            continue
        kv = _KV.match(line)
        if not kv:
            continue
        key, value = kv.group(1).lower(), kv.group(2)
        if port is not None:
            port["raw"].append(line)
            if key == "state":
                port["state"] = value
            elif key == "physical state":
                port["phys_state"] = value
            elif key == "rate":
                try:
                    port["rate_gbps"] = float(value)
                except ValueError:
                    pass
            elif key == "base lid" and value.isdigit():
                port["base_lid"] = int(value)
            elif key == "link layer":
                port["link_layer"] = value
        else:
            if key == "ca type":
                ca["ca_type"] = value
            elif key == "firmware version":
                ca["firmware"] = value
            elif key == "node guid":
                ca["node_guid"] = value
    close_ca()
    if not cas:
        return Unparseable.of("no \"CA '<name>'\" blocks" + (f"; tool said: {errors[0]}" if errors else ""), text)
    return IbStat(cas=tuple(cas), errors=tuple(errors))
