"""Host patterns: expand ``gpu-[00-63]`` into names and compress names back for display.

Two bracket syntaxes are understood, and a pattern may hold several brackets (expanded as
a cartesian product, the leftmost bracket varying slowest)::

    gpu-[00-63]        pdsh/Slurm hostlist: comma list of numbers and lo-hi ranges,
    gpu-[1-3,7]        zero padding follows the width of each range's lower bound
    n[01-02]-ib[0-1]
    gpu[01:04]         Ansible: lo:hi with an optional :step, numeric or single letters
    rack[a:c]-[1:9:2]

A comma outside brackets separates patterns: ``gpu-[01-02],login`` is three names.
Expansion is bounded (``MAX_NAMES``): a pattern that would produce more names is refused
before anything is generated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["MAX_NAMES", "HostPatternError", "compress", "expand", "has_range", "split_list"]

MAX_NAMES = 100_000

_NUM = re.compile(r"^\d+$")


class HostPatternError(ValueError):
    """A host pattern that does not parse, or expands to too many names."""


def split_list(text: str) -> list[str]:
    """Split on commas that are not inside brackets; strips blanks, drops empty items."""
    items: list[str] = []
    depth = 0
    cur: list[str] = []
    for ch in text:
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur).strip())
    return [i for i in items if i]


def has_range(pattern: str) -> bool:
    """True if the pattern holds a bracket (so expands to something else than itself)."""
    return "[" in pattern or "]" in pattern


def _parse_ansible(body: str, pattern: str) -> list[str]:
    parts = body.split(":")
    if len(parts) not in (2, 3):
        raise HostPatternError(f"bad range [{body}] in {pattern!r}: expected [lo:hi] or [lo:hi:step]")
    lo, hi = parts[0].strip() or "0", parts[1].strip()  # Ansible: an empty begin is 0 (mail[:5])
    step_s = parts[2].strip() if len(parts) == 3 else "1"
    if not _NUM.match(step_s) or int(step_s) < 1:
        raise HostPatternError(f"bad step {step_s!r} in [{body}] of {pattern!r}: must be a positive integer")
    step = int(step_s)
    if _NUM.match(lo) and _NUM.match(hi):
        a, b = int(lo), int(hi)
        if a > b:
            raise HostPatternError(f"range [{body}] in {pattern!r} goes backwards ({lo} > {hi})")
        width = len(lo)
        count = (b - a) // step + 1
        _check_size(count, pattern)
        return [str(v).zfill(width) for v in range(a, b + 1, step)]
    if len(lo) == 1 and len(hi) == 1 and lo.isalpha() and hi.isalpha() and lo.islower() == hi.islower():
        if lo > hi:
            raise HostPatternError(f"range [{body}] in {pattern!r} goes backwards ({lo} > {hi})")
        return [chr(c) for c in range(ord(lo), ord(hi) + 1, step)]
    raise HostPatternError(f"bad range [{body}] in {pattern!r}: bounds must be numbers or single letters")


def _parse_hostlist(body: str, pattern: str) -> list[str]:
    out: list[str] = []
    for item in body.split(","):
        item = item.strip()
        if not item:
            raise HostPatternError(f"empty item in [{body}] of {pattern!r}")
        if "-" in item:
            lo, _, hi = item.partition("-")
            lo, hi = lo.strip(), hi.strip()
            if not (_NUM.match(lo) and _NUM.match(hi)):
                raise HostPatternError(f"bad range {item!r} in [{body}] of {pattern!r}: expected numbers like 01-08")
            a, b = int(lo), int(hi)
            if a > b:
                raise HostPatternError(f"range {item!r} in {pattern!r} goes backwards ({lo} > {hi})")
            _check_size(len(out) + b - a + 1, pattern)
            out.extend(str(v).zfill(len(lo)) for v in range(a, b + 1))
        else:
            if not _NUM.match(item):
                raise HostPatternError(f"bad item {item!r} in [{body}] of {pattern!r}: expected a number or lo-hi")
            out.append(item)
    return out


def _check_size(count: int, pattern: str) -> None:
    if count > MAX_NAMES:
        raise HostPatternError(f"pattern {pattern!r} expands to more than {MAX_NAMES} names ({count})")


def _segments(pattern: str) -> list[list[str]]:
    """A single pattern (no top-level comma) as a list of alternatives per segment."""
    segs: list[list[str]] = []
    i = 0
    text: list[str] = []
    while i < len(pattern):
        ch = pattern[i]
        if ch == "]":
            raise HostPatternError(f"unbalanced ']' at position {i + 1} in {pattern!r}")
        if ch != "[":
            text.append(ch)
            i += 1
            continue
        end = pattern.find("]", i + 1)
        if end < 0:
            raise HostPatternError(f"unclosed '[' at position {i + 1} in {pattern!r}")
        body = pattern[i + 1:end]
        if "[" in body:
            raise HostPatternError(f"nested '[' at position {i + 1} in {pattern!r}")
        if not body.strip():
            raise HostPatternError(f"empty brackets at position {i + 1} in {pattern!r}")
        if text:
            segs.append(["".join(text)])
            text = []
        segs.append(_parse_ansible(body, pattern) if ":" in body else _parse_hostlist(body, pattern))
        i = end + 1
    if text:
        segs.append(["".join(text)])
    return segs


def _expand_one(pattern: str) -> list[str]:
    if not pattern:
        raise HostPatternError("empty host pattern")
    if any(c.isspace() for c in pattern):
        raise HostPatternError(f"whitespace in host pattern {pattern!r}")
    segs = _segments(pattern)
    total = 1
    for seg in segs:
        total *= len(seg)
        _check_size(total, pattern)
    names = [""]
    for seg in segs:
        names = [n + s for n in names for s in seg]
    return names


def expand(pattern: str) -> list[str]:
    """All names of a pattern, in order (duplicates kept). Raises HostPatternError."""
    if not isinstance(pattern, str):
        raise HostPatternError(f"host pattern must be a string, not {type(pattern).__name__}")
    items = split_list(pattern)
    if not items:
        raise HostPatternError("empty host pattern")
    out: list[str] = []
    for item in items:
        names = _expand_one(item)
        _check_size(len(out) + len(names), pattern)
        out.extend(names)
    return out


# ---- compress -------------------------------------------------------------------------

_TOKEN = re.compile(r"(\d+)")


def _format_numbers(strings: Iterable[str]) -> str:
    """Number strings as a hostlist bracket body: ``01-04,07``; keeps each string's padding."""
    ordered = sorted(set(strings), key=lambda s: (int(s), len(s)))
    runs: list[tuple[str, str]] = []
    for s in ordered:
        if runs:
            lo, hi = runs[-1]
            if int(s) == int(hi) + 1 and s == str(int(s)).zfill(len(lo)):
                runs[-1] = (lo, s)
                continue
        runs.append((s, s))
    return ",".join(lo if lo == hi else f"{lo}-{hi}" for lo, hi in runs)


def _render(tokens: Sequence[object]) -> str:
    out: list[str] = []
    for tok in tokens:
        if isinstance(tok, frozenset):
            body = _format_numbers(tok)
            out.append(body if len(tok) == 1 else f"[{body}]")
        else:
            out.append(str(tok))
    return "".join(out)


def compress(names: Iterable[str]) -> str:
    """The inverse of expand, for display: ``gpu-01,gpu-02,gpu-03`` -> ``gpu-[01-03]``.

    Each numeric run of a name can become a range; names differing in several numeric runs
    fold into several brackets (``n[01-02]-ib[0-1]``). Duplicates are dropped; groups keep
    the order of their first name. ``expand(compress(names))`` gives back the same set.
    """
    items: list[tuple[object, ...]] = []
    literal: list[str] = []
    seen: set[str] = set()
    for name in names:
        if name in seen:
            continue
        seen.add(name)
        if any(c in name for c in "[],") or not name:
            items.append((name,))
            literal.append(name)
            continue
        parts = _TOKEN.split(name)
        items.append(tuple(frozenset([p]) if i % 2 else p for i, p in enumerate(parts)))
    changed = True
    while changed:
        changed = False
        width = max((len(t) for t in items), default=0)
        for pos in range(width - 1, -1, -1):
            merged: dict[tuple[object, ...], list[object]] = {}
            order: list[tuple[object, ...]] = []
            for tok in items:
                if pos >= len(tok) or not isinstance(tok[pos], frozenset):
                    key: tuple[object, ...] = ("\0solo", len(order))
                    merged[key] = [tok]
                    order.append(key)
                    continue
                key = (len(tok), tok[:pos], tok[pos + 1:])
                if key in merged:
                    merged[key][1] = merged[key][1] | tok[pos]  # type: ignore[operator]
                    changed = True
                else:
                    merged[key] = [tok, tok[pos]]
                    order.append(key)
            new_items: list[tuple[object, ...]] = []
            for key in order:
                entry = merged[key]
                if len(entry) == 1:
                    new_items.append(entry[0])  # type: ignore[arg-type]
                else:
                    first = entry[0]
                    new_items.append(first[:pos] + (entry[1],) + first[pos + 1:])  # type: ignore[index]
            items = new_items
    return ",".join(_render(t) for t in items)
