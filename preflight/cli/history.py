"""`preflight history [NODE...]`, and the hooks that record `run`, `replay --record` and `hang` in the history.

The text output fits 80 columns and leads with what is wrong: repeat offenders first, then per node its
current findings, its verdicts as a strip (newest right), a busbw sparkline, link flaps, and every finding's
first and last sighting.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

WIDTH = 80
SPARK = "▁▂▃▄▅▆▇█"
STRIP = {"pass": "·", "skip": "-", "warn": "w", "error": "?", "fail": "X"}


def history_path(args: argparse.Namespace) -> Any:
    """The history this command writes to, None for the default, False with --no-history."""
    if getattr(args, "no_history", False):
        return False
    return getattr(args, "history", None)


def _warn(msg: str) -> None:
    print(msg[:400], file=sys.stderr)


def acknowledgements(args: argparse.Namespace) -> list[dict[str, Any]]:
    """The `--ack FILE` entries, checked (ValueError with file:line: a bad entry, or a check it names that does not
    exist: a typo would acknowledge nothing)."""
    from preflight.inventory import InventoryError
    from preflight.inventory.fields import load_ack_file
    from preflight.overrides import accept_key_problem

    out: list[dict[str, Any]] = []
    for path in getattr(args, "ack", None) or ():
        try:
            entries = load_ack_file(path)
        except InventoryError as exc:
            raise ValueError(f"--ack {exc}") from None
        for entry in entries:
            problem = accept_key_problem(str(entry["check"]))
            if problem:
                raise ValueError(f"--ack {entry['source']}: check: {problem}")
        out.extend(entries)
    return out


def record_report(args: argparse.Namespace, report: Any, facts: Any, source: dict[str, Any], code: int) -> None:
    """Append a judged run to the history (never raises; a problem is one warning line on stderr)."""
    kind = source.get("kind")
    path = history_path(args)
    if path is False or kind == "demo" or (kind == "replay" and not getattr(args, "record", False)):
        return
    from preflight.history import record_safely, run_rows

    by_name = {n.name: n for n in getattr(facts, "nodes", ()) or ()}
    where = source.get("bundle") or source.get("inventory")
    record_safely(path, lambda: run_rows(report, by_name, kind=str(kind), source=str(where) if where else None,
                                         label=source.get("label"), exit_code=code), _warn)


def record_hang(args: argparse.Namespace, verdict: Any, code: int) -> None:
    """Append a hang verdict (the nodes its causes name) to the history; never raises."""
    path = history_path(args)
    if path is False:
        return
    from preflight.history import hang_rows, record_safely

    where = getattr(args, "bundle", None) or getattr(args, "inventory", None) or getattr(args, "host_list", None)
    record_safely(path, lambda: hang_rows(verdict, source=where, exit_code=code), _warn)


def cmd_history(args: argparse.Namespace) -> int:
    """Exit 0 shown (2 with --fail-on-offenders and an offender), 3 when the history cannot be read."""
    from preflight.history import HistoryError, connect, default_path, known_nodes, node_trend, repeat_offenders

    path = args.history or default_path()
    try:
        conn = connect(path, create=False)
    except HistoryError as exc:
        print(f"preflight history: {exc}", file=sys.stderr)
        return 3
    try:
        offenders = repeat_offenders(conn, args.k, args.n)
        names = list(args.nodes) or [n for n, _ in offenders] or known_nodes(conn)[: args.limit]
        trends = [node_trend(conn, name, args.last) for name in names]
    except ValueError as exc:
        print(f"preflight history: {exc}", file=sys.stderr)
        return 3
    except Exception as exc:  # a corrupt file
        print(f"preflight history: cannot read {path}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    finally:
        conn.close()
    if args.json:
        doc = {"schema": "preflight-history", "schema_version": 1, "history": str(path), "k": args.k, "n": args.n,
               "repeat_offenders": [{"node": n, "why": w} for n, w in offenders],
               "nodes": [t.to_dict() for t in trends]}
        text = json.dumps(doc, indent=2)
        if args.json == "-":
            print(text)
        else:
            with open(args.json, "w") as fh:
                fh.write(text + "\n")
    if args.json != "-":
        sys.stdout.write("\n".join(render_text(offenders, trends, args.k, args.n, bool(args.nodes))) + "\n")
    return 2 if (args.fail_on_offenders and offenders) else 0


def sparkline(values: list[float], width: int = 40) -> str:
    values = values[-width:]
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        return SPARK[-1] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / (hi - lo) * (len(SPARK) - 1) + 0.5))] for v in values)


def _cut(text: str, width: int = WIDTH) -> str:
    indent = text[: len(text) - len(text.lstrip(" "))]
    text = indent + " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _day(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(at)) if at else "?"


def render_text(offenders: list[tuple[str, str]], trends: list[Any], k: int, n: int, named: bool) -> list[str]:
    """The report, every line at most 80 columns, what is wrong first."""
    lines = [_cut(f"repeat offenders (failed >= {k} of last {n} runs, or named by a hang): "
                  f"{len(offenders) or 'none'}")]
    for node, why in offenders:
        lines.append(_cut(f"  {node}: {why}"))
    if not trends:
        lines.append("no runs recorded" if not named else "no runs recorded for these nodes")
    for t in trends:
        lines.append("")
        lines.extend(_node_lines(t))
    return lines


def _node_lines(t: Any) -> list[str]:
    if not t.runs:
        return [_cut(f"{t.node}: no runs recorded")]
    last_status, last_reason = t.runs[-1][2], t.runs[-1][3]
    bad = sum(1 for r in t.runs if r[2] in ("fail", "error"))
    out = [_cut(f"{t.node}: {last_status.upper()} now, {bad} of the last {t.total_runs} runs failing"),
           _cut(f"  now: {last_reason}")]
    current = [f for f in t.findings if f.current]
    for f in current:
        out.append(_cut(f"  {f.status.upper():5} {f.check}: since {_day(f.first_at)} ({f.runs} runs): {f.reason}"))
    out.append(_cut("  runs   " + "".join(STRIP.get(r[2], "?") for r in t.runs[-60:]) + "  (X fail ? error w warn)"))
    if t.busbw:
        out.append(_cut(f"  busbw  {sparkline(t.busbw)}  {min(t.busbw):.1f}..{max(t.busbw):.1f} GB/s, "
                        f"last {t.busbw[-1]:.1f}"))
    if t.flaps:
        out.append(_cut(f"  link flaps: {len(t.flaps)}: " + "; ".join(t.flaps[-3:])))
    for at, cause in t.hangs[-3:]:
        out.append(_cut(f"  hang {_day(at)}: {cause}"))
    past = [f for f in t.findings if not f.current]
    if past:
        out.append("  earlier findings (first seen .. last seen, runs):")
        for f in past[:10]:
            out.append(_cut(f"    {f.status:5} {f.check}: {_day(f.first_at)} .. {_day(f.last_at)} ({f.runs})"))
    return out
