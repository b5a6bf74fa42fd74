"""Parsers for nvidia-smi: `--query-gpu` CSV and `--version`; the default table (smi_table), `-q` and `-L` (smi_query) are re-exported."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from preflight.parse.common import SMI_ERRORS, Unparseable, na_reason, normalize_bus_id, smi_error, to_float, to_int
from preflight.parse.common import smi_guard as _guard
from preflight.parse.smi_query import ListedGpu, QuerySections, parse_list_gpus, parse_query_sections
from preflight.parse.smi_table import MigDevice, SmiTable, TableGpu, TableProcess, parse_table

__all__ = [
    "SMI_ERRORS", "GpuRow", "ListedGpu", "MigDevice", "QuerySections", "SmiTable", "SmiVersion", "TableGpu", "TableProcess",
    "normalize_bus_id", "parse_list_gpus", "parse_query_csv", "parse_query_sections", "parse_table", "parse_version",
    "smi_error",
]


# ---------------------------------------------------------------- --query-gpu CSV


@dataclass(frozen=True)
class GpuRow:
    """One GPU from `nvidia-smi --query-gpu=... --format=csv` (header-driven, units stripped).

    Absent values are None with the reason in `missing` (`na`, `not_supported`, `not_in_output`...).
    """

    index: int | None = None
    name: str | None = None
    uuid: str | None = None
    serial: str | None = None
    pci_bus_id: str | None = None
    pci_bus_id_raw: str | None = None
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
    if v in ("enabled", "yes", "on", "true", "1", "active"):
        return True
    if v in ("disabled", "no", "off", "false", "0", "not active"):
        return False
    return None


def _hex_or_int(v: str) -> int | None:
    v = v.strip()
    if v.lower().startswith("0x"):
        try:
            return int(v, 16)
        except ValueError:
            return None
    return to_int(v)


_COLUMNS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "index": ("index", to_int),
    "name": ("name", str.strip),
    "gpu_name": ("name", str.strip),
    "uuid": ("uuid", str.strip),
    "gpu_uuid": ("uuid", str.strip),
    "serial": ("serial", str.strip),
    "gpu_serial": ("serial", str.strip),
    "pci.bus_id": ("pci_bus_id", normalize_bus_id),
    "gpu_bus_id": ("pci_bus_id", normalize_bus_id),
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
    "pcie.link.gen.gpumax": ("pcie_gen_max", to_int),
    "pcie.link.width.current": ("pcie_width_current", to_int),
    "pcie.link.width.max": ("pcie_width_max", to_int),
    "clocks_throttle_reasons.active": ("clocks_throttle_reasons_active", _hex_or_int),
    "clocks_event_reasons.active": ("clocks_throttle_reasons_active", _hex_or_int),
    "temperature.gpu": ("temperature_c", to_float),
    "power.draw": ("power_draw_w", to_float),
}
_ROW_FIELDS = sorted({attr for attr, _ in _COLUMNS.values()})


def parse_query_csv(text: str) -> list[GpuRow] | Unparseable:
    """`nvidia-smi --query-gpu=<fields> --format=csv` (header required; units like ` MiB` allowed).

    `noheader` output cannot be mapped to fields and is refused with that reason.
    """
    refused = _guard(text)
    if refused:
        return refused
    lines = [ln for ln in text.replace("\r", "").splitlines() if ln.strip()]
    try:
        header = [h.strip() for h in next(csv.reader([lines[0]], skipinitialspace=True))]
    except (csv.Error, StopIteration, IndexError):
        return Unparseable.of("no CSV header line", text)
    keys = [re.sub(r"\s*\[.*?\]\s*$", "", h).strip().lower() for h in header]
    if not any(k in _COLUMNS for k in keys):
        return Unparseable.of("no CSV header with known --query-gpu fields (noheader output is not read)", text)
    present = {_COLUMNS[k][0] for k in keys if k in _COLUMNS}
    rows: list[GpuRow] = []
    for n, line in enumerate(lines[1:]):
        try:
            cells = next(csv.reader([line], skipinitialspace=True), [])
        except csv.Error:
            return Unparseable.of(f"row {n + 1} is not CSV", line)
        if len(cells) != len(keys):
            return Unparseable.of(f"row {n + 1} has {len(cells)} cells, header has {len(keys)} (truncated?)", line)
        values: dict[str, Any] = {}
        missing = {attr: "not_in_output" for attr in _ROW_FIELDS if attr not in present}
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
            except (ValueError, TypeError):
                value = None
            if value is None:
                missing[attr] = "unparseable"
            else:
                values[attr] = value
                if attr == "pci_bus_id":
                    values["pci_bus_id_raw"] = cell.strip()
        if "index" not in values and "index" not in present:
            values["index"] = n
            missing.pop("index", None)
            missing["index_from_order"] = "index column absent: row order used"
        rows.append(GpuRow(**values, missing=missing, extra=extra, raw_line=line))
    if not rows:
        return Unparseable.of("CSV header but no GPU rows", text)
    return rows


# ---------------------------------------------------------------- --version, -L


@dataclass(frozen=True)
class SmiVersion:
    """`nvidia-smi --version`: the four version lines of newer drivers."""

    smi: str | None
    nvml: str | None
    driver: str | None
    cuda: str | None
    raw_lines: tuple[str, ...] = ()


def parse_version(text: str) -> SmiVersion | Unparseable:
    """`nvidia-smi --version` (newer drivers): NVIDIA-SMI / NVML / DRIVER / CUDA version lines."""
    refused = _guard(text)
    if refused:
        return refused
    found: dict[str, str] = {}
    raw: list[str] = []
    for line in text.splitlines():
        m = re.match(r"\s*(NVIDIA-SMI|NVML|DRIVER|CUDA)\s+version\s*:\s*(\S+)", line, re.I)
        if m:
            found[m.group(1).upper()] = m.group(2)
            raw.append(line)
    if not found:
        return Unparseable.of("no 'X version : N' lines (drivers before ~R525 lack --version)", text)
    return SmiVersion(found.get("NVIDIA-SMI"), found.get("NVML"), found.get("DRIVER"), found.get("CUDA"), tuple(raw))
