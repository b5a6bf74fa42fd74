"""Parsers for version sources: /proc/driver/nvidia/version, os-release, libnccl names, ofed_info, meminfo."""

from __future__ import annotations

import re
from dataclasses import dataclass

from preflight.parse.common import Unparseable


def parse_driver_version_file(text: str) -> str | Unparseable:
    """`/proc/driver/nvidia/version`: `NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  ...`
    (or `... Open Kernel Module for x86_64  590.44.01 ...`)."""
    m = re.search(r"NVRM version:.*?Kernel Module(?: for \S+)?\s+(\d+\.\d+(?:\.\d+)?)", text)
    if not m:
        return Unparseable.of("no 'NVRM version: ... Kernel Module <version>' line", text)
    return m.group(1)


def parse_os_release(text: str) -> dict[str, str]:
    """`/etc/os-release` as a dict (quotes removed)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Z_][A-Z0-9_]*)=(.*)$", line.strip())
        if m:
            out[m.group(1)] = m.group(2).strip().strip('"').strip("'")
    return out


def parse_nccl_version_from_libs(text: str) -> str | Unparseable:
    """NCCL version from `ldconfig -p` lines or library paths: `libnccl.so.2.21.5` -> `2.21.5`.

    Only `libnccl.so.2` (no full version in the name) gives the major version alone.
    """
    full = sorted(set(re.findall(r"libnccl\.so\.(\d+\.\d+\.\d+)", text)))
    if full:
        return full[-1] if len(full) == 1 else " + ".join(full)
    major = sorted(set(re.findall(r"libnccl\.so\.(\d+)\b", text)))
    if major:
        return major[-1]
    return Unparseable.of("no libnccl.so.* found", text)


def parse_ofed_info(text: str) -> str | Unparseable:
    """`ofed_info -s`: `MLNX_OFED_LINUX-5.8-1.0.1.1:` / `OFED-internal-23.10-0.5.5:`."""
    m = re.search(r"((?:MLNX_OFED_LINUX|OFED-internal|OFED|DOCA)[-\w.]*?)(?::|\s|$)", text)
    if not m:
        return Unparseable.of("no OFED version string", text)
    return m.group(1)


@dataclass(frozen=True)
class MemInfo:
    values_kib: dict[str, int]

    @property
    def mem_total_kib(self) -> int | None:
        return self.values_kib.get("MemTotal")

    @property
    def hugepages_total(self) -> int | None:
        return self.values_kib.get("HugePages_Total")


def parse_meminfo(text: str) -> MemInfo | Unparseable:
    """`/proc/meminfo` (values in kB; HugePages_* are counts)."""
    vals: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+(?:\(\w+\))?):\s+(\d+)", line)
        if m:
            vals[m.group(1)] = int(m.group(2))
    if "MemTotal" not in vals:
        return Unparseable.of("no MemTotal line", text)
    return MemInfo(vals)


def parse_nvcc_version(text: str) -> str | Unparseable:
    """`nvcc --version`: `Cuda compilation tools, release 12.6, V12.6.20`."""
    m = re.search(r"release\s+(\d+\.\d+),\s*V([\d.]+)", text)
    if not m:
        return Unparseable.of("no 'release X.Y, VX.Y.Z' line", text)
    return m.group(2)


def parse_modinfo(text: str) -> dict[str, str] | Unparseable:
    """`modinfo nvidia`: key: value lines (first value of a repeated key kept)."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        m = re.match(r"^(\w+):\s+(.*)$", line)
        if m and m.group(1) not in out:
            out[m.group(1)] = m.group(2).strip()
    if "version" not in out and "filename" not in out:
        return Unparseable.of("no 'version:' or 'filename:' line", text)
    return out
