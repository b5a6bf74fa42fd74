"""Parsers for version sources: /proc/driver/nvidia/version, os-release, libnccl names, ofed_info, nvcc, modinfo, meminfo.

The `parse_*` functions that return a plain version string are what NodeFacts reads; the `*_info`
variants return the details (open vs proprietary module, major-only NCCL, OFED flavour...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.parse.common import Unparseable


def _refuse(text: Any) -> Unparseable | None:
    if not isinstance(text, str) or not text.strip():
        return Unparseable.of("empty output", text if isinstance(text, str) else "")
    return None


def parse_driver_version_file(text: str) -> str | Unparseable:
    """`/proc/driver/nvidia/version`: `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ...`
    (or `... Open Kernel Module for x86_64  590.44.01 ...`)."""
    info = parse_driver_version_info(text)
    return info if isinstance(info, Unparseable) else info.version


@dataclass(frozen=True)
class DriverVersion:
    """`/proc/driver/nvidia/version`: kernel module version, open or proprietary, and the GCC line."""

    version: str
    open_module: bool
    arch: str | None
    gcc: str | None
    raw_line: str


def parse_driver_version_info(text: str) -> DriverVersion | Unparseable:
    """`/proc/driver/nvidia/version` (also the 'NVRM: loading ...' dmesg banner)."""
    refused = _refuse(text)
    if refused:
        return refused
    m = re.search(r"NVRM(?: version)?:.*?NVIDIA UNIX (?P<open>Open )?(?:(?P<a1>\S+) )?Kernel Module(?: for (?P<a2>\S+))?"
                  r"\s+(?P<v>\d+\.\d+(?:\.\d+)?)", text)
    if not m:
        return Unparseable.of("no 'NVRM version: ... Kernel Module <version>' line", text)
    gcc = re.search(r"GCC version:\s*(.+?)\s*$", text, re.M)
    line = next(ln for ln in text.splitlines() if m.group("v") in ln)
    return DriverVersion(m.group("v"), bool(m.group("open")), m.group("a1") or m.group("a2"),
                         gcc.group(1) if gcc else None, line.strip())


def parse_os_release(text: object) -> dict[str, str]:
    """`/etc/os-release` as a dict (quotes removed)."""
    out: dict[str, str] = {}
    if not isinstance(text, str):
        return out
    for line in text.splitlines():
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"').strip("'")
    return out


def cuda_from_nvml(value: Any) -> str | None:
    """NVML's CUDA driver version integer (12040) -> "12.4", as nvidia-smi prints it."""
    if isinstance(value, int) and value > 0:
        return f"{value // 1000}.{(value % 1000) // 10}"
    return None


def parse_nccl_version_from_libs(text: str) -> str | Unparseable:
    """NCCL version from `ldconfig -p` lines or library paths: `libnccl.so.2.21.5` -> `2.21.5`.

    Only `libnccl.so.2` (no full version in the name) gives the major version alone.
    """
    info = parse_nccl_lib_info(text)
    return info if isinstance(info, Unparseable) else info.version


@dataclass(frozen=True)
class NcclLibVersion:
    """NCCL from library file names: `version` is 'X.Y.Z' (several joined by ' + '), or the major alone."""

    version: str
    major_only: bool  # only `libnccl.so.2` seen: the full version is not in any name
    versions: tuple[str, ...]
    paths: tuple[str, ...]


def _vkey(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in v.split("."))


def parse_nccl_lib_info(text: str) -> NcclLibVersion | Unparseable:
    """`ldconfig -p` lines or newline-separated library paths naming libnccl.so.*."""
    refused = _refuse(text)
    if refused:
        return refused
    paths = tuple(dict.fromkeys(re.findall(r"(\S*libnccl\.so[.\d]*)", text)))
    full = sorted(set(re.findall(r"libnccl\.so\.(\d+\.\d+\.\d+)", text)), key=_vkey)
    if full:
        return NcclLibVersion(" + ".join(full), False, tuple(full), paths)
    major = sorted(set(re.findall(r"libnccl\.so\.(\d+)\b", text)), key=_vkey)
    if major:
        return NcclLibVersion(major[-1], True, tuple(major), paths)
    return Unparseable.of("no libnccl.so.* found", text)


def parse_ofed_info(text: str) -> str | Unparseable:
    """`ofed_info -s`: `MLNX_OFED_LINUX-5.8-1.0.1.1:` / `OFED-internal-23.10-0.5.5:`."""
    info = parse_ofed_info_details(text)
    return info if isinstance(info, Unparseable) else info.raw


@dataclass(frozen=True)
class OfedInfo:
    """`ofed_info -s`: flavour (MLNX_OFED_LINUX / OFED-internal / DOCA / rdma-core) and its version."""

    flavour: str
    version: str
    raw: str


def parse_ofed_info_details(text: str) -> OfedInfo | Unparseable:
    """`ofed_info -s` (`MLNX_OFED_LINUX-5.8-1.0.1.1:`, `OFED-internal-23.10-0.5.5:`) or an rdma-core version line."""
    refused = _refuse(text)
    if refused:
        return refused
    m = re.search(r"((MLNX_OFED_LINUX|OFED-internal|DOCA[-\w]*?|OFED)-(\d[\w.-]*?))(?::|\s|$)", text)
    if m:
        return OfedInfo(m.group(2), m.group(3), m.group(1))
    rc = re.search(r"rdma-core[-\s:]+v?(\d+(?:\.\d+)*)", text)
    if rc:
        return OfedInfo("rdma-core", rc.group(1), rc.group(0).strip())
    return Unparseable.of("no OFED / rdma-core version string", text)


@dataclass(frozen=True)
class MemInfo:
    """`/proc/meminfo`: values in kB, except HugePages_Total/Free/Rsvd/Surp which are page counts."""

    values_kib: dict[str, int]

    @property
    def hugepage_size_kib(self) -> int | None:
        return self.values_kib.get("Hugepagesize")

    @property
    def mem_total_kib(self) -> int | None:
        return self.values_kib.get("MemTotal")

    @property
    def hugepages_total(self) -> int | None:
        return self.values_kib.get("HugePages_Total")

    @property
    def hugepages_free(self) -> int | None:
        return self.values_kib.get("HugePages_Free")


def parse_meminfo(text: object) -> MemInfo | Unparseable:
    """`/proc/meminfo` (values in kB; HugePages_* are counts)."""
    if not isinstance(text, str):
        return Unparseable.of("not text", "")
    vals: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)", line)
        if m:
            vals[m.group(1)] = int(m.group(2))
    if "MemTotal" not in vals:
        return Unparseable.of("no MemTotal line", text)
    return MemInfo(vals)


def parse_nvcc_version(text: object) -> str | Unparseable:
    """`nvcc --version`: `Cuda compilation tools, release 12.6, V12.6.20`."""
    if not isinstance(text, str):
        return Unparseable.of("not text", "")
    m = re.search(r"release\s+(\d+\.\d+),\s*V([\d.]+)", text)
    if not m:
        return Unparseable.of("no 'release X.Y, VX.Y.Z' line", text)
    return m.group(2)


def parse_modinfo(text: str) -> dict[str, str] | Unparseable:
    """`modinfo nvidia`: key: value lines (first value of a repeated key kept)."""
    info = parse_modinfo_details(text)
    return info if isinstance(info, Unparseable) else {k: v[0] for k, v in info.fields.items()}


@dataclass(frozen=True)
class ModInfo:
    """`modinfo nvidia`: every key with all its values (alias/firmware/parm repeat); open module by its license."""

    version: str | None
    license: str | None
    open_module: bool | None  # 'Dual MIT/GPL' = open kernel module, 'NVIDIA' = proprietary
    fields: dict[str, tuple[str, ...]] = field(default_factory=dict)
    parms: tuple[str, ...] = ()


def parse_modinfo_details(text: str) -> ModInfo | Unparseable:
    """`modinfo nvidia` output."""
    refused = _refuse(text)
    if refused:
        return refused
    fields: dict[str, list[str]] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(.*)$", line)
        if m:
            fields.setdefault(m.group(1), []).append(m.group(2).strip())
    if "version" not in fields and "filename" not in fields:
        return Unparseable.of("no 'version:' or 'filename:' line", text)
    lic = fields["license"][0] if fields.get("license") else None
    return ModInfo(version=fields["version"][0] if fields.get("version") else None, license=lic,
                   open_module=None if lic is None else ("MIT" in lic or "GPL" in lic),
                   fields={k: tuple(v) for k, v in fields.items()},
                   parms=tuple(p.split(":", 1)[0] for p in fields.get("parm", [])))
