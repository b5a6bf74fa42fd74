"""Parsers for smaller tool outputs: `nvidia-smi -q` sections, `--list-gpus`, ibv_devinfo,
ibdev2netdev, dotted perfquery/ibportstate counters, lspci ACSCtl lines, fabric manager state."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.parse.common import Unparseable, is_probably_text


@dataclass(frozen=True)
class QuerySections:
    """`nvidia-smi -q [-d ...]`: header fields and one nested key/value tree per GPU (by bus id)."""

    header: dict[str, str]
    gpus: dict[str, dict[str, Any]]


def parse_query_sections(text: str) -> QuerySections | Unparseable:
    """`nvidia-smi -q`: indentation gives nesting; the key column width differs by driver."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    header: dict[str, str] = {}
    gpus: dict[str, dict[str, Any]] = {}
    stack: list[tuple[int, dict[str, Any]]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("="):
            continue
        m = re.match(r"^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)\s*$", line)
        if m:
            root: dict[str, Any] = {}
            gpus[m.group(1)] = root
            stack = [(0, root)]
            continue
        indent = len(line) - len(line.lstrip())
        kv = re.match(r"^\s*(.+?)\s*:\s*(.*?)\s*$", line)
        key = (kv.group(1) if kv else line.strip())
        value = kv.group(2) if kv else ""
        if not stack:
            if kv:
                header[key] = value
            continue
        while stack and indent <= stack[-1][0] and len(stack) > 1:
            stack.pop()
        parent = stack[-1][1]
        if value == "" and kv is None or (kv and value == ""):
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
        else:
            parent[key] = value
    if not gpus and not header:
        return Unparseable.of("no 'Key : value' lines and no 'GPU <bus id>' sections", text)
    return QuerySections(header=header, gpus=gpus)


def parse_list_gpus(text: str) -> list[tuple[int, str, str | None]] | Unparseable:
    """`nvidia-smi --list-gpus` (-L): index, name, UUID."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$", line)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out or Unparseable.of("no 'GPU n: <name> (UUID: ...)' lines", text)


@dataclass(frozen=True)
class IbvDevice:
    hca_id: str
    fw_ver: str | None
    ports: dict[int, dict[str, str]] = field(default_factory=dict)


def parse_ibv_devinfo(text: str) -> list[IbvDevice] | Unparseable:
    """`ibv_devinfo [-v]`: per HCA, firmware and per-port state / active_mtu / link_layer."""
    devs: list[dict[str, Any]] = []
    port: dict[str, str] | None = None
    for line in text.splitlines():
        m = re.match(r"^\s*hca_id:\s*(\S+)", line)
        if m:
            devs.append({"hca_id": m.group(1), "fw_ver": None, "ports": {}})
            port = None
            continue
        pm = re.match(r"^\s*port:\s*(\d+)\s*$", line)
        if pm and devs:
            port = {}
            devs[-1]["ports"][int(pm.group(1))] = port
            continue
        kv = re.match(r"^\s*(\w+):\s*(.+?)\s*$", line)
        if kv and devs:
            if port is not None:
                port[kv.group(1)] = kv.group(2)
            elif kv.group(1) == "fw_ver":
                devs[-1]["fw_ver"] = kv.group(2)
    if not devs:
        if any(re.match(r"^\s*port:\s*\d+", l) or "PORT_ACTIVE" in l for l in text.splitlines()):
            return Unparseable.of("fragment: port lines without their 'hca_id:' header", text)
        return Unparseable.of("no 'hca_id:' blocks", text)
    return [IbvDevice(d["hca_id"], d["fw_ver"], d["ports"]) for d in devs]


def parse_ibdev2netdev(text: str) -> list[tuple[str, int, str, str]] | Unparseable:
    """`ibdev2netdev`: (device, port, netdev, Up/Down); trailing comments ignored."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*(\S+)\s+port\s+(\d+)\s*==>\s*(\S+)\s*\((\w+)\)", line)
        if m:
            out.append((m.group(1), int(m.group(2)), m.group(3), m.group(4)))
    return out or Unparseable.of("no '<dev> port N ==> <netdev> (Up|Down)' lines", text)


def parse_dotted_counters(text: str) -> dict[str, str] | Unparseable:
    """`perfquery -x` / `ibportstate`: `Key:.........value` lines (first occurrence of each key)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*(\w+):\.+(.*?)\s*$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2)
    return out or Unparseable.of("no 'Key:....value' lines", text)


@dataclass(frozen=True)
class AcsEntry:
    device: str | None  # the `lspci` device line above the ACSCtl line, when the output has it
    flags: dict[str, bool]
    raw_line: str

    @property
    def redirects(self) -> bool:
        """ACS source validation / request redirect on: peer-to-peer TLPs go up to the root complex."""
        return any(self.flags.get(k) for k in ("SrcValid", "ReqRedir", "CmpltRedir"))


def parse_acsctl(text: str) -> list[AcsEntry] | Unparseable:
    """`lspci -vvv` (or its `grep ACSCtl`): per bridge, each ACS control flag (+ enabled, - disabled)."""
    out = []
    device = None
    for line in text.splitlines():
        if re.match(r"^[0-9a-fA-F]{2,4}:[0-9a-fA-F]{2}", line):
            device = line.strip()
        elif "ACSCtl:" in line:
            flags = dict((name, sign == "+") for name, sign in re.findall(r"(\w+)([+-])", line.split("ACSCtl:", 1)[1]))
            out.append(AcsEntry(device, flags, line))
    return out or Unparseable.of("no 'ACSCtl:' lines", text)


@dataclass(frozen=True)
class FabricState:
    state: str | None
    status: str | None
    messages: tuple[str, ...]


def parse_fabric(text: str) -> FabricState | Unparseable:
    """`nvidia-smi -q` Fabric block, or nvidia-fabricmanager journal/start-script lines."""
    state = re.search(r"^\s*State\s*:\s*(.+?)\s*$", text, re.M)
    status = re.search(r"^\s*Status\s*:\s*(.+?)\s*$", text, re.M)
    messages = tuple(l.strip() for l in text.splitlines()
                     if re.search(r"fabric ?manager|nv-fabricmanager|NV_WARN|don't match|FAILURE|Pre-NVL5", l, re.I))
    if not (state or status or messages):
        return Unparseable.of("no Fabric State/Status and no fabric manager lines", text)
    return FabricState(state.group(1) if state else None, status.group(1) if status else None, messages)


def parse_lspci_list(text: str) -> list[tuple[str, str]] | Unparseable:
    """`lspci` lines: (bus id, description)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-fA-F]{2,4}:[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})?\.\d)\s+(.*)$", line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out or Unparseable.of("no '<bus id> <description>' lines", text)
