"""When the interactive UI opens, and how the command line hands it a run (`preflight tui`, `run` at a terminal).

The TUI never reads flags: the CLI resolves them into a bundle path or a session LiveRequest first.
"""

from __future__ import annotations

import argparse
import os
import sys

from preflight.cli.common import consoles, demo_bundle_path
from preflight.results import EXIT_CANNOT_RUN


def interactive(args: argparse.Namespace) -> bool:
    """The TUI opens for a person at a terminal: not with --headless, CI set, output redirected or --json -."""
    if getattr(args, "headless", False) or os.environ.get("CI") or getattr(args, "json", None) == "-":
        return False
    # outputs and policies only the headless path writes or applies: asking for one means headless
    if any(getattr(args, k, None) for k in ("json", "junit", "markdown", "baseline", "timings", "checks", "skip")):
        return False
    if getattr(args, "fail_on", "fail") != "fail":
        return False
    if getattr(args, "quiet", False):
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def run_live(args: argparse.Namespace) -> int:
    """`preflight run` at a terminal: the request resolved here (errors exit 3 before any screen), then the TUI."""
    from preflight.cli.progress import live_request
    from preflight.inventory import InventoryError
    from preflight.tui import run_live as tui_live

    try:
        req = live_request(args)
    except (InventoryError, ValueError) as exc:  # PlanError is a ValueError
        print(f"preflight: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    return tui_live(req, model=getattr(args, "model", None))


def cmd_tui(args: argparse.Namespace) -> int:
    from preflight.collect.bundle import BundleError, load_bundle
    from preflight.tui import run_bundle

    _out, err = consoles(argparse.Namespace(no_color=False))
    path = args.bundle or str(demo_bundle_path())
    try:
        load_bundle(path)  # a clear error before the screen takes over
    except BundleError as exc:
        err.print(f"[bold red]preflight: {exc}[/]")
        return EXIT_CANNOT_RUN
    return run_bundle(path, model=args.model)
