"""Shared parser conventions: Unparseable as a value, corpus headers, number helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Unparseable:
    """A parser's answer when the text is not what it expected: why, and where."""

    reason: str
    excerpt: str = ""

    @classmethod
    def of(cls, reason: str, text: str) -> Unparseable:
        return cls(reason=reason, excerpt=text.strip()[:200])


def strip_corpus_header(text: str) -> tuple[dict[str, str], str]:
    """Split a recorded output into its `# key: value` header and the verbatim body.

    The header is every line before the first empty line (recordings' bodies may start with '#').
    """
    lines = text.split("\n")
    headers: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line.strip() == "":
            return headers, "\n".join(lines[i + 1:])
        m = re.match(r"#\s*([A-Za-z_-]+)\s*:\s*(.*)", line)
        if m:
            key = m.group(1).lower()
            headers[key] = (headers[key] + "\n" + m.group(2)) if key in headers else m.group(2)
    return headers, text


NA_VALUES = {
    "[n/a]": "na",
    "n/a": "na",
    "[not supported]": "not_supported",
    "not supported": "not_supported",
    "[unknown error]": "unknown_error",
    "[insufficient permissions]": "no_permission",
    "[requested functionality has been deprecated]": "deprecated",
    "": "empty",
}


def na_reason(value: str) -> str | None:
    """The `missing` reason for nvidia-smi's placeholders, or None for a real value."""
    return NA_VALUES.get(value.strip().lower())


_LEADING_INT = re.compile(r"\s*(-?\d+)")
_LEADING_UINT = re.compile(r"\s*(\d+)")


def to_int(value: Any, *, signed: bool = True, whole: bool = False) -> int | None:
    """The integer a tool printed: the leading number of `value` (`"80 C"` -> 80), None when there is none.

    The one integer helper of the parsers. `signed=False` reads a leading '-' as no number; `whole=True`
    accepts only a string of digits (`"8"`, not `"8 GPUs"`). None stays None.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    if whole:
        return int(text) if text.isdigit() else None
    m = (_LEADING_INT if signed else _LEADING_UINT).match(text)
    return int(m.group(1)) if m else None


def to_float(value: str) -> float | None:
    m = re.match(r"\s*(-?\d+(?:\.\d+)?)", value)
    return float(m.group(1)) if m else None


# Raw control characters, or the visible escapes preflight.textsafe.inert() turned them into (node text reaches the
# parsers inert: binary output still reads as binary).
_CONTROL = re.compile("[\x00-\x08\x0e-\x1f\ufffd]|\\\\x(?:0[0-8]|0[ef]|1[0-9a-f])")


def is_probably_text(text: str) -> bool:
    """Few control characters (NUL, escapes; raw or made visible) or replacement characters in the first 4 KiB."""
    if not text:
        return False
    head = text[:4096]
    return len(_CONTROL.findall(head)) < max(4, len(head) // 50)


# nvidia-smi helpers shared by its parsers

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


_SMI_ERROR = re.compile("|".join(re.escape(e) for e in SMI_ERRORS), re.I)


_SMI_ERRORS_LOWER = tuple(e.lower() for e in SMI_ERRORS)


def smi_error(text: str) -> str | None:
    """nvidia-smi's own error line when it printed one (driver not loaded, bad field...)."""
    # ASCII text lower-cased keeps every offset and matches re.I exactly: plain substring tests rule out the usual
    # output ~50x faster than the case-insensitive alternation; anything else goes through the regex.
    if text.isascii():
        low = text.lower()
        if not any(e in low for e in _SMI_ERRORS_LOWER):
            return None
    m = _SMI_ERROR.search(text)
    if m is None:
        return None
    start = text.rfind("\n", 0, m.start()) + 1
    end = text.find("\n", m.end())
    return text[start:end if end >= 0 else len(text)].strip()


def smi_guard(text: Any) -> Unparseable | None:
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
