"""Parsers for lspci outputs (ACSCtl lines, device lists) and the fabric-manager state; re-exports of
parsers that moved to their tool's module (`-q` sections and `-L` in nvidia_smi, ibv_devinfo/ibdev2netdev/
dotted counters in ibstat) so existing imports keep working."""

from __future__ import annotations

import re
from dataclasses import dataclass

from preflight.parse.common import Unparseable
from preflight.parse.ibstat import IbvDevice, parse_dotted_counters, parse_ibdev2netdev, parse_ibv_devinfo
from preflight.parse.nvidia_smi import QuerySections, parse_list_gpus, parse_query_sections

__all__ = [
    "AcsEntry", "FabricState", "IbvDevice", "QuerySections", "parse_acsctl", "parse_dotted_counters", "parse_fabric",
    "parse_ibdev2netdev", "parse_ibv_devinfo", "parse_list_gpus", "parse_lspci_list", "parse_query_sections",
]


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
            flags = {name: sign == "+" for name, sign in re.findall(r"(\w+)([+-])", line.split("ACSCtl:", 1)[1])}
            out.append(AcsEntry(device, flags, line))
    return out or Unparseable.of("no 'ACSCtl:' lines", text)


@dataclass(frozen=True)
class FabricState:
    state: str | None
    status: str | None
    messages: tuple[str, ...]
    # the multi-node NVLink domain the block names (GB200/GB300 NVL72); None when N/A or the all-zero UUID
    cluster_uuid: str | None = None
    clique_id: str | None = None


def _fabric_field(text: str, key: str) -> str | None:
    """A `Key : value` row of the block, None for N/A / Not Supported / an all-zero UUID."""
    m = re.search(rf"^\s*{key}\s*:\s*(.+?)\s*$", text, re.M)
    value = m.group(1) if m else ""
    if not value or value.strip("[]").lower() in {"n/a", "not supported"} or set(value.replace("-", "")) == {"0"}:
        return None
    return value


def parse_fabric(text: str) -> FabricState | Unparseable:
    """`nvidia-smi -q` Fabric block, or nvidia-fabricmanager journal/start-script lines."""
    state = re.search(r"^\s*State\s*:\s*(.+?)\s*$", text, re.M)
    status = re.search(r"^\s*Status\s*:\s*(.+?)\s*$", text, re.M)
    messages = tuple(l.strip() for l in text.splitlines()
                     if re.search(r"fabric ?manager|nv-fabricmanager|NV_WARN|don't match|FAILURE|Pre-NVL5", l, re.I))
    if not (state or status or messages):
        return Unparseable.of("no Fabric State/Status and no fabric manager lines", text)
    uuid = _fabric_field(text, "ClusterUUID")
    return FabricState(state.group(1) if state else None, status.group(1) if status else None, messages,
                       cluster_uuid=uuid, clique_id=_fabric_field(text, "CliqueId") if uuid else None)


def parse_lspci_list(text: str) -> list[tuple[str, str]] | Unparseable:
    """`lspci` lines: (bus id, description)."""
    out = []
    for line in text.splitlines():
        m = re.match(r"^\s*([0-9a-fA-F]{2,4}:[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})?\.\d)\s+(.*)$", line)
        if m:
            out.append((m.group(1), m.group(2)))
    return out or Unparseable.of("no '<bus id> <description>' lines", text)
