"""`mlxlink -d <dev> -p <port> [-m] [-c] [--json]` (NVIDIA MFT / mstflint): one port's link, module and BER.

Two layouts, both read here:

- text: sections titled by a line underlined with dashes, then `Key   : Value` lines (some renderings put a
  blank line between every line; values may carry ANSI colour codes, raw or made visible by textsafe);
- `--json`: `{"result": {"output": {"<Section>": {"<Key>": "value" | {"values": [...]}}}}, "status": {...}}`.

The sections read: "Operational Info" (state, physical state, speed, width, FEC), "Troubleshooting Info"
(Recommendation), "Module Info" (-m: Temperature [C] with the module's own `[low..high]` range, Identifier,
Vendor, Part Number, Cable Type) and "Physical Counters and BER Info" (-c: Time Since Last Clear, Effective /
Raw Physical Errors and BER, Link Down Counter, Link Error Recovery Counter).

A field that is absent stays None and the section it belongs to is named in `missing`: a fragment is partial
and says so, never healthy. `15E-255` is how mlxlink prints a BER with no error counted (its smallest value);
it reads as 0.0 here. A document whose status code is not 0, or that is not an mlxlink output at all, is
Unparseable with mlxlink's own message where it gave one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from typing import Any, Protocol

from preflight.parse.common import Unparseable, is_probably_text

OPERATIONAL = "Operational Info"
TROUBLESHOOTING = "Troubleshooting Info"
MODULE = "Module Info"
COUNTERS = "Physical Counters and BER Info"
SECTIONS = (OPERATIONAL, TROUBLESHOOTING, MODULE, COUNTERS)

# mlxlink prints 15E-255 for a BER with zero errors counted (the smallest value its format has)
NO_ERROR_BER = 1e-250

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]|\\x1b\[[0-9;]*[A-Za-z]")
_KEY_VALUE = re.compile(r"^\s*([A-Za-z][^:]*?)\s+:\s?(.*)$")
_DASHES = re.compile(r"^\s*-{4,}\s*$")
_RANGE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(?:C\b)?\s*(?:\[\s*(-?\d+(?:\.\d+)?)\s*\.\.\s*(-?\d+(?:\.\d+)?)\s*\])?")
_BER = re.compile(r"^\s*(\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class MlxlinkPort:
    """One port as mlxlink reported it; None = not in the output (see `missing`), never 'fine'."""

    layout: str  # "text" | "json"
    sections: tuple[str, ...]  # the sections of SECTIONS that were present
    missing: tuple[str, ...]  # what is not known and why ("no 'Module Info' section (not asked with -m?)")
    state: str | None = None
    physical_state: str | None = None
    speed: str | None = None
    width: str | None = None
    fec: str | None = None
    recommendation: str | None = None
    module_temp_c: float | None = None
    module_temp_low_c: float | None = None  # the [low..high] range mlxlink prints beside the temperature
    module_temp_high_c: float | None = None
    identifier: str | None = None
    vendor: str | None = None
    part_number: str | None = None
    cable_type: str | None = None
    time_since_clear_min: float | None = None
    effective_errors: int | None = None
    effective_ber: float | None = None
    raw_ber: float | None = None
    raw_errors_per_lane: tuple[int, ...] = ()
    link_down: int | None = None
    link_error_recovery: int | None = None

    @property
    def partial(self) -> bool:
        return bool(self.missing)


def parse_mlxlink(text: Any) -> MlxlinkPort | Unparseable:
    """Text or --json mlxlink output of one port -> MlxlinkPort, or Unparseable (why)."""
    if not isinstance(text, str) or not is_probably_text(_ANSI.sub("", text)):
        return Unparseable.of("empty or binary output", text if isinstance(text, str) else "")
    clean = _ANSI.sub("", text)
    start = _json_start(clean)
    if start is not None:
        return _from_json(clean[start:])
    # a last line without its newline may be cut mid-value ("3E-1" of "3E-12"): it is not read
    cut = not clean.endswith("\n") and "\n" in clean
    sections = _text_sections(clean.rsplit("\n", 1)[0] if cut else clean)
    if not any(s in sections for s in SECTIONS):
        err = _error_line(clean)
        return Unparseable.of(f"mlxlink error: {err}" if err else "no mlxlink section (Operational Info, "
                              "Module Info, Physical Counters and BER Info) in the output", text)
    port = _build("text", sections)
    if cut:
        port = replace(port, missing=(*port.missing, "output cut short: its last line was not read"))
    return port


def _json_start(text: str) -> int | None:
    """Where a --json document starts: the first line opening with '{' (a prompt line may come before it)."""
    if '"result"' not in text and '"status"' not in text:
        return None
    m = re.search(r"^[ \t]*\{", text, re.M)
    return m.start() if m and text[m.start():].lstrip().startswith("{") else None


def _error_line(text: str) -> str | None:
    """mlxlink's own error line (`-E- ...`), when it printed one instead of its tables."""
    for line in text.splitlines():
        if line.strip().startswith("-E-"):
            return line.strip()[3:].strip()[:160] or line.strip()
    return None


def _text_sections(text: str) -> dict[str, dict[str, str]]:
    """Title lines followed (across blank lines) by a dashed line open a section; `Key : Value` lines fill it."""
    lines = [ln.rstrip() for ln in text.replace("\r\n", "\n").split("\n")]
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for i, line in enumerate(lines[:20000]):
        if not line.strip() or _DASHES.match(line):
            continue
        nxt = next((ln for ln in lines[i + 1:i + 4] if ln.strip()), "")
        if _DASHES.match(nxt) and ":" not in line:
            current = out.setdefault(line.strip().rstrip(":").strip(), {})
            continue
        m = _KEY_VALUE.match(line)
        if m and current is not None:
            current.setdefault(m.group(1).strip(), m.group(2).strip())
    return out


def _from_json(text: str) -> MlxlinkPort | Unparseable:
    try:
        doc = json.loads(text)
    except ValueError:
        return Unparseable.of("mlxlink --json output is not a whole JSON document (cut short?)", text)
    if not isinstance(doc, dict):
        return Unparseable.of("mlxlink --json output is not an object", text)
    status = doc.get("status")
    if isinstance(status, dict) and status.get("code") not in (0, "0", None):
        return Unparseable.of(f"mlxlink status {status.get('code')}: {status.get('message') or 'no message'}", text)
    result = doc.get("result")
    output = result.get("output") if isinstance(result, dict) else None
    if not isinstance(output, dict):
        return Unparseable.of("mlxlink --json output has no result.output", text)
    sections: dict[str, dict[str, str]] = {}
    for name, body in output.items():
        if isinstance(body, dict):
            sections[str(name)] = {str(k): _json_value(v) for k, v in body.items()}
    if not any(s in sections for s in SECTIONS):
        return Unparseable.of("mlxlink --json output has none of its known sections", text)
    return _build("json", sections)


def _json_value(value: Any) -> str:
    """A scalar as text; the per-lane form {"values": [...]} as the comma list the text layout prints."""
    if isinstance(value, dict) and isinstance(value.get("values"), list):
        return ",".join(str(v) for v in value["values"])
    return value if isinstance(value, str) else ("" if isinstance(value, (dict, list)) else str(value))


def _build(layout: str, sections: dict[str, dict[str, str]]) -> MlxlinkPort:
    op, ts, mod, ctr = (sections.get(s) for s in SECTIONS)
    missing = [f"no '{s}' section{hint}" for s, hint in
               ((OPERATIONAL, ""), (MODULE, " (not asked with -m, or no module)"), (COUNTERS, " (not asked with -c)"))
               if s not in sections]
    temp, low, high = _temperature((mod or {}).get("Temperature [C]"))
    counters = ctr or {}
    fields: dict[str, Any] = {
        "time_since_clear_min": _float(counters.get("Time Since Last Clear [Min]")),
        "effective_errors": _uint(counters.get("Effective Physical Errors")),
        "effective_ber": _ber(counters.get("Effective Physical BER")),
        "raw_ber": _ber(counters.get("Raw Physical BER")),
        "link_down": _uint(counters.get("Link Down Counter")),
        "link_error_recovery": _uint(counters.get("Link Error Recovery Counter")),
    }
    if ctr is not None:
        missing += [f"no '{label}' in '{COUNTERS}'" for key, label in (
            ("effective_ber", "Effective Physical BER"), ("raw_ber", "Raw Physical BER"),
            ("link_down", "Link Down Counter"), ("link_error_recovery", "Link Error Recovery Counter"),
            ("time_since_clear_min", "Time Since Last Clear [Min]")) if fields[key] is None]
    if mod is not None and temp is None:
        missing.append(f"no readable 'Temperature [C]' in '{MODULE}'")
    lanes = [_uint(v) for v in (counters.get("Raw Physical Errors Per Lane") or "").split(",") if v.strip()]
    return MlxlinkPort(
        layout=layout, sections=tuple(s for s in SECTIONS if s in sections), missing=tuple(missing),
        state=_text((op or {}).get("State")), physical_state=_text((op or {}).get("Physical state")),
        speed=_text((op or {}).get("Speed")), width=_text((op or {}).get("Width")), fec=_text((op or {}).get("FEC")),
        recommendation=_text((ts or {}).get("Recommendation")),
        module_temp_c=temp, module_temp_low_c=low, module_temp_high_c=high,
        identifier=_text((mod or {}).get("Identifier")), vendor=_text((mod or {}).get("Vendor Name")),
        part_number=_text((mod or {}).get("Vendor Part Number")), cable_type=_text((mod or {}).get("Cable Type")),
        raw_errors_per_lane=tuple(v for v in lanes if v is not None) if None not in lanes else (),
        **fields,
    )


def _text(value: str | None) -> str | None:
    v = (value or "").strip()
    return None if not v or v.upper() == "N/A" else v


def _temperature(value: str | None) -> tuple[float | None, float | None, float | None]:
    """`61 [-10..80]` -> (61, -10, 80); `54` -> (54, None, None); N/A or other text -> all None."""
    m = _RANGE.match(value or "")
    if not m:
        return None, None, None
    low, high = (float(m.group(2)), float(m.group(3))) if m.group(2) is not None else (None, None)
    return float(m.group(1)), low, high


def _float(value: str | None) -> float | None:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*", value or "")
    return float(m.group(1)) if m else None


def _uint(value: str | None) -> int | None:
    v = (value or "").strip()
    return int(v) if v.isdigit() else None


def _ber(value: str | None) -> float | None:
    """`3E-12` -> 3e-12; `15E-255` (no error counted) -> 0.0; anything else (N/A, cut short) -> None."""
    m = _BER.match(value or "")
    if not m:
        return None
    try:
        ber = float(m.group(1))
    except ValueError:
        return None
    return 0.0 if ber < NO_ERROR_BER else ber


def ports_from_probe(probe: dict[str, Any] | None, *, shell: bool = False
                     ) -> tuple[dict[str, MlxlinkPort | Unparseable], str | None]:
    """The collector's `mlxlink` probe -> per port ('mlx5_0/1') the parsed output or why not, and why there is
    nothing at all ("mlxlink not asked", "no /sys/class/infiniband", "mlxlink not installed", ...), if so.
    `shell`: the node ran the plain-shell collector (no python3), which runs no builtin probe."""
    if probe is None:
        return {}, "mlxlink not asked"
    if probe.get("error") == "absent":
        return {}, ("mlxlink not read: no python3 on the node (the plain-shell collector runs no builtin probe)"
                    if shell else "mlxlink not installed")
    if probe.get("error"):
        return {}, f"mlxlink probe: {probe.get('error')}"
    try:
        doc: Any = json.loads(probe.get("stdout") or "")
    except ValueError:
        return {}, "mlxlink probe output unreadable"
    if not isinstance(doc, dict) or not isinstance(doc.get("ports"), dict):
        return {}, "mlxlink probe output unreadable"
    if doc.get("no_ib"):
        return {}, "no /sys/class/infiniband"
    out: dict[str, MlxlinkPort | Unparseable] = {}
    for key, res in sorted(doc["ports"].items()):
        res = res if isinstance(res, dict) else {}
        if res.get("error"):
            out[str(key)] = Unparseable(f"mlxlink {res.get('error')}" + (f" ({res['note']})" if res.get("note") else ""))
            continue
        got = parse_mlxlink(res.get("stdout") or "")
        if isinstance(got, Unparseable) and res.get("rc") not in (0, None):
            got = Unparseable(f"mlxlink exit {res.get('rc')}: {got.reason}", got.excerpt)
        out[str(key)] = got
    return out, None


class _Facts(Protocol):  # parse.node._Ctx, without importing it (node imports this module)
    raw: Any
    missing: dict[str, str]

    def na(self, key: str, why: str) -> None: ...


def link_quality_facts(c: _Facts) -> dict[str, MlxlinkPort | str] | None:
    """The `link_quality` fact (check ib.link_quality): per port, or None with why (does not apply only when
    mlxlink was not asked or the node has no /sys/class/infiniband; no mlxlink installed is a gap)."""
    ports, why = ports_from_probe(c.raw.probe("mlxlink"), shell=(c.raw.collector or {}).get("mode") == "shell")
    if why == "mlxlink not asked":
        c.na("link_quality", "mlxlink was not asked (preflight run --mlxlink)")
        return None
    if why == "no /sys/class/infiniband":
        c.na("link_quality", "no IB/RoCE HCA on the node (/sys/class/infiniband is absent)")
        return None
    if why:
        c.missing["link_quality"] = why
        return None
    if not ports:
        c.missing["link_quality"] = "mlxlink: no port under /sys/class/infiniband"
        return None
    return {k: (v.reason if isinstance(v, Unparseable) else v) for k, v in ports.items()}
