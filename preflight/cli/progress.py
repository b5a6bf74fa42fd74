"""A live collection from the command line: flags -> the session's request, progress on stderr, --save.

Progress is a bar at a terminal, one line per node otherwise (CI logs).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from preflight.cli.common import select
from preflight.collect.bundle import Bundle, NodeRaw
from preflight.engine import FactsCache
from preflight.session import Event, LiveRequest, LiveSession


@contextmanager
def progress_events(err: Console, total: int) -> Iterator[Event]:
    """An `on_event` callback that shows each node finishing."""
    if err.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("collecting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TextColumn("{task.description}"), console=err, transient=True) as progress:
            task = progress.add_task("", total=total)

            def on_event(kind: str, name: str, raw: NodeRaw | None) -> None:
                if kind == "finished" and raw is not None:
                    progress.update(task, advance=1, description=f"{name}: {raw.outcome}")

            yield on_event
        return
    done = [0]

    def on_line(kind: str, name: str, raw: NodeRaw | None) -> None:
        if kind == "finished" and raw is not None:
            done[0] += 1
            err.print(f"[{done[0]}/{total}] {name}: {raw.outcome} ({raw.duration_s:.1f}s)"
                      + (f" {raw.message}" if raw.outcome != "ok" else ""), soft_wrap=True)

    yield on_line


def level_line(req: LiveRequest) -> str | None:
    """What a run with active tests will take: the level, its tests and the time bound per node, so a long
    run says up front how long it may be silent."""
    active = req.active or {}
    if not active or (active.get("level") == "quick" and not any(p.startswith("nccl") for p in req.include_optional)):
        return None
    import time

    from preflight.session.request import STATE_PROBES_S

    budget = float(active.get("budget_s") or 0)
    tests = ", ".join(p for p in req.include_optional) or "none"
    done_by = time.strftime("%H:%M:%S", time.localtime(time.time() + budget + STATE_PROBES_S))
    return (f"level {active.get('level')}: {tests}; up to {budget:.0f} s of tests per node (budget), "
            f"all nodes in parallel: done by about {done_by}")


def collect_with_progress(session: LiveSession, err: Console, **collect_kw: Any) -> Bundle:
    """One sweep of the session, its progress on stderr (and, with active tests, what they will take)."""
    line = level_line(session.request) if not collect_kw.get("only") else None
    if line:
        err.print(line, soft_wrap=True)
    with progress_events(err, len(session.request.nodes)) as on_event:
        return session.collect(on_event=on_event, **collect_kw)


def live_request(args: argparse.Namespace) -> LiveRequest:
    """The session's request from these flags, after what fails without SSH (bad --checks, unknown model).

    Raises ValueError (InventoryError, PlanError) with the reason.
    """
    from preflight.session.request import RunArgs
    from preflight.session.request import live_request as request

    if getattr(args, "checks", None) is not None or getattr(args, "skip", None) is not None:
        select(args)  # bad --checks patterns fail before any SSH
    if getattr(args, "model", None):
        from preflight.cli.plan_args import load_plan_model, plan_options

        load_plan_model(args)  # an unknown model fails before any SSH too
        plan_options(args)
    return request(RunArgs.of(args))


def live_bundle(args: argparse.Namespace, err: Console, *, drop_raw: bool = False) -> tuple[Bundle, FactsCache] | None:
    """Inventory -> SSH -> bundle (--save: streamed to disk as nodes answer) and the facts parsed on the way; None
    after printing why it cannot run. `drop_raw`: each node's raw output is let go once parsed (and saved)."""
    from preflight.inventory import InventoryError

    try:
        req = live_request(args)
    except (InventoryError, ValueError) as exc:  # PlanError is a ValueError
        err.print(f"[bold red]preflight: {exc}[/]")
        return None
    with LiveSession(req, drop_raw=drop_raw, stream_save=True) as session:
        bundle = collect_with_progress(session, err)
    if req.save:
        from preflight.collect.bundle import saved_path

        err.print(f"bundle saved: {saved_path(req.save)}")
    return bundle, session.facts
