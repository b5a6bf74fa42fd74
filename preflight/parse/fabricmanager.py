"""Parsers for NVLink fabric state: the `nvidia-smi -q` Fabric block (with its Health sub-block) and
nvidia-fabricmanager journal lines; `health_verdict` says what a Health block proves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.facts import health_verdict  # what a Health block proves: lives with the facts, shared with the checks
from preflight.parse.common import Unparseable, is_probably_text


@dataclass(frozen=True)
class FabricBlock:
    """`nvidia-smi -q` Fabric section (GPU's view of NVLink fabric registration; Blackwell/Hopper NVSwitch systems)."""

    state: str | None  # Completed / In Progress / Not Started / Not Supported
    status: str | None  # Success / Insufficient Resources / ...
    clique_id: int | None
    cluster_uuid: str | None
    missing: dict[str, str] = field(default_factory=dict)
    raw_lines: tuple[str, ...] = ()
    health: dict[str, str] = field(default_factory=dict)  # `Health` rows as printed: Summary, Bandwidth, ...

    @property
    def ok(self) -> bool | None:
        """Registered with the fabric and not reported unhealthy; None when the block says nothing about it.

        A Health block whose verdict is not known (a Summary value never seen) leaves this None: not proven.
        """
        if self.state is None and self.status is None:
            return None
        if not (self.state == "Completed" and self.status == "Success"):
            return False
        verdict, _ = health_verdict(self.health)
        return {"unhealthy": False, "unknown": None}.get(verdict, True)


@dataclass(frozen=True)
class FmMessage:
    """A classified fabric-manager log line."""

    kind: str  # version_mismatch | nothing_to_do | pre_nvl5 | service_failed | starting | started | error
    text: str
    raw_line: str


@dataclass(frozen=True)
class FabricManagerLog:
    """nvidia-fabricmanager journal / start-script lines: overall outcome and the lines that say why."""

    status: str  # failed | no_nvswitch | running | starting | unknown
    messages: tuple[FmMessage, ...]
    fm_version: str | None = None  # from a version-mismatch message
    driver_version: str | None = None
    notes: tuple[str, ...] = ()


_KINDS = (
    ("version_mismatch", re.compile(r"don't match|does not match|version mismatch", re.I)),
    ("nothing_to_do", re.compile(r"NV_WARN_NOTHING_TO_DO|Nothing to do", re.I)),
    ("pre_nvl5", re.compile(r"Detected Pre-NVL5 system", re.I)),
    ("service_failed", re.compile(r"status=\d+/FAILURE|Failed to start|failed! Exit code|failed with result", re.I)),
    ("started", re.compile(r"Started NVIDIA fabric manager|Successfully configured all the available", re.I)),
    ("starting", re.compile(r"Starting NVIDIA fabric manager", re.I)),
    ("error", re.compile(r"\berror\b|\bfailed\b", re.I)),
)
_FM_LINE = re.compile(r"fabric ?manager|nv-fabricmanager|NVSwitch|NVL5", re.I)


def parse_fabric_block(text: str) -> FabricBlock | Unparseable:
    """The `Fabric` section of `nvidia-smi -q` (State, Status, CliqueId, ClusterUUID)."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    vals: dict[str, str] = {}
    health: dict[str, str] = {}
    raw: list[str] = []
    health_indent: int | None = None  # indentation of the `Health` line while inside its sub-block
    for line in text.replace("\r", "").expandtabs(8).splitlines():
        indent = len(line) - len(line.lstrip())
        if health_indent is not None and line.strip() and indent <= health_indent:
            health_indent = None
        if re.match(r"^\s*Health\s*$", line):
            health_indent = indent
            raw.append(line)
            continue
        kv = re.match(r"^\s*(\S.*?)\s*:\s*(.*?)\s*$", line)
        if health_indent is not None and kv:
            health.setdefault(kv.group(1), kv.group(2))
            raw.append(line)
            continue
        m = re.match(r"^\s*(State|Status|CliqueId|ClusterUUID)\s*:\s*(.*?)\s*$", line)
        if m and m.group(1) not in vals:
            vals[m.group(1)] = m.group(2)
            raw.append(line)
    if not vals:
        return Unparseable.of("no Fabric 'State/Status/CliqueId/ClusterUUID' lines", text)
    missing: dict[str, str] = {}
    for key in ("State", "Status", "CliqueId", "ClusterUUID"):
        if key not in vals:
            missing[key] = "not_in_output"
        elif vals[key].upper() == "N/A":
            missing[key] = "na"
    clique = vals.get("CliqueId", "")
    uuid = vals.get("ClusterUUID")
    if uuid and set(uuid.replace("-", "")) == {"0"}:
        missing["ClusterUUID"] = "zero (not assigned)"
        uuid = None
    return FabricBlock(state=vals.get("State") if "State" not in missing else None,
                       status=vals.get("Status") if "Status" not in missing else None,
                       clique_id=int(clique) if clique.isdigit() else None,
                       cluster_uuid=uuid if uuid and "ClusterUUID" not in missing else None,
                       missing=missing, raw_lines=tuple(raw), health=health)


def parse_fabricmanager_log(text: str) -> FabricManagerLog | Unparseable:
    """`journalctl -u nvidia-fabricmanager` / `systemctl status` tail (any month spelling, e.g. '11月')."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    messages: list[FmMessage] = []
    fm_v = drv_v = None
    for line in text.splitlines():
        if not _FM_LINE.search(line):
            continue
        body = re.split(r"\]:\s*", line, maxsplit=1)[-1].strip()
        kind = next((k for k, rx in _KINDS if rx.search(line)), "info")
        if kind == "version_mismatch":
            m = re.search(r"interface version\s+(\d+(?:\.\d+)*).*?driver version\s+(\d+(?:\.\d+)*)", line)
            if m:
                fm_v, drv_v = m.group(1), m.group(2)
        messages.append(FmMessage(kind, body, line))
    if not messages:
        return Unparseable.of("no nvidia-fabricmanager lines", text)
    kinds = {m.kind for m in messages}
    notes: list[str] = []
    if kinds & {"nothing_to_do", "pre_nvl5"}:
        status = "no_nvswitch"
        notes.append("no NVSwitch to manage (NVLink bridge or PCIe box): the service failing here is expected")
    elif kinds & {"version_mismatch", "service_failed", "error"}:
        status = "failed"
    elif "started" in kinds:
        status = "running"
    elif "starting" in kinds:
        status = "starting"
    else:
        status = "unknown"
    return FabricManagerLog(status, tuple(messages), fm_v, drv_v, tuple(notes))


def parse_fabric(text: str) -> FabricBlock | FabricManagerLog | Unparseable:
    """Either form: a Fabric block when it has State/Status lines, else fabric-manager log lines."""
    block = parse_fabric_block(text)
    if not isinstance(block, Unparseable):
        return block
    log = parse_fabricmanager_log(text)
    if isinstance(log, Unparseable):
        return Unparseable.of("neither a Fabric State/Status block nor nvidia-fabricmanager lines", text if isinstance(text, str) else "")
    return log


def as_dict(result: Any) -> dict[str, Any]:
    """A small summary for reports."""
    if isinstance(result, FabricBlock):
        return {"state": result.state, "status": result.status, "clique_id": result.clique_id,
                "health": health_verdict(result.health)[0]}
    if isinstance(result, FabricManagerLog):
        return {"status": result.status, "kinds": sorted({m.kind for m in result.messages})}
    return {}
