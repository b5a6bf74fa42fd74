"""Parsers for InfiniBand/RoCE tools: `ibstat`, `ibstatus`, `ibv_devinfo [-v]`, `ibdev2netdev`, dotted perfquery/ibportstate."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypedDict

from preflight.parse.common import Unparseable, is_probably_text, to_int

_REDACTED = ("...", "…")


def _guard(text: Any) -> Unparseable | None:
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    return None


@dataclass(frozen=True)
class IbPort:
    """An `ibstat` port: State (Active/Down/Initializing/Armed), Physical state (LinkUp/Disabled/Polling...), Rate Gb/s."""

    number: int
    state: str | None = None
    phys_state: str | None = None
    rate_gbps: float | None = None  # float: SDR ports report 2.5 / 10 / 14 ...
    base_lid: int | None = None
    sm_lid: int | None = None
    lmc: int | None = None
    port_guid: str | None = None
    capability_mask: str | None = None
    link_layer: str | None = None  # InfiniBand | Ethernet (RoCE)
    missing: dict[str, str] = field(default_factory=dict)
    raw_lines: tuple[str, ...] = ()

    @property
    def up(self) -> bool:
        return self.state == "Active" and self.phys_state == "LinkUp"


@dataclass(frozen=True)
class IbCa:
    """An `ibstat` CA block (`CA 'mlx5_0'`)."""

    name: str
    ca_type: str | None = None
    firmware: str | None = None
    node_guid: str | None = None
    ports: tuple[IbPort, ...] = ()
    system_guid: str | None = None
    hardware_version: str | None = None
    num_ports: int | None = None
    missing: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IbStat:
    """All CAs of one `ibstat` run, plus the tool's own error lines (`ibpanic:` / `ibwarn:`)."""

    cas: tuple[IbCa, ...]
    errors: tuple[str, ...] = field(default_factory=tuple)
    elided: bool = False  # a '...' line at source: other CAs may be missing


_CA_KEYS = {"ca type": "ca_type", "firmware version": "firmware", "node guid": "node_guid",
            "system image guid": "system_guid", "hardware version": "hardware_version", "number of ports": "num_ports"}
_PORT_KEYS = {"state": "state", "physical state": "phys_state", "rate": "rate_gbps", "base lid": "base_lid",
              "sm lid": "sm_lid", "lmc": "lmc", "port guid": "port_guid", "capability mask": "capability_mask",
              "link layer": "link_layer"}
_INTS = {"base_lid", "sm_lid", "lmc", "num_ports"}
_KV = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*(.*?)\s*$")


def _value(attr: str, value: str, missing: dict[str, str]) -> Any:
    if value in _REDACTED:
        missing[attr] = "redacted"
        return None
    if attr == "rate_gbps" or attr in _INTS:
        try:
            return float(value) if attr == "rate_gbps" else int(value, 0)
        except ValueError:
            missing[attr] = "unparseable"
            return None
    return value


def parse_ibstat(text: str) -> IbStat | Unparseable:
    """`ibstat` (all CAs): tabs or spaces, '...' elisions/redactions, trailing `ibpanic:` lines kept as errors."""
    refused = _guard(text)
    if refused:
        return refused
    cas: list[IbCa] = []
    errors: list[str] = []
    ca: dict[str, Any] | None = None
    port: dict[str, Any] | None = None
    elided = False

    def close_port() -> None:
        nonlocal port
        if ca is not None and port is not None:
            raw = port.pop("raw")
            ca["ports"].append(IbPort(**port, raw_lines=tuple(raw)))
        port = None

    def close_ca() -> None:
        nonlocal ca
        close_port()
        if ca is not None:
            ports = tuple(ca.pop("ports"))
            cas.append(IbCa(**ca, ports=ports))
        ca = None

    for line in text.replace("\r", "").splitlines():
        stripped = line.strip()
        if stripped in _REDACTED:
            elided = True
            continue
        if re.match(r"^\s*(ibpanic|ibwarn|ibstat:)", line) or "failed:" in line:
            errors.append(stripped)
            continue
        m = re.match(r"^\s*CA\s+'([^']+)'", line)
        if m:
            close_ca()
            ca = {"name": m.group(1), "ports": [], "missing": {}}
            continue
        if ca is None:
            continue
        pm = re.match(r"^\s*Port\s+(\d+)\s*:\s*$", line)
        if pm:
            close_port()
            port = {"number": int(pm.group(1)), "raw": [f"CA '{ca['name']}'", line], "missing": {}}
            continue
        kv = _KV.match(line)
        if not kv:
            continue
        key, value = kv.group(1).lower(), kv.group(2)
        if port is not None and key in _PORT_KEYS:
            port["raw"].append(line)
            port[_PORT_KEYS[key]] = _value(_PORT_KEYS[key], value, port["missing"])
        elif port is None and key in _CA_KEYS:
            ca[_CA_KEYS[key]] = _value(_CA_KEYS[key], value, ca["missing"])
        elif port is not None:
            port["raw"].append(line)
    close_ca()
    if not cas:
        return Unparseable.of("no \"CA '<name>'\" blocks" + (f"; tool said: {errors[0]}" if errors else ""), text)
    return IbStat(cas=tuple(cas), errors=tuple(errors), elided=elided)


# ---------------------------------------------------------------- ibstatus

# `ibstatus` prints the sysfs words (`4: ACTIVE`); ibstat's spelling of the same states, so both read alike
_IBSTATUS_STATE = {"DOWN": "Down", "INIT": "Initializing", "ARMED": "Armed", "ACTIVE": "Active",
                   "ACTIVE_DEFER": "Active Defer"}
_IBSTATUS_KEYS = {"state": "state", "phys state": "phys_state", "rate": "rate_gbps", "base lid": "base_lid",
                  "sm lid": "sm_lid", "link_layer": "link_layer"}


def _ibstatus_value(attr: str, value: str, missing: dict[str, str]) -> Any:
    """One `ibstatus` value in ibstat's typed form; a word it does not know is kept as printed (never 'Active')."""
    if attr == "state":
        word = value.split(":", 1)[-1].strip()
        return _IBSTATUS_STATE.get(word.upper(), word or None)
    if attr == "phys_state":
        return value.split(":", 1)[-1].strip() or None
    if attr == "rate_gbps":
        m = re.match(r"\s*([\d.]+)\s*Gb/sec", value)
        if not m:
            missing[attr] = "unparseable"
            return None
        return float(m.group(1))
    return _value(attr, value, missing)


def parse_ibstatus(text: str) -> IbStat | Unparseable:
    """`ibstatus` (infiniband-diags): `Infiniband device 'mlx5_0' port 1 status:` blocks, typed as `parse_ibstat`.

    States read `4: ACTIVE` -> Active, `1: DOWN` -> Down; phys `5: LinkUp` -> LinkUp; rate `100 Gb/sec (4X EDR)` ->
    100.0. The default GID stays in `raw_lines` only (it is not the port GUID on RoCE). A row not printed stays
    None with `missing[...] = "not_in_output"`, so a cut-off block never reads as an Active port.
    """
    refused = _guard(text)
    if refused:
        return refused
    cas: dict[str, list[IbPort]] = {}
    port: dict[str, Any] | None = None
    errors: list[str] = []

    def close() -> None:
        nonlocal port
        if port is not None:
            raw = port.pop("raw")
            for attr in ("state", "phys_state", "rate_gbps", "link_layer"):
                if attr not in port:
                    port["missing"].setdefault(attr, "not_in_output")
            cas[port.pop("ca")].append(IbPort(**port, raw_lines=tuple(raw)))
        port = None

    for line in text.replace("\r", "").splitlines():
        m = re.match(r"^\s*Infiniband device\s+'([^']+)'\s+port\s+(\d+)\s+status:\s*$", line, re.I)
        if m:
            close()
            cas.setdefault(m.group(1), [])
            port = {"ca": m.group(1), "number": int(m.group(2)), "raw": [line], "missing": {}}
            continue
        if re.match(r"^\s*(ibpanic|ibwarn|ibstatus:)", line) or re.search(r"\bfailed\b|No such file", line):
            errors.append(line.strip())
            continue
        kv = re.match(r"^\s*([a-z_ ]+?)\s*:\s*(.*?)\s*$", line)
        if port is None or not kv:
            continue
        port["raw"].append(line)
        attr = _IBSTATUS_KEYS.get(kv.group(1))
        if attr is not None and attr not in port:
            port[attr] = _ibstatus_value(attr, kv.group(2), port["missing"])
    close()
    if not cas:
        return Unparseable.of("no \"Infiniband device '<name>' port N status:\" blocks"
                              + (f"; tool said: {errors[0]}" if errors else ""), text)
    return IbStat(cas=tuple(IbCa(name=name, ports=tuple(ports), num_ports=None,
                                 missing={"firmware": "not printed by ibstatus"}) for name, ports in cas.items()),
                  errors=tuple(errors))


# ---------------------------------------------------------------- ibv_devinfo


@dataclass(frozen=True)
class IbvPort:
    """An `ibv_devinfo` port: state PORT_ACTIVE/PORT_DOWN..., MTUs, link layer; every key kept in `fields`."""

    number: int
    state: str | None
    active_mtu: int | None
    max_mtu: int | None
    link_layer: str | None
    fields: dict[str, str]
    raw_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class IbvDevice:
    """An `ibv_devinfo` device (`hca_id:` block); `ports` maps port number -> raw key/value fields."""

    hca_id: str
    fw_ver: str | None
    ports: dict[int, dict[str, str]] = field(default_factory=dict)
    fields: dict[str, str] = field(default_factory=dict)
    port_info: tuple[IbvPort, ...] = ()


class _DevBlock(TypedDict):
    """One `hca_id:` block while it is read."""

    hca_id: str
    fields: dict[str, str]
    ports: dict[int, dict[str, str]]
    raw: dict[int, list[str]]  # port number -> its lines


def parse_ibv_devinfo(text: str) -> list[IbvDevice] | Unparseable:
    """`ibv_devinfo [-v]`: per HCA, firmware and per-port state / active_mtu / link_layer (-v continuation lines kept)."""
    refused = _guard(text)
    if refused:
        return refused
    devs: list[_DevBlock] = []
    port: dict[str, str] | None = None
    last_key: tuple[dict[str, str], str] | None = None
    for line in text.replace("\r", "").splitlines():
        m = re.match(r"^\s*hca_id:\s*(\S+)", line)
        if m:
            devs.append({"hca_id": m.group(1), "fields": {}, "ports": {}, "raw": {}})
            port, last_key = None, None
            continue
        if not devs:
            continue
        pm = re.match(r"^\s*port:\s*(\d+)\s*$", line)
        if pm:
            port = {}
            devs[-1]["ports"][int(pm.group(1))] = port
            devs[-1]["raw"][int(pm.group(1))] = [line]
            last_key = None
            continue
        kv = re.match(r"^\s*(\w+):\s*(.+?)\s*$", line)
        target = port if port is not None else devs[-1]["fields"]
        if kv:
            target[kv.group(1)] = kv.group(2)
            last_key = (target, kv.group(1))
            if port is not None:
                devs[-1]["raw"][max(devs[-1]["ports"])].append(line)
        elif last_key and re.match(r"^\s+[A-Z0-9_]+\s*$", line):
            # `-v` lists flags on continuation lines with no key
            d, k = last_key
            d[k] = f"{d[k]} {line.strip()}"
    if not devs:
        if any(re.match(r"^\s*port:\s*\d+", ln) or "PORT_ACTIVE" in ln for ln in text.splitlines()):
            return Unparseable.of("fragment: port lines without their 'hca_id:' header", text)
        return Unparseable.of("no 'hca_id:' blocks", text)
    out = []
    for dev in devs:
        infos = tuple(
            IbvPort(number=n, state=(p.get("state") or "").split(" ")[0] or None, active_mtu=to_int(p.get("active_mtu"), signed=False),
                    max_mtu=to_int(p.get("max_mtu"), signed=False), link_layer=p.get("link_layer"), fields=dict(p),
                    raw_lines=tuple(dev["raw"].get(n, ())))
            for n, p in sorted(dev["ports"].items()))
        out.append(IbvDevice(dev["hca_id"], dev["fields"].get("fw_ver"), dev["ports"], dev["fields"], infos))
    return out


# ---------------------------------------------------------------- ibdev2netdev, dotted counters


class NetdevMapping(NamedTuple):
    """`mlx5_0 port 1 ==> ib0 (Up)`; a tuple so `(device, port, netdev, state)` comparisons keep working."""

    device: str
    port: int
    netdev: str
    state: str  # Up / Down: the netdev's state, not the IB port's


def parse_ibdev2netdev(text: str) -> list[NetdevMapping] | Unparseable:
    """`ibdev2netdev` (also through `column -t`): device, port, netdev, Up/Down; trailing comments ignored."""
    refused = _guard(text)
    if refused:
        return refused
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\S+)\s+port\s+(\d+)\s*==>\s*(\S+)\s*\((\w+)\)", line)
        if m:
            out.append(NetdevMapping(m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    return out or Unparseable.of("no '<dev> port N ==> <netdev> (Up|Down)' lines", text)


def parse_dotted_counters(text: str) -> dict[str, str] | Unparseable:
    """`perfquery -x` / `ibportstate`: `Key:.........value` lines (first occurrence of each key)."""
    refused = _guard(text)
    if refused:
        return refused
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\w+):\.+(.*?)\s*$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out or Unparseable.of("no 'Key:....value' lines", text)
