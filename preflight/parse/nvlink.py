"""Parser for `nvidia-smi nvlink -s` (`--status`): per GPU, each link's speed or <inactive>."""

from __future__ import annotations

import re
from dataclasses import dataclass

from preflight.parse.common import Unparseable, is_probably_text

_GPU = re.compile(r"^\s*GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$")
_LINK = re.compile(r"^\s*Link\s+(\d+)\s*:\s*(.*?)\s*$")


@dataclass(frozen=True)
class NvLink:
    link: int
    speed_gbps: float | None  # GB/s as printed; None when inactive
    active: bool
    raw_line: str


@dataclass(frozen=True)
class GpuNvLinks:
    index: int
    name: str
    uuid: str | None
    links: tuple[NvLink, ...]
    note: str = ""  # e.g. NVML's "all links are inActive" message
    raw_lines: tuple[str, ...] = ()

    @property
    def active(self) -> int:
        return sum(1 for l in self.links if l.active)


def parse_nvlink_status(text: str) -> list[GpuNvLinks] | Unparseable:
    """`nvidia-smi nvlink -s`."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    gpus: list[GpuNvLinks] = []
    cur: dict | None = None

    def close() -> None:
        if cur is not None:
            gpus.append(GpuNvLinks(index=cur["index"], name=cur["name"], uuid=cur["uuid"], links=tuple(cur["links"]),
                                   note=cur["note"], raw_lines=tuple(cur["raw"])))

    for line in text.splitlines():
        g = _GPU.match(line)
        if g:
            close()
            cur = {"index": int(g.group(1)), "name": g.group(2), "uuid": g.group(3), "links": [], "note": "", "raw": [line]}
            continue
        if cur is None:
            continue
        m = _LINK.match(line)
        if m:
            value = m.group(2)
            speed = re.match(r"([\d.]+)\s*GB/s", value)
            inactive = "inactive" in value.lower() or speed is None
            cur["links"].append(NvLink(int(m.group(1)), None if inactive else float(speed.group(1)), not inactive, line))
            cur["raw"].append(line)
        elif "NVML" in line or "inActive" in line or "inactive" in line.lower():
            cur["note"] = line.strip()
            cur["raw"].append(line)
    close()
    if not gpus:
        return Unparseable.of("no 'GPU n:' blocks", text)
    return gpus
