"""Parsers for nvidia-smi: `--query-gpu` CSV, the default table, `--version`, `-q` sections, `-L`."""

from __future__ import annotations

import csv
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any, Callable, NamedTuple

from preflight.parse.common import Unparseable, is_probably_text, na_reason, to_float, to_int

SMI_ERRORS = (
    "NVIDIA-SMI has failed",
    "is not a valid field to query",
    "No devices were found",
    "Unable to determine the device handle",
    "Failed to initialize NVML",
    "couldn't communicate with the NVIDIA driver",
    "Driver/library version mismatch",
    "Insufficient Permissions",
)


def smi_error(text: str) -> str | None:
    """nvidia-smi's own error line when it printed one (driver not loaded, bad field...)."""
    for line in text.splitlines():
        if any(e.lower() in line.lower() for e in SMI_ERRORS):
            return line.strip()
    return None


def _guard(text: Any) -> Unparseable | None:
    """The common refusals: not text, binary, or an nvidia-smi error message instead of output."""
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    err = smi_error(text)
    if err:
        return Unparseable.of(f"nvidia-smi error: {err}", text)
    return None


def normalize_bus_id(value: str) -> str:
    """`00000000:12:00.0` / `0000:12:00.0` / `12:00.0` -> `0000:12:00.0` (lower case)."""
    v = value.strip().lower()
    m = re.match(r"(?:([0-9a-f]{4,8}):)?([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])", v)
    if not m:
        return v
    domain = (m.group(1) or "0000")[-4:]
    return f"{domain}:{m.group(2)}:{m.group(3)}.{m.group(4)}"


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


# ---------------------------------------------------------------- default table


@dataclass(frozen=True)
class TableGpu:
    """One GPU block of the default table (2 or 3 lines; the third holds MIG M. on newer drivers)."""

    index: int
    name: str
    bus_id: str | None
    persistence: str | None  # "On" / "Off" as printed
    memory_used_mib: int | None
    memory_total_mib: int | None
    temperature_c: int | None
    power_w: int | None
    utilization_pct: int | None
    power_cap_w: int | None = None
    fan_pct: int | None = None
    perf_state: str | None = None
    display_active: str | None = None
    ecc_uncorrected_volatile: int | None = None
    compute_mode: str | None = None
    mig_mode: str | None = None
    missing: dict[str, str] = field(default_factory=dict)
    raw_lines: tuple[str, ...] = ()

    @property
    def persistence_mode(self) -> bool | None:
        return None if self.persistence is None else self.persistence == "On"


@dataclass(frozen=True)
class TableProcess:
    """A row of the table's `Processes:` section (GPU memory holders)."""

    gpu: int | None
    pid: int | None
    type: str | None
    name: str
    memory_mib: int | None
    gi_id: str | None = None
    ci_id: str | None = None
    raw_line: str = ""


@dataclass(frozen=True)
class MigDevice:
    """A row of the table's `MIG devices:` section (two lines: memory, then BAR1)."""

    gpu: int
    gi_id: int | None
    ci_id: int | None
    mig_dev: int | None
    memory_used_mib: int | None
    memory_total_mib: int | None
    bar1_used_mib: int | None = None
    bar1_total_mib: int | None = None
    sm_count: int | None = None
    raw_lines: tuple[str, ...] = ()


@dataclass(frozen=True)
class SmiTable:
    """The default `nvidia-smi` table: header versions, one block per GPU, processes, MIG devices."""

    driver_version: str | None
    cuda_version: str | None
    smi_version: str | None
    gpus: tuple[TableGpu, ...]
    processes: tuple[TableProcess, ...]
    mig_devices: tuple[MigDevice, ...] = ()
    header_line: str = ""
    no_processes: bool = False  # "No running processes found" was printed
    fragment: bool = False
    notes: tuple[str, ...] = ()


_DRV = re.compile(r"Driver Version:\s*([\d.]+)")
_CUDA = re.compile(r"CUDA Version:\s*([\d.]+)")
_SMI = re.compile(r"NVIDIA-SMI\s+(?:version\s*:\s*)?([\d.]+)")
_G1 = re.compile(r"^\s*(\d+)\s+(.+?)\s+(On|Off)\s*$")
_BUS = re.compile(r"([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-7])\s*(\S+)?")
_G2 = re.compile(r"^\s*(?P<fan>\d+%|N/A|ERR!)\s+(?P<temp>\d+C|N/A)\s+(?P<perf>P\d+|N/A|ERR!)\s+(?:(?P<pw>\d+W|N/A)\s*/\s*(?P<cap>\d+W|N/A))?")
_MEM = re.compile(r"(\d+)MiB\s*/\s*(\d+)MiB")
_PROC = re.compile(r"^\|\s*(\d+|N/A)\s+(?:(\S+)\s+(\S+)\s+)?(\d+)\s+(C\+G|[CGM])\s+(.+?)\s+(\d+MiB|N/A)\s*\|")
_MIG1 = re.compile(r"^\|\s*(\d+)\s+(\d+|N/A)\s+(\d+|N/A)\s+(\d+|N/A)\s*\|")


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _num(value: str | None) -> int | None:
    m = re.match(r"\s*(\d+)", value or "")
    return int(m.group(1)) if m else None


def _table_gpu(block: list[str]) -> TableGpu | None:
    c1 = _cells(block[0])
    m = _G1.match(c1[0]) if c1 else None
    if not m:
        return None
    bus = _BUS.search(c1[1]) if len(c1) > 1 else None
    missing: dict[str, str] = {}
    vals: dict[str, Any] = {}
    if len(c1) > 2:
        vals["ecc_uncorrected_volatile"] = _num(c1[2])
        if vals["ecc_uncorrected_volatile"] is None:
            missing["ecc_uncorrected_volatile"] = na_reason(c1[2]) or "unparseable"
    c2 = _cells(block[1]) if len(block) > 1 else []
    s = _G2.match(c2[0]) if c2 else None
    if s:
        for key, attr in (("fan", "fan_pct"), ("temp", "temperature_c"), ("pw", "power_w"), ("cap", "power_cap_w")):
            vals[attr] = _num(s.group(key))
            if vals[attr] is None:
                missing[attr] = "na" if (s.group(key) or "").upper() == "N/A" else "not_in_output"
        vals["perf_state"] = s.group("perf") if s.group("perf").startswith("P") else None
    mem = _MEM.search(c2[1]) if len(c2) > 1 else None
    if mem:
        vals["memory_used_mib"], vals["memory_total_mib"] = int(mem.group(1)), int(mem.group(2))
    if len(c2) > 2:
        util = re.match(r"\s*(\d+)%\s*(\S.*)?$", c2[2])
        vals["utilization_pct"] = int(util.group(1)) if util else None
        vals["compute_mode"] = (util.group(2) or "").strip() or None if util else None
    c3 = _cells(block[2]) if len(block) > 2 else []
    if len(c3) > 2 and c3[2]:
        vals["mig_mode"] = c3[2]
    for attr in ("memory_used_mib", "memory_total_mib", "temperature_c", "power_w", "utilization_pct"):
        if vals.get(attr) is None:
            vals[attr] = None
            missing.setdefault(attr, "not_in_output")
    return TableGpu(index=int(m.group(1)), name=m.group(2).strip(), bus_id=bus.group(1) if bus else None,
                    persistence=m.group(3), display_active=bus.group(2) if bus else None,
                    missing=missing, raw_lines=tuple(block), **vals)


def parse_table(text: str) -> SmiTable | Unparseable:
    """The default `nvidia-smi` output (no arguments); 535/555-era widths, fragments, MIG section."""
    refused = _guard(text)
    if refused:
        return refused
    lines = text.replace("\r", "").splitlines()
    drv, cuda, smi = _DRV.search(text), _CUDA.search(text), _SMI.search(text)
    gpus: list[TableGpu] = []
    procs: list[TableProcess] = []
    migs: list[MigDevice] = []
    notes: list[str] = []
    section = "gpus"
    block: list[str] = []
    no_procs = False

    def flush() -> None:
        if block:
            g = _table_gpu(block)
            if g is not None:
                gpus.append(g)
            elif any("MiB" in b for b in block):
                notes.append("GPU block without its first line (fragment) skipped")
            block.clear()

    for line in lines:
        if "Processes:" in line:
            flush()
            section = "procs"
            continue
        if "MIG devices:" in line:
            flush()
            section = "mig"
            continue
        if not line.lstrip().startswith("|"):
            if section == "gpus" and line.lstrip().startswith("+"):
                flush()
            continue
        if section == "gpus":
            if "=====" in line or "GPU  Name" in line or "Pwr:Usage" in line or "MIG M." in line:
                continue
            c = _cells(line)
            if c and _G1.match(c[0]):
                flush()
            block.append(line)
        elif section == "procs":
            if "No running processes" in line:
                no_procs = True
            pm = _PROC.match(line)
            if pm:
                procs.append(TableProcess(gpu=_num(pm.group(1)), pid=int(pm.group(4)), type=pm.group(5),
                                          name=pm.group(6).strip(), memory_mib=_num(pm.group(7)),
                                          gi_id=pm.group(2), ci_id=pm.group(3), raw_line=line))
        else:
            mm = _MIG1.match(line)
            if mm:
                c = _cells(line)
                mem = _MEM.search(c[1]) if len(c) > 1 else None
                sm = re.match(r"\s*(\d+)", c[2]) if len(c) > 2 else None
                migs.append(MigDevice(gpu=int(mm.group(1)), gi_id=_num(mm.group(2)), ci_id=_num(mm.group(3)),
                                      mig_dev=_num(mm.group(4)), memory_used_mib=int(mem.group(1)) if mem else None,
                                      memory_total_mib=int(mem.group(2)) if mem else None,
                                      sm_count=int(sm.group(1)) if sm else None, raw_lines=(line,)))
            elif migs and _MEM.search(line) and len(migs[-1].raw_lines) == 1:
                bar = _MEM.search(line)
                last = migs.pop()
                migs.append(dataclasses.replace(last, bar1_used_mib=int(bar.group(1)) if bar else None,
                                                bar1_total_mib=int(bar.group(2)) if bar else None,
                                                raw_lines=last.raw_lines + (line,)))
    flush()
    if not drv and not gpus and not migs:
        return Unparseable.of("no 'Driver Version' header, GPU rows or MIG rows: not an nvidia-smi table", text)
    fragment = drv is None
    if fragment:
        notes.append("no header line (fragment): driver and CUDA versions unknown")
    return SmiTable(
        driver_version=drv.group(1) if drv else None,
        cuda_version=cuda.group(1) if cuda else None,
        smi_version=smi.group(1) if smi else None,
        gpus=tuple(gpus), processes=tuple(procs), mig_devices=tuple(migs),
        header_line=next((ln.strip() for ln in lines if "Driver Version" in ln), ""),
        no_processes=no_procs, fragment=fragment, notes=tuple(notes),
    )


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


class ListedGpu(NamedTuple):
    """A line of `nvidia-smi --list-gpus` (-L); a tuple so `(index, name, uuid)` unpacking keeps working."""

    index: int
    name: str
    uuid: str | None


def parse_list_gpus(text: str) -> list[ListedGpu] | Unparseable:
    """`nvidia-smi --list-gpus` (-L): index, name, UUID (MIG sub-lines ignored)."""
    refused = _guard(text)
    if refused:
        return refused
    out = []
    for line in text.splitlines():
        m = re.match(r"^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$", line)
        if m:
            out.append(ListedGpu(int(m.group(1)), m.group(2), m.group(3)))
    return out or Unparseable.of("no 'GPU n: <name> (UUID: ...)' lines", text)


# ---------------------------------------------------------------- -q sections


@dataclass(frozen=True)
class QuerySections:
    """`nvidia-smi -q [-d ...]`: header fields and one nested key/value tree per GPU (by bus id as printed)."""

    header: dict[str, str]
    gpus: dict[str, dict[str, Any]]

    def gpu(self, bus_id: str) -> dict[str, Any] | None:
        """The tree of a GPU whatever the bus id's spelling (`00000000:12:00.0` / `0000:12:00.0`)."""
        want = normalize_bus_id(bus_id)
        return next((t for b, t in self.gpus.items() if normalize_bus_id(b) == want), None)


def parse_query_sections(text: str) -> QuerySections | Unparseable:
    """`nvidia-smi -q` / `-q -d ECC,PERFORMANCE`: indentation gives nesting (key column width varies by driver)."""
    refused = _guard(text)
    if refused:
        return refused
    header: dict[str, str] = {}
    gpus: dict[str, dict[str, Any]] = {}
    stack: list[tuple[int, dict[str, Any]]] = []
    for line in text.replace("\r", "").expandtabs(8).splitlines():
        if not line.strip() or line.lstrip().startswith("="):
            continue
        m = re.match(r"^GPU\s+([0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.\d)\s*$", line)
        if m:
            root: dict[str, Any] = {}
            gpus[m.group(1)] = root
            stack = [(0, root)]
            continue
        indent = len(line) - len(line.lstrip())
        kv = re.match(r"^\s*(.+?)\s*:\s*(.*?)\s*$", line)
        key = kv.group(1) if kv else line.strip()
        value = kv.group(2) if kv else ""
        if not stack:
            if kv:
                header[key] = value
            continue
        while len(stack) > 1 and indent <= stack[-1][0]:
            stack.pop()
        parent = stack[-1][1]
        if value == "":
            child: dict[str, Any] = {}
            parent[key] = child
            stack.append((indent, child))
        else:
            parent[key] = value
    if not gpus and not header:
        return Unparseable.of("no 'Key : value' lines and no 'GPU <bus id>' sections", text)
    return QuerySections(header=header, gpus=gpus)
