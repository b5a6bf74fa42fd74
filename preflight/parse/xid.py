"""Parser for kernel log lines: NVRM Xid events and fatal GPU messages that carry no Xid."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

_XID = re.compile(
    r"NVRM:\s*Xid\s*\((?P<dev>[^)]*)\):\s*(?P<code>\d+)\s*,\s*(?:pid=(?P<pid>[^,]+),\s*(?:name=(?P<name>[^,]*),\s*)?)?(?P<msg>.*)$"
)
_TS = re.compile(r"^\s*(?:\[?\d+\]\s+)?(?P<ts>\[[^\]]+\]|\w{3}\s+\d+\s+[\d:]+|\w+\s+\d+\s+[\d:]+|\S+T\S+Z)")
_OTHER = (
    ("fallen_off_bus", re.compile(r"GPU has fallen off the bus|fallen off the bus", re.I)),
    ("gsp_timeout", re.compile(r"GSP.*(?:heartbeat|RPC).*timeout|Timeout after \d+s of waiting for RPC response", re.I)),
    ("peermem_error", re.compile(r"nvidia.peermem.*(?:error|fail)", re.I)),
)


@dataclass(frozen=True)
class XidEvent:
    code: int
    device: str  # as printed: "PCI:0000:3b:00" / "0000:3b:00" ...
    pid: str | None
    process: str | None
    message: str
    timestamp: str | None
    raw_line: str


@dataclass(frozen=True)
class KernelEvent:
    kind: str  # fallen_off_bus | gsp_timeout | peermem_error
    raw_line: str


@dataclass(frozen=True)
class KernelLogEvents:
    xids: tuple[XidEvent, ...]
    others: tuple[KernelEvent, ...]


def parse_kernel_log(text: str) -> KernelLogEvents:
    """dmesg (plain or `--ctime`), journal or syslog lines; never fails (no events is a result)."""
    xids: list[XidEvent] = []
    others: list[KernelEvent] = []
    for raw in text.splitlines():
        line = raw.rstrip().removesuffix("| |").rstrip()
        m = _XID.search(line)
        if m:
            ts = _TS.match(line)
            xids.append(XidEvent(
                code=int(m.group("code")),
                device=m.group("dev").strip(),
                pid=(m.group("pid") or "").strip() or None,
                process=(m.group("name") or "").strip() or None,
                message=m.group("msg").strip(),
                timestamp=ts.group("ts") if ts else None,
                raw_line=raw,
            ))
            continue
        for kind, rx in _OTHER:
            if rx.search(line):
                others.append(KernelEvent(kind, raw))
                break
    return KernelLogEvents(tuple(xids), tuple(others))


@functools.lru_cache(maxsize=1)
def load_xid_catalog() -> dict[int, dict[str, Any]]:
    text = resources.files("preflight.data").joinpath("xid_catalog.yaml").read_text()
    return {int(r["code"]): r for r in (yaml.safe_load(text) or {}).get("xids", [])}


def describe_xid(code: int) -> dict[str, Any] | None:
    return load_xid_catalog().get(code)
