"""Parser for the default `nvidia-smi` table (no arguments): versions, GPU blocks, processes, MIG devices."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from preflight.parse.common import Unparseable, na_reason, to_int
from preflight.parse.common import smi_guard as _guard


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


def _table_gpu(block: list[str]) -> TableGpu | None:
    c1 = _cells(block[0])
    m = _G1.match(c1[0]) if c1 else None
    if not m:
        return None
    bus = _BUS.search(c1[1]) if len(c1) > 1 else None
    missing: dict[str, str] = {}
    vals: dict[str, Any] = {}
    if len(c1) > 2:
        vals["ecc_uncorrected_volatile"] = to_int(c1[2], signed=False)
        if vals["ecc_uncorrected_volatile"] is None:
            missing["ecc_uncorrected_volatile"] = na_reason(c1[2]) or "unparseable"
    c2 = _cells(block[1]) if len(block) > 1 else []
    s = _G2.match(c2[0]) if c2 else None
    if s:
        for key, attr in (("fan", "fan_pct"), ("temp", "temperature_c"), ("pw", "power_w"), ("cap", "power_cap_w")):
            vals[attr] = to_int(s.group(key), signed=False)
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


def _process_row(line: str) -> TableProcess | None:
    """A row of the Processes section (`|  0  N/A  N/A  1234  C  python  80000MiB |`), else None."""
    pm = _PROC.match(line)
    if not pm:
        return None
    return TableProcess(gpu=to_int(pm.group(1), signed=False), pid=int(pm.group(4)), type=pm.group(5),
                        name=pm.group(6).strip(), memory_mib=to_int(pm.group(7), signed=False),
                        gi_id=pm.group(2), ci_id=pm.group(3), raw_line=line)


def _mig_line(migs: list[MigDevice], line: str) -> None:
    """A MIG devices line: a device's first line starts a MigDevice, its second (BAR1 memory) completes it."""
    mm = _MIG1.match(line)
    if mm:
        c = _cells(line)
        mem = _MEM.search(c[1]) if len(c) > 1 else None
        sm = re.match(r"\s*(\d+)", c[2]) if len(c) > 2 else None
        migs.append(MigDevice(gpu=int(mm.group(1)), gi_id=to_int(mm.group(2), signed=False),
                              ci_id=to_int(mm.group(3), signed=False), mig_dev=to_int(mm.group(4), signed=False),
                              memory_used_mib=int(mem.group(1)) if mem else None,
                              memory_total_mib=int(mem.group(2)) if mem else None,
                              sm_count=int(sm.group(1)) if sm else None, raw_lines=(line,)))
    elif migs and _MEM.search(line) and len(migs[-1].raw_lines) == 1:
        bar = _MEM.search(line)
        last = migs.pop()
        migs.append(dataclasses.replace(last, bar1_used_mib=int(bar.group(1)) if bar else None,
                                        bar1_total_mib=int(bar.group(2)) if bar else None,
                                        raw_lines=last.raw_lines + (line,)))


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
            proc = _process_row(line)
            if proc is not None:
                procs.append(proc)
        else:
            _mig_line(migs, line)
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
