"""The parsers' fast paths read exactly what the regexes they stand in for read.

`smi_query._key_value` (the `Key : value` split of `nvidia-smi -q`) and `common.smi_error` (nvidia-smi's error
lines, case-insensitive) skip their regex for the usual text; here they are compared with the regex over every
line of the demo recording and the parser corpus, and over generated lines with colons, blanks, tabs, Unicode
spaces and odd cases where the regex's backtracking decides.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from preflight.parse import common
from preflight.parse.smi_query import _KEY_VALUE, _key_value

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
