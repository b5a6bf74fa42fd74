"""Parsers for nvidia-smi: `--query-gpu` CSV and `--version`; the default table (smi_table), `-q` and `-L` (smi_query) are re-exported.

Also where nvidia-smi's outputs become GpuFacts: from the CSV rows or the table, then the `-q` sections merged in.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from preflight.facts import GpuFacts
from preflight.parse.common import SMI_ERRORS, Unparseable, na_reason, normalize_bus_id, smi_error, to_float, to_int
from preflight.parse.common import smi_guard as _guard
from preflight.parse.smi_query import ListedGpu, QuerySections, parse_list_gpus, parse_query_sections
from preflight.parse.smi_table import MigDevice, SmiTable, TableGpu, TableProcess, parse_table

__all__ = [
    "BAD_CLOCK_REASONS", "SMI_ERRORS", "GpuRow", "ListedGpu", "MigDevice", "QuerySections", "SmiTable", "SmiVersion",
    "TableGpu", "TableProcess", "gpus_from_rows", "gpus_from_table", "merge_q_sections", "normalize_bus_id",
    "parse_list_gpus", "parse_query_csv", "parse_query_sections", "parse_table", "parse_version", "smi_error",
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


# ---------------------------------------------------------------- GpuFacts from the nvidia-smi outputs


def gpus_from_rows(rows: list[GpuRow]) -> tuple[GpuFacts, ...]:
    """One GpuFacts per `--query-gpu` row (the best source: every field by name)."""
    return tuple(
        GpuFacts(index=r.index if r.index is not None else i, name=r.name, uuid=r.uuid, bus_id=r.pci_bus_id,
                 serial=r.serial, driver_version=r.driver_version, vbios_version=r.vbios_version,
                 memory_total_mib=r.memory_total_mib, memory_used_mib=r.memory_used_mib,
                 persistence_mode=r.persistence_mode, mig_mode=r.mig_mode, ecc_mode=r.ecc_mode,
                 ecc_uncorrected_volatile=r.ecc_uncorrected_volatile,
                 ecc_uncorrected_aggregate=r.ecc_uncorrected_aggregate, pcie_gen_current=r.pcie_gen_current,
                 pcie_gen_max=r.pcie_gen_max, pcie_width_current=r.pcie_width_current,
                 pcie_width_max=r.pcie_width_max, temperature_c=r.temperature_c, raw_line=r.raw_line)
        for i, r in enumerate(rows)
    )


def gpus_from_table(table: SmiTable) -> tuple[GpuFacts, ...]:
    """One GpuFacts per GPU of the default table (the fallback when `--query-gpu` gave nothing)."""
    return tuple(
        GpuFacts(index=g.index, name=g.name, bus_id=normalize_bus_id(g.bus_id) if g.bus_id else None,
                 memory_total_mib=g.memory_total_mib, memory_used_mib=g.memory_used_mib,
                 driver_version=table.driver_version, persistence_mode=(g.persistence == "On") if g.persistence else None,
                 ecc_uncorrected_volatile=g.ecc_uncorrected_volatile, mig_mode=g.mig_mode,
                 temperature_c=float(g.temperature_c) if g.temperature_c is not None else None,
                 raw_line=g.raw_lines[0] if g.raw_lines else "")
        for g in table.gpus
    )


# ---------------------------------------------------------------- merging `nvidia-smi -q` sections into GpuFacts


def _merge_link(g: GpuFacts, tree: dict[str, Any], changes: dict[str, Any], evidence: list[str]) -> None:
    """PCIe generation and width from `PCI > GPU Link Info`, where the CSV did not give them."""
    link = (tree.get("PCI") or {}).get("GPU Link Info") or {}
    gen, width = link.get("PCIe Generation") or {}, link.get("Link Width") or {}
    for name, value in (("pcie_gen_current", gen.get("Current")), ("pcie_gen_max", gen.get("Max")),
                        ("pcie_width_current", width.get("Current")), ("pcie_width_max", width.get("Max"))):
        if getattr(g, name) is None and to_int(value) is not None:
            changes[name] = to_int(value)
    if width:
        evidence.append(f"GPU {g.bus_id} PCIe: Gen {gen.get('Current')}/{gen.get('Max')}, "
                        f"width {width.get('Current')}/{width.get('Max')}")


def _fabric_id(value: Any) -> str | None:
    """A ClusterUUID / CliqueId as printed, or None for N/A and the all-zero UUID (no multi-node domain)."""
    text = str(value).strip() if isinstance(value, str) else ""
    zero_uuid = "-" in text and set(text.replace("-", "")) == {"0"}
    return None if not text or na_reason(text) or zero_uuid else text


def _merge_fabric(g: GpuFacts, tree: dict[str, Any], changes: dict[str, Any], evidence: list[str]) -> None:
    """`Fabric > State / Status` and, on GB200/GB300, its `Health` rows (Summary, Bandwidth, Route Recovery...)."""
    fabric = tree.get("Fabric")
    if not (isinstance(fabric, dict) and fabric.get("State")):
        return
    changes["fabric_state"] = f"{fabric.get('State')} / {fabric.get('Status')}"
    uuid, clique = _fabric_id(fabric.get("ClusterUUID")), _fabric_id(fabric.get("CliqueId"))
    changes["fabric_cluster_uuid"] = uuid
    changes["fabric_clique_id"] = clique if uuid else None  # a clique means nothing without its cluster
    evidence.append(f"GPU {g.bus_id} Fabric: State {fabric.get('State')}, Status {fabric.get('Status')}")
    if uuid:
        evidence.append(f"GPU {g.bus_id} Fabric: ClusterUUID {uuid}, CliqueId {fabric.get('CliqueId')}")
    health = fabric.get("Health")
    if isinstance(health, dict) and health:
        rows = tuple((str(k), str(v)) for k, v in health.items() if not isinstance(v, dict))
        changes["fabric_health"] = health.get("Summary") if isinstance(health.get("Summary"), str) else None
        changes["fabric_health_fields"] = rows
        evidence.append(f"GPU {g.bus_id} Fabric Health: " + ", ".join(f"{k} {v}" for k, v in rows))


def _merge_full(g: GpuFacts, tree: dict[str, Any], changes: dict[str, Any], evidence: list[str]) -> None:
    """Facts only the full `nvidia-smi -q` has: PCIe link, row remapping, temperature margin, fabric state."""
    _merge_link(g, tree, changes, evidence)
    remap = tree.get("Remapped Rows")
    if isinstance(remap, dict) and remap:
        changes["remap_pending"] = str(remap.get("Pending", "")).strip().lower() == "yes"
        changes["remap_failure"] = str(remap.get("Remapping Failure Occurred", "")).strip().lower() == "yes"
        changes["remap_uncorrectable"] = to_int(remap.get("Uncorrectable Error"))
        evidence.append(f"GPU {g.bus_id} Remapped Rows: pending {remap.get('Pending')}, failure "
                        f"{remap.get('Remapping Failure Occurred')}, uncorrectable {remap.get('Uncorrectable Error')}")
    temp = tree.get("Temperature") or {}
    if isinstance(temp, dict) and to_int(temp.get("GPU T.Limit Temp")) is not None:
        changes["temp_limit_margin_c"] = float(to_int(temp.get("GPU T.Limit Temp")) or 0)
        if g.temperature_c is None and to_int(temp.get("GPU Current Temp")) is not None:
            changes["temperature_c"] = float(to_int(temp.get("GPU Current Temp")) or 0)
        evidence.append(f"GPU {g.bus_id} Temperature: current {temp.get('GPU Current Temp')}, "
                        f"T.Limit {temp.get('GPU T.Limit Temp')}")
    _merge_fabric(g, tree, changes, evidence)
    if g.vbios_version is None and tree.get("VBIOS Version"):
        changes["vbios_version"] = str(tree["VBIOS Version"])
    if g.persistence_mode is None and tree.get("Persistence Mode"):
        changes["persistence_mode"] = str(tree["Persistence Mode"]).lower() == "enabled"
    mig = tree.get("MIG Mode")
    if g.mig_mode is None and isinstance(mig, dict) and mig.get("Current"):
        changes["mig_mode"] = mig["Current"]


_UNCORRECTABLE = re.compile(r"uncorrectable|double bit", re.I)


def _sum_uncorrectable(section: Any) -> int | None:
    """Uncorrectable ECC counts in an `ECC Errors > Volatile|Aggregate` subtree (SRAM + DRAM, or old 'Double Bit')."""
    if not isinstance(section, dict):
        return None
    total, seen = 0, False
    for key, value in section.items():
        if isinstance(value, dict):
            sub = _sum_uncorrectable(value) if _UNCORRECTABLE.search(key) else None
            if sub is not None:
                total, seen = total + sub, True
            continue
        if (_UNCORRECTABLE.search(key) or key.strip().lower() == "total") and str(value).strip().isdigit():
            total, seen = total + int(value), True
    return total if seen else None


def _merge_ecc(g: GpuFacts, tree: dict[str, Any], changes: dict[str, Any], evidence: list[str]) -> None:
    """Uncorrectable ECC counts and the ECC mode from an `ECC Errors` section."""
    errors = tree.get("ECC Errors", {})
    vol = _sum_uncorrectable(errors.get("Volatile"))
    agg = _sum_uncorrectable(errors.get("Aggregate"))
    # sources disagreeing on an error counter: an error any source saw is real (the table's
    # "Volatile Uncorr. ECC" column can lag the -q section, or show only part of it)
    if vol is not None and (g.ecc_uncorrected_volatile is None or vol > g.ecc_uncorrected_volatile):
        changes["ecc_uncorrected_volatile"] = vol
    if agg is not None and (g.ecc_uncorrected_aggregate is None or agg > g.ecc_uncorrected_aggregate):
        changes["ecc_uncorrected_aggregate"] = agg
    mode = tree.get("ECC Mode", {})
    if g.ecc_mode is None and isinstance(mode, dict) and mode.get("Current"):
        changes["ecc_mode"] = mode["Current"].lower() == "enabled"
    evidence.append(f"GPU {g.bus_id} ECC Errors: volatile uncorrectable {vol}, aggregate uncorrectable {agg}")


def _merge_perf(g: GpuFacts, tree: dict[str, Any], changes: dict[str, Any], evidence: list[str]) -> None:
    """The active clocks event (throttle) reasons from a PERFORMANCE section."""
    reasons = tree.get("Clocks Event Reasons") or tree.get("Clocks Throttle Reasons") or {}
    if isinstance(reasons, dict):
        active = tuple(k for k, v in reasons.items() if isinstance(v, str) and v.strip() == "Active")
        changes["clock_event_reasons"] = active
        evidence.append(f"GPU {g.bus_id} Clocks Event Reasons active: {', '.join(active) or 'none'}")


# Reasons that mean the GPU is being slowed by a fault or the environment, not by being idle or by settings
BAD_CLOCK_REASONS = ("HW Slowdown", "HW Thermal Slowdown", "HW Power Brake Slowdown", "SW Thermal Slowdown")


def _by_bus(sections: QuerySections) -> dict[str, dict[str, Any]]:
    """A `-q` output's GPU blocks by normalised PCI bus id (the first block of a bus id spelled twice wins)."""
    out: dict[str, dict[str, Any]] = {}
    for bus, tree in sections.gpus.items():
        out.setdefault(normalize_bus_id(bus), tree)
    return out


def _tree_of(index: dict[str, dict[str, Any]] | None, g: GpuFacts) -> dict[str, Any] | None:
    """This GPU's block in a `-q` output (`_by_bus`), matched by PCI bus id."""
    if index is None or not g.bus_id:
        return None
    return index.get(normalize_bus_id(g.bus_id))


def merge_q_sections(gpus: tuple[GpuFacts, ...], full: QuerySections | None, ecc: QuerySections | None,
                     perf: QuerySections | None) -> tuple[GpuFacts, ...]:
    """Merge the full `nvidia-smi -q` and its `-d ECC` / `-d PERFORMANCE` sections into the GPUs (by PCI bus id).

    The full -q answers a section first: the -d ECC/PERFORMANCE copies then add nothing.
    """
    out = []
    f_idx, e_idx, p_idx = (None if s is None else _by_bus(s) for s in (full, ecc, perf))
    for g in gpus:
        changes: dict[str, Any] = {}
        evidence: list[str] = []
        done: set[str] = set()
        for index, kind in ((f_idx, "ecc"), (f_idx, "perf"), (f_idx, "full"), (e_idx, "ecc"), (p_idx, "perf")):
            if index is None or kind in done:
                continue
            tree = _tree_of(index, g)
            if tree is None:
                continue
            done.add(kind)
            if kind == "full":
                changes["q_sections"] = frozenset(k for k in tree if isinstance(k, str))
                _merge_full(g, tree, changes, evidence)
            elif kind == "ecc":
                _merge_ecc(g, tree, changes, evidence)
            else:
                _merge_perf(g, tree, changes, evidence)
        if changes:
            changes["evidence"] = g.evidence + tuple(evidence)
            g = dataclasses.replace(g, **changes)
        out.append(g)
    return tuple(out)
