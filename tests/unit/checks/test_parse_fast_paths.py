"""The parsers' fast paths read exactly what the regexes they stand in for read (and the line cache of
`parse_query_sections` changes nothing).

`smi_query._key_value` (the `Key : value` split of `nvidia-smi -q`) and `common.smi_error` (nvidia-smi's error
lines, case-insensitive) skip their regex for the usual text; here they are compared with the regex over every
line of the demo recording and the parser corpus, and over generated lines with colons, blanks, tabs, Unicode
spaces and odd cases where the regex's backtracking decides.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from preflight.parse import common, smi_query
from preflight.parse.common import Unparseable
from preflight.parse.smi_query import _GPU_HEADER, _KEY_VALUE, QuerySections, _key_value, parse_query_sections

ROOT = Path(__file__).resolve().parents[3]
DEMO = ROOT / "preflight" / "data" / "demo" / "bundle.json"


def _texts() -> list[str]:
    out: list[str] = []
    for node in json.loads(DEMO.read_text())["nodes"]:
        for probe in ((node.get("collector") or {}).get("probes") or {}).values():
            if isinstance(probe.get("stdout"), str):
                out.append(probe["stdout"])
    for path in sorted((ROOT / "tests").rglob("*.txt"))[:400]:
        try:
            out.append(path.read_text(errors="replace"))
        except OSError:
            pass
    return out


def _generated(n: int = 4000) -> list[str]:
    rng = random.Random(18)
    pieces = [" ", "  ", "\t", ":", " : ", "::", "a", "Key", "Value", "x y", "\u00a0", "\u2003", "=", "GPU", "é", "İ",
              "0x1", "N/A", "NVIDIA-SMI has failed", "no devices were FOUND", "İnsufficient Permissions"]
    return ["".join(rng.choice(pieces) for _ in range(rng.randint(0, 7))) for _ in range(n)]


def _by_regex(line: str) -> tuple[str, str, bool]:
    kv = _KEY_VALUE.match(line)
    return (kv.group(1), kv.group(2), True) if kv else (line.strip(), "", False)


def test_key_value_split_is_the_regex() -> None:
    lines = [ln.expandtabs(8) for t in _texts() for ln in t.replace("\r", "").splitlines()] + \
            [g.expandtabs(8) for g in _generated()]
    for line in lines:
        body = line.lstrip()
        if not body:
            continue  # parse_query_sections skips blank lines before splitting
        assert _key_value(line, body) == _by_regex(line), repr(line)


def test_smi_error_is_the_regex() -> None:
    def by_regex(text: str) -> str | None:
        m = common._SMI_ERROR.search(text)
        if m is None:
            return None
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        return text[start:end if end >= 0 else len(text)].strip()

    samples = _texts() + _generated() + ["\n".join(_generated(30)) for _ in range(50)]
    for text in samples:
        assert common.smi_error(text) == by_regex(text), repr(text[:200])


def _reference_query_sections(text: str) -> object:
    """`parse_query_sections` as it was before its line cache and fast split (the regex on every line)."""
    refused = common.smi_guard(text)
    if refused:
        return refused
    header: dict[str, str] = {}
    gpus: dict[str, dict] = {}
    stack: list[tuple[int, dict]] = []
    for line in text.replace("\r", "").expandtabs(8).splitlines():
        if not line.strip() or line.lstrip().startswith("="):
            continue
        m = _GPU_HEADER.match(line)
        if m:
            root: dict = {}
            gpus[m.group(1)] = root
            stack = [(0, root)]
            continue
        indent = len(line) - len(line.lstrip())
        kv = _KEY_VALUE.match(line)
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
            child: dict = {}
            parent[key] = child
            stack.append((indent, child))
        else:
            parent[key] = value
    if not gpus and not header:
        return Unparseable.of("no 'Key : value' lines and no 'GPU <bus id>' sections", text)
    return QuerySections(header=header, gpus=gpus)


def _ordered(value: object) -> object:
    """A tree with its keys' order made part of what is compared (dict == ignores order; readers iterate)."""
    if isinstance(value, QuerySections):
        return ("q", _ordered(value.header), _ordered(value.gpus))
    if isinstance(value, dict):
        return [(k, _ordered(v)) for k, v in value.items()]
    return value


def _blocky(rng: random.Random, gpus: int) -> str:
    """Generated `-q`-shaped text: GPU headers, then keys at indents 4/8/12, now and then a shallower line, a `=` line, a repeated key, a blank line or a bus id spelled twice."""
    keys = ["ECC Errors", "Volatile", "SRAM Uncorrectable", "Temperature", "GPU Current Temp", "Pending", "Current",
            "Clocks Event Reasons", "Idle", "HW Slowdown", "Serial Number", "Bus Id", "x", "GPU 0000:18:00.0"]
    values = ["", "", "Active", "Not Active", "0", "30 C", "N/A", "Enabled", ": odd", "1654423001593"]
    lines = ["==============NVSMI LOG==============", "", "Driver Version : 565.57.01", "Attached GPUs : 8"]
    for g in range(gpus):
        lines.append(f"GPU 00000000:{rng.choice(['18', '2A', '3A', '18'])}:00.{g % 2}" + rng.choice(["", " "]))
        for _ in range(rng.randint(0, 40)):
            indent = rng.choice([4, 4, 8, 8, 12, 16] + ([0, 2, 3, 5] if rng.random() < 0.05 else []))
            key = rng.choice(keys)
            value = rng.choice(values)
            lines.append(" " * indent + (key if not value else f"{key:<30}: {value}") if rng.random() > 0.03
                         else rng.choice(["", "    ", "    ====", "  "]))
    return "\n".join(lines) + rng.choice(["", "\n", "\n\n"])


def test_query_sections_are_the_reference_parse_cold_and_warm() -> None:
    rng = random.Random(180)
    texts = _texts() + ["\n".join(_generated(60)) for _ in range(40)]
    texts += ["GPU 00000000:18:00.0\n" + "\n".join("  " * (i % 4) + g for i, g in enumerate(_generated(80)))
              for _ in range(40)]
    texts += [_blocky(rng, rng.randint(0, 4)) for _ in range(300)]
    texts += [t.replace("    ", "\t", 3) for t in texts[-20:]] + [t + "\u00a0" for t in texts[-10:]]
    for _round in range(2):  # the first round fills the line cache, the second reads from them
        for text in texts:
            got, want = parse_query_sections(text), _reference_query_sections(text)
            assert got == want and _ordered(got) == _ordered(want), repr(text[:200])
    smi_query._LINES.clear()
