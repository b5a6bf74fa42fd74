"""Parsers for `nvidia-smi nvlink -s` (status), `--capabilities`, `-R` (remote mapping) and `-info`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from preflight.facts import NvLinkFacts
from preflight.parse.common import Unparseable, is_probably_text

_GPU = re.compile(r"^\s*GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)]+)\))?\s*$")
_LINK = re.compile(r"^\s*Link\s+(\d+)\s*:\s*(.*?)\s*$")
_SPEED = re.compile(r"^([\d.]+)\s*GB/s$")
_NO_NVLINK = re.compile(r"NVML:.*(?:inActive|inactive|not supported)|Unable to retrieve NVLink", re.I)


def _guard(text: Any) -> Unparseable | None:
    if not isinstance(text, str) or not is_probably_text(text):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    return None


@dataclass(frozen=True)
class NvLink:
    """One `Link N: 26.562 GB/s` (active) or `Link N: <inactive>` line."""

    link: int
    speed_gbps: float | None  # GB/s as printed; None when inactive
    active: bool
    raw_line: str


@dataclass(frozen=True)
class GpuNvLinks:
    """A GPU's block of `nvlink -s`; no links plus a `note` when NVML says every link is inactive."""

    index: int
    name: str
    uuid: str | None
    links: tuple[NvLink, ...]
    note: str = ""  # e.g. NVML's "all links are inActive" message
    raw_lines: tuple[str, ...] = ()
    info: dict[str, str] = field(default_factory=dict)  # `nvlink -info` fields when the same text carries them
    elided: bool = False  # a '...' line cut the link list: counts are a lower bound

    @property
    def active(self) -> int:
        return sum(1 for link in self.links if link.active)


def _blocks(text: str) -> list[tuple[re.Match[str], list[str]]]:
    """`GPU n: name (UUID: ...)` headers with the lines under each."""
    out: list[tuple[re.Match[str], list[str]]] = []
    for line in text.replace("\r", "").splitlines():
        g = _GPU.match(line)
        if g:
            out.append((g, [line]))
        elif out:
            out[-1][1].append(line)
    return out


def parse_nvlink_status(text: str) -> list[GpuNvLinks] | Unparseable:
    """`nvidia-smi nvlink -s`: per GPU each link's speed or `<inactive>`.

    A repeated GPU block without status lines (e.g. `nvlink -info` appended) adds its fields to `info`.
    Output of another nvlink sub-command (`-R`, `--capabilities`) is refused, not read as all-inactive.
    """
    refused = _guard(text)
    if refused:
        return refused
    gpus: dict[int, GpuNvLinks] = {}
    other_forms = 0
    for g, lines in _blocks(text):
        links: list[NvLink] = []
        note = ""
        info: dict[str, str] = {}
        elided = False
        for line in lines[1:]:
            if line.strip() in ("...", "…"):
                elided = True
                continue
            m = _LINK.match(line)
            if m:
                value = m.group(2)
                speed = _SPEED.match(value)
                if speed:
                    links.append(NvLink(int(m.group(1)), float(speed.group(1)), True, line))
                elif "inactive" in value.lower():
                    links.append(NvLink(int(m.group(1)), None, False, line))
                else:
                    other_forms += 1
                continue
            if re.match(r"^\s*Link\s+\d+\s*,", line):
                other_forms += 1
            elif _NO_NVLINK.search(line):
                note = line.strip()
            else:
                kv = re.match(r"^\s+([A-Za-z][\w /]*?)\s*:\s*(\S.*?)\s*$", line)
                if kv:
                    info[kv.group(1)] = kv.group(2)
        index = int(g.group(1))
        if index in gpus:
            prev = gpus[index]
            if not links and not note:
                gpus[index] = GpuNvLinks(prev.index, prev.name, prev.uuid, prev.links, prev.note, prev.raw_lines,
                                         {**prev.info, **info}, prev.elided)
                continue
        raw = tuple(ln for ln in lines if ln.strip())
        if links or note or index not in gpus:
            gpus[index] = GpuNvLinks(index, g.group(2), g.group(3), tuple(links), note, raw, info, elided)
    if not gpus:
        return Unparseable.of("no 'GPU n: <name> (UUID: ...)' blocks", text)
    if other_forms and not any(g.links or g.note for g in gpus.values()):
        return Unparseable.of("link lines are not status lines (this looks like `nvlink -R` or `--capabilities`)", text)
    return [gpus[i] for i in sorted(gpus)]


def nvlink_facts(parsed: list[GpuNvLinks]) -> tuple[NvLinkFacts, ...]:
    """What the checks judge of each GPU's `nvlink -s` block: active/total links, the down ones, their evidence."""
    out = []
    for g in parsed:
        inactive = tuple(l.link for l in g.links if not l.active)
        speeds = {l.speed_gbps for l in g.links if l.speed_gbps}
        evidence = tuple(l.raw_line for l in g.links if not l.active) or g.raw_lines[:1]
        if g.note:
            evidence = (g.raw_lines[0], g.note) if g.raw_lines else (g.note,)
        out.append(NvLinkFacts(gpu_index=g.index, active=g.active, total=len(g.links), inactive_links=inactive,
                               speed_gbps=min(speeds) if speeds else None,
                               evidence=((g.raw_lines[0],) if g.raw_lines and inactive else ()) + evidence))
    return tuple(out)


@dataclass(frozen=True)
class NvLinkCapabilities:
    """`nvidia-smi nvlink --capabilities`: per GPU, link -> capability -> supported."""

    index: int
    name: str
    uuid: str | None
    links: dict[int, dict[str, bool]]
    raw_lines: tuple[str, ...] = ()


def parse_nvlink_capabilities(text: str) -> list[NvLinkCapabilities] | Unparseable:
    """`nvidia-smi nvlink --capabilities`: `Link N, P2P is supported: true` lines."""
    refused = _guard(text)
    if refused:
        return refused
    out = []
    for g, lines in _blocks(text):
        links: dict[int, dict[str, bool]] = {}
        for line in lines[1:]:
            m = re.match(r"^\s*Link\s+(\d+),\s*(.+?)\s*:\s*(true|false)\s*$", line, re.I)
            if m:
                links.setdefault(int(m.group(1)), {})[m.group(2)] = m.group(3).lower() == "true"
        out.append(NvLinkCapabilities(int(g.group(1)), g.group(2), g.group(3), links, tuple(lines)))
    if not any(c.links for c in out):
        return Unparseable.of("no 'Link N, <capability>: true|false' lines", text)
    return out


@dataclass(frozen=True)
class RemoteLink:
    """`Link N: Remote Device <bdf>: Link M` from `nvidia-smi nvlink -R`: where each link lands (an NVSwitch port)."""

    gpu: int
    link: int
    remote_bus_id: str
    remote_link: int | None
    raw_line: str


def parse_nvlink_remote(text: str) -> list[RemoteLink] | Unparseable:
    """`nvidia-smi nvlink -R`: remote endpoint (PCI bus id, link) of every GPU link."""
    refused = _guard(text)
    if refused:
        return refused
    out = []
    for g, lines in _blocks(text):
        for line in lines[1:]:
            m = re.match(r"^\s*Link\s+(\d+)\s*:\s*Remote Device\s+([0-9A-Fa-f:.]+?)\s*(?::\s*Link\s+(\d+))?\s*$", line)
            if m:
                out.append(RemoteLink(int(g.group(1)), int(m.group(1)), m.group(2),
                                      int(m.group(3)) if m.group(3) else None, line))
    return out or Unparseable.of("no 'Link N: Remote Device <bus id>: Link M' lines", text)


_ERR = re.compile(r"^\s*Link\s+(\d+)\s*:\s*([A-Za-z ]+?)\s*:\s*(\d+|N/A)\s*$")


def parse_nvlink_errors(text: str) -> dict[int, dict[int, dict[str, int]]] | Unparseable:
    """`nvidia-smi nvlink -e`: per GPU index, per link, counters (Replay/Recovery/CRC Errors...)."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    out: dict[int, dict[int, dict[str, int]]] = {}
    gpu: int | None = None
    for line in text.splitlines():
        g = _GPU.match(line)
        if g:
            gpu = int(g.group(1))
            out[gpu] = {}
            continue
        m = _ERR.match(line)
        if m and gpu is not None and m.group(3).isdigit():
            out[gpu].setdefault(int(m.group(1)), {})[m.group(2).strip()] = int(m.group(3))
    if not any(out.values()):
        return Unparseable.of("no 'Link N: <counter>: <value>' lines under 'GPU n:' headers", text)
    return out
