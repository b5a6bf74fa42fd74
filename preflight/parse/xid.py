"""Parser for kernel log lines: NVRM Xid events and fatal GPU messages that carry no Xid."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from preflight.facts import describe_xid as describe_xid  # re-exported: the catalogue lives with the facts
from preflight.facts import load_xid_catalog as load_xid_catalog

_XID = re.compile(
    r"NVRM:\s*Xid\s*\((?P<dev>[^)]*)\):\s*(?P<code>\d+)\s*,\s*"
    r"(?:pid=(?P<pid>'?[^,]*?'?),\s*(?:name=(?P<name>[^,]*),\s*)?)?(?P<msg>.*)$"
)
# timestamp forms, tried in order against the start of the line (after a syslog host prefix is allowed)
_TS = (
    re.compile(r"^\s*\S+:\s+kern:\s+\w+:\s+\[(?P<ts>\d{4}-\d\d-\d\dT[^\]]+)\]:"),  # Talos: 'IP: kern: warning: [RFC3339]:'
    re.compile(r"^\s*(?P<ts>\[[A-Z][a-z]{2} [A-Z][a-z]{2}\s+\d+ [\d:]+ \d{4}\])"),  # dmesg --ctime
    re.compile(r"^\s*(?P<ts>\d{4}-\d\d-\d\d[T ][\d:.]+(?:Z|[+-]\d\d:?\d\d)?)"),  # journalctl -o short-iso
    re.compile(r"^\s*(?P<ts>\S+\s+\d{1,2}\s+\d\d:\d\d:\d\d)\s+\S+\s+kernel:\s*(?P<up>\[\s*\d+\.\d+\])?"),  # syslog (any month)
    re.compile(r"^\s*(?P<ts>\[\s*\d+\.\d+\])"),  # plain dmesg uptime
)
_OTHER = (
    ("fallen_off_bus", re.compile(r"fallen off the bus", re.I)),
    ("gsp_timeout", re.compile(r"GSP.*(?:heartbeat|RPC).*time|Heartbeat timed out|Timeout after \d+s of waiting for RPC"
                               r"|_kgspLogRpcTimeout|GSP Timeout|rpcRecvPoll timedout", re.I)),
    ("reset_required", re.compile(r"GPU marked for reset|NV_ERR_RESET_REQUIRED|Reset required", re.I)),
    ("peermem_error", re.compile(r"nvidia.peermem.*(?:error|fail)", re.I)),
)
# NVSwitch errors: `nvidia-nvswitchN: SXid (PCI:0000:04:00.0): 22013, Non-fatal, Link 44 ...`; one event prints
# several lines with the same code (`Data {...}`, the severity text, `Severity 0 Engine instance ...`)
_SXID = re.compile(r"SXid\s*\((?:PCI:)?(?P<dev>[^)]*)\):\s*(?P<code>\d+)\s*,\s*(?P<msg>.*)$")
_BANNER = re.compile(r"NVRM: loading NVIDIA UNIX (?:Open )?(?:x86_64 |aarch64 )?Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)")
_GPU_UUID = re.compile(r"NVRM: GPU at (?:PCI:)?([0-9a-fA-F:.]+):\s*(GPU-[0-9a-fA-F-]+)")


@dataclass(frozen=True)
class XidEvent:
    """One `NVRM: Xid (PCI:...): <code>, ...` line; `caused_by` when the driver names an earlier Xid."""

    code: int
    device: str  # as printed: "PCI:0000:3b:00" / "0000:3b:00" ...
    pid: int | None
    process: str | None
    message: str
    timestamp: str | None  # as printed: '[ 123.456]', '[Fri Aug 30 11:43:09 2024]', 'Dec 23 23:30:56', RFC3339
    raw_line: str
    caused_by: int | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @property
    def pci(self) -> str:
        """The device without its `PCI:` prefix, lower case (`0000:3b:00`)."""
        return self.device.removeprefix("PCI:").strip().lower()


@dataclass(frozen=True)
class KernelEvent:
    """A fatal or notable GPU kernel message without an Xid (multi-line messages joined in `raw_line`)."""

    kind: str  # fallen_off_bus | gsp_timeout | reset_required | peermem_error | nvswitch_sxid
    raw_line: str
    timestamp: str | None = None
    device: str | None = None  # PCI address or driver GPU index ('GPU6') when the message names one
    raw_lines: tuple[str, ...] = ()
    code: int | None = None  # the SXid code of an nvswitch_sxid event (its lines say Fatal / Non-fatal)


@dataclass(frozen=True)
class KernelLogEvents:
    """Everything GPU-related found in a kernel log; an empty result is a valid answer (no events)."""

    xids: tuple[XidEvent, ...]
    others: tuple[KernelEvent, ...]
    driver_versions: tuple[str, ...] = ()  # from 'NVRM: loading NVIDIA UNIX ... Kernel Module <ver>' banners
    gpu_uuids: dict[str, str] = field(default_factory=dict)  # 'PCI:0000:01:00' -> 'GPU-...'

    @property
    def codes(self) -> tuple[int, ...]:
        return tuple(sorted({x.code for x in self.xids}))


def _timestamp(line: str) -> str | None:
    for rx in _TS:
        m = rx.match(line)
        if m:
            return m.group("ts")
    return None


def _logical_lines(lines: list[str]) -> list[list[str]]:
    """Join continuation lines (indented, no timestamp, e.g. '               NVRM: fallen off the bus') to their head."""
    out: list[list[str]] = []
    for raw in lines:
        line = re.sub(r"\s*\|\s*\|\s*$", "", raw.rstrip())  # ' | |' table artefacts
        if out and re.match(r"^\s+NVRM:", line) and _timestamp(line) is None:
            out[-1].append(line)
        else:
            out.append([line])
    return out


def parse_kernel_log(text: object) -> KernelLogEvents:
    """dmesg (plain or `--ctime`), journal or syslog lines, Talos `kern:` lines; never fails (no events is a result)."""
    if not isinstance(text, str):
        return KernelLogEvents((), ())
    xids: list[XidEvent] = []
    others: list[KernelEvent] = []
    banners: list[str] = []
    uuids: dict[str, str] = {}
    for group in _logical_lines(text.replace("\r", "").split("\n")):
        line = group[0]
        joined = " ".join(re.sub(r"^\s*NVRM:\s*", "", g) if i else g for i, g in enumerate(group))
        b = _BANNER.search(joined)
        if b:
            banners.append(b.group(1))
            continue
        u = _GPU_UUID.search(line)
        if u:
            uuids[u.group(1)] = u.group(2)
        sx = _SXID.search(line)
        if sx:
            dev, code = sx.group("dev").strip(), int(sx.group("code"))
            last = others[-1] if others else None
            if (last is not None and last.kind == "nvswitch_sxid" and (last.device, last.code) == (dev, code)
                    and not sx.group("msg").startswith("Data {")):
                others[-1] = KernelEvent("nvswitch_sxid", last.raw_line + "\n" + line, last.timestamp, dev,
                                         last.raw_lines + (line,), code)
            else:
                others.append(KernelEvent("nvswitch_sxid", line, _timestamp(line), dev, (line,), code))
            continue
        m = _XID.search(line)
        if m:
            missing: dict[str, str] = {}
            pid_raw = (m.group("pid") or "").strip().strip("'")
            pid = int(pid_raw) if pid_raw.isdigit() else None
            if pid is None:
                missing["pid"] = "unknown" if pid_raw else "not_in_output"
            name = (m.group("name") or "").strip()
            if not name or name.strip("'") == "<unknown>":
                missing["process"] = "unknown" if name else "not_in_output"
                name = ""
            cause = re.search(r"caused by previous Xid (\d+)", line, re.I)
            xids.append(XidEvent(code=int(m.group("code")), device=m.group("dev").strip(), pid=pid,
                                 process=name or None, message=m.group("msg").strip(), timestamp=_timestamp(line),
                                 raw_line=group[0] if len(group) == 1 else "\n".join(group),
                                 caused_by=int(cause.group(1)) if cause else None, missing=missing))
            continue
        for kind, rx in _OTHER:
            if rx.search(joined):
                dev = re.search(r"\b([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.\d)\b|\b(GPU\d+)\b", joined)
                others.append(KernelEvent(kind, "\n".join(group), _timestamp(line),
                                          (dev.group(1) or dev.group(2)) if dev else None, tuple(group)))
                break
    return KernelLogEvents(tuple(xids), tuple(others), tuple(dict.fromkeys(banners)), uuids)
