"""Parsers for `nvidia-smi --query-gpu ... --format=csv`, the default table and `--version`."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from preflight.parse.common import Unparseable, is_probably_text, na_reason, to_float, to_int

SMI_ERRORS = (
    "NVIDIA-SMI has failed",
    "is not a valid field to query",
    "No devices were found",
    "Unable to determine the device handle",
    "Failed to initialize NVML",
    "couldn't communicate with the NVIDIA driver",
    "Driver/library version mismatch",
)


def smi_error(text: str) -> str | None:
    """nvidia-smi's own error line when it printed one (driver not loaded, bad field...)."""
    for line in text.splitlines():
        if any(e.lower() in line.lower() for e in SMI_ERRORS):
            return line.strip()
    return None


@dataclass(frozen=True)
class GpuRow:
    """One GPU from `nvidia-smi --query-gpu=... --format=csv` (header-driven, units stripped)."""

    index: int | None = None
    name: str | None = None
    uuid: str | None = None
    serial: str | None = None
    pci_bus_id: str | None = None
    driver_version: str | None = None
    vbios_version: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    persistence_mode: bool | None = None
    mig_mode: str | None = None
    ecc_mode: bool | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    retired_pages_pending: bool | None = None
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    clocks_throttle_reasons_active: int | None = None
    temperature_c: float | None = None
    power_draw_w: float | None = None
    missing: dict[str, str] = field(default_factory=dict)
    extra: dict[str, str] = field(default_factory=dict)
    raw_line: str = ""


def _bool(v: str) -> bool | None:
    v = v.strip().lower()
    if v in ("enabled", "yes", "on", "true", "1"):
        return True
    if v in ("disabled", "no", "off", "false", "0"):
        return False
    return None


# csv column name (without unit) -> (GpuRow field, converter)
_COLUMNS = {
    "index": ("index", to_int),
    "name": ("name", str.strip),
    "gpu_name": ("name", str.strip),
    "uuid": ("uuid", str.strip),
    "gpu_uuid": ("uuid", str.strip),
    "serial": ("serial", str.strip),
    "gpu_serial": ("serial", str.strip),
    "pci.bus_id": ("pci_bus_id", lambda v: normalize_bus_id(v)),
    "gpu_bus_id": ("pci_bus_id", lambda v: normalize_bus_id(v)),
    "driver_version": ("driver_version", str.strip),
    "vbios_version": ("vbios_version", str.strip),
    "memory.total": ("memory_total_mib", to_int),
    "memory.used": ("memory_used_mib", to_int),
    "persistence_mode": ("persistence_mode", _bool),
    "mig.mode.current": ("mig_mode", str.strip),
    "ecc.mode.current": ("ecc_mode", _bool),
    "ecc.errors.uncorrected.volatile.total": ("ecc_uncorrected_volatile", to_int),
    "ecc.errors.uncorrected.aggregate.total": ("ecc_uncorrected_aggregate", to_int),
    "retired_pages.pending": ("retired_pages_pending", _bool),
    "pcie.link.gen.current": ("pcie_gen_current", to_int),
    "pcie.link.gen.gpucurrent": ("pcie_gen_current", to_int),
    "pcie.link.gen.max": ("pcie_gen_max", to_int),
    "pcie.link.width.current": ("pcie_width_current", to_int),
    "pcie.link.width.max": ("pcie_width_max", to_int),
    "clocks_throttle_reasons.active": ("clocks_throttle_reasons_active", lambda v: int(v, 16) if v.strip().lower().startswith("0x") else to_int(v)),
    "clocks_event_reasons.active": ("clocks_throttle_reasons_active", lambda v: int(v, 16) if v.strip().lower().startswith("0x") else to_int(v)),
    "temperature.gpu": ("temperature_c", to_float),
    "power.draw": ("power_draw_w", to_float),
}


def normalize_bus_id(value: str) -> str:
    """`00000000:12:00.0` / `0000:12:00.0` / `12:00.0` -> `0000:12:00.0` (lower case)."""
    v = value.strip().lower()
    m = re.match(r"(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])", v)
    if not m:
        return v
    domain = (m.group(1) or "0000")[-4:]
    return f"{domain}:{m.group(2)}:{m.group(3)}.{m.group(4)}"


def parse_query_csv(text: str) -> list[GpuRow] | Unparseable:
    """`nvidia-smi --query-gpu=<fields> --format=csv` (with header; units allowed)."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    err = smi_error(text)
    if err:
        return Unparseable.of(f"nvidia-smi error: {err}", text)
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return Unparseable.of("no output", text)
    header = [h.strip() for h in next(csv.reader([lines[0]], skipinitialspace=True))]
    keys = [re.sub(r"\s*\[.*?\]\s*$", "", h).strip().lower() for h in header]
    if not any(k in _COLUMNS for k in keys):
        return Unparseable.of("no CSV header with known --query-gpu fields (noheader output is not read)", text)
    rows: list[GpuRow] = []
    for n, line in enumerate(lines[1:]):
        cells = next(csv.reader([line], skipinitialspace=True), [])
        if len(cells) != len(keys):
            return Unparseable.of(f"row {n + 1} has {len(cells)} cells, header has {len(keys)}", line)
        values: dict[str, object] = {}
        missing: dict[str, str] = {}
        extra: dict[str, str] = {}
        for key, cell in zip(keys, cells):
            spec = _COLUMNS.get(key)
            if spec is None:
                extra[key] = cell.strip()
                continue
            attr, conv = spec
            reason = na_reason(cell)
            if reason:
                missing[attr] = reason
                continue
            try:
                value = conv(cell)
            except ValueError:
                value = None
            if value is None:
                missing[attr] = "unparseable"
            else:
                values[attr] = value
        if "index" not in values and "index" not in missing:
            values["index"] = n
            missing["index_from_order"] = "index column absent: row order used"
        rows.append(GpuRow(**values, missing=missing, extra=extra, raw_line=line))  # type: ignore[arg-type]
    return rows


@dataclass(frozen=True)
class TableGpu:
    index: int
    name: str
    bus_id: str | None
    persistence: str | None
    memory_used_mib: int | None
    memory_total_mib: int | None
    temperature_c: int | None
    power_w: int | None
    utilization_pct: int | None
    raw_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class TableProcess:
    gpu: int | None
    pid: int | None
    type: str | None
    name: str
    memory_mib: int | None
    raw_line: str = ""


@dataclass(frozen=True)
class SmiTable:
    """The default `nvidia-smi` table: header versions, one block per GPU, processes."""

    driver_version: str | None
    cuda_version: str | None
    smi_version: str | None
    gpus: tuple[TableGpu, ...]
    processes: tuple[TableProcess, ...]
    mig_devices: tuple[str, ...] = ()
    header_line: str = ""


_HEADER = re.compile(
    r"NVIDIA-SMI\s+(?P<smi>[\d.]+)\s+(?:Driver Version:\s*(?P<drv>[\d.]+))?\s*(?:CUDA Version:\s*(?P<cuda>[\d.]+|N/A))?"
)
_DRV = re.compile(r"Driver Version:\s*([\d.]+)")
_CUDA = re.compile(r"CUDA Version:\s*([\d.]+)")
_GPU_LINE = re.compile(r"^\|\s*(\d+)\s+(.+?)\s+(On|Off)\s*\|\s*([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)")
_STAT_LINE = re.compile(
    r"^\|\s*(?:\S+)\s+(?P<temp>\d+|N/A)C?\s+\S+\s+(?P<pw>\d+|N/A)W?\s*/\s*\S+\s*\|\s*(?P<used>\d+)MiB\s*/\s*(?P<total>\d+)MiB\s*\|\s*(?P<util>\d+|N/A)%?"
)
_PROC = re.compile(r"^\|\s*(\d+|N/A)\s+(?:\S+\s+\S+\s+)?(\d+)\s+([CGM+]+|C\+G)\s+(.+?)\s+(\d+|N/A)MiB\s*\|")


def parse_table(text: str) -> SmiTable | Unparseable:
    """The default `nvidia-smi` output (no arguments)."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    err = smi_error(text)
    if err:
        return Unparseable.of(f"nvidia-smi error: {err}", text)
    drv = _DRV.search(text)
    cuda = _CUDA.search(text)
    head = _HEADER.search(text)
    lines = text.splitlines()
    gpus: list[TableGpu] = []
    procs: list[TableProcess] = []
    in_procs = False
    mig: list[str] = []
    in_mig = False
    for i, line in enumerate(lines):
        if "Processes:" in line:
            in_procs, in_mig = True, False
            continue
        if "MIG devices:" in line:
            in_mig = True
            continue
        if in_mig and line.startswith("|") and "MiB" in line:
            mig.append(line)
        m = _GPU_LINE.match(line)
        if m and not in_procs:
            stats = _STAT_LINE.match(lines[i + 1]) if i + 1 < len(lines) else None
            gd = stats.groupdict() if stats else {}

            def num(key: str) -> int | None:
                v = gd.get(key)
                return int(v) if v and v.isdigit() else None

            gpus.append(TableGpu(index=int(m.group(1)), name=m.group(2).strip(), bus_id=m.group(4),
                                 persistence=m.group(3), memory_used_mib=num("used"), memory_total_mib=num("total"),
                                 temperature_c=num("temp"), power_w=num("pw"), utilization_pct=num("util"),
                                 raw_lines=tuple(lines[i:i + 2])))
            continue
        if in_procs:
            pm = _PROC.match(line)
            if pm:
                procs.append(TableProcess(gpu=int(pm.group(1)) if pm.group(1).isdigit() else None,
                                          pid=int(pm.group(2)), type=pm.group(3), name=pm.group(4).strip(),
                                          memory_mib=int(pm.group(5)) if pm.group(5).isdigit() else None,
                                          raw_line=line))
    if not drv and not gpus:
        return Unparseable.of("no 'Driver Version' header and no GPU rows: not an nvidia-smi table", text)
    return SmiTable(
        driver_version=drv.group(1) if drv else None,
        cuda_version=cuda.group(1) if cuda else None,
        smi_version=head.group("smi") if head else None,
        gpus=tuple(gpus),
        processes=tuple(procs),
        mig_devices=tuple(mig),
        header_line=next((ln.strip() for ln in lines if "Driver Version" in ln), ""),
    )


@dataclass(frozen=True)
class SmiVersion:
    smi: str | None
    nvml: str | None
    driver: str | None
    cuda: str | None


def parse_version(text: str) -> SmiVersion | Unparseable:
    """`nvidia-smi --version` (newer drivers): NVIDIA-SMI / NVML / DRIVER / CUDA version lines."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"\s*(NVIDIA-SMI|NVML|DRIVER|CUDA)\s+version\s*:\s*(\S+)", line, re.I)
        if m:
            found[m.group(1).upper()] = m.group(2)
    if not found:
        return Unparseable.of("no 'X version : N' lines", text)
    return SmiVersion(found.get("NVIDIA-SMI"), found.get("NVML"), found.get("DRIVER"), found.get("CUDA"))
