"""What every command shares: consoles, output files, the demo recording, checks selection, overrides."""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from rich.console import Console

DEMO_LABEL = (
    "RECORDING: `preflight demo` replays a bundled recording, not your fleet. It was collected live over SSH from a "
    "simulated 4-node fleet whose stand-in tools print real published outputs of 8x H100 machines "
    "(provenance: preflight/sim/profiles/*/profile.yaml)."
)


def demo_bundle_path() -> Path:
    return Path(str(resources.files("preflight.data") / "demo" / "bundle.json"))


def consoles(args: argparse.Namespace) -> tuple[Console, Console]:
    """(stdout, stderr) consoles; `--no-color` where the command has it."""
    no_color = getattr(args, "no_color", False) or None
    out = Console(no_color=no_color, highlight=False, soft_wrap=False, emoji=False)
    err = Console(stderr=True, no_color=no_color, highlight=False, soft_wrap=True, emoji=False)
    return out, err


def select(args: argparse.Namespace) -> Any:
    """The checks `--checks`/`--skip` name; ValueError (one line) for a pattern that names none."""
    from preflight.engine import select_checks  # from the engine: the built-in checks are registered

    return select_checks(getattr(args, "checks", None), getattr(args, "skip", None))


def overrides(args: argparse.Namespace) -> Any:
    """--expect/--accept, validated (ValueError with one line); empty for commands without them."""
    from preflight.overrides import parse_overrides

    return parse_overrides(getattr(args, "expect", None) or (), getattr(args, "accept", None) or ())


def write_json(target: str, doc: dict[str, Any]) -> None:
    """A JSON document to FILE or '-': streamed (node text in it was cleaned where it entered, see textsafe)."""
    from preflight.report.json_report import write

    if target == "-":
        write(doc, sys.stdout)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w") as fh:
        write(doc, fh)


def write_text(target: str, text: str) -> None:
    if target == "-":
        sys.stdout.write(text)
        return
    Path(target).parent.mkdir(parents=True, exist_ok=True)
    Path(target).write_text(text)

