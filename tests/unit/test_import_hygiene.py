"""Layering: judging never pulls in UI or SSH libraries (collect → parse → judge → present)."""

from __future__ import annotations

import subprocess
import sys


def test_engine_and_checks_import_no_ui_or_ssh() -> None:
    code = (
        "import sys, preflight.engine, checks, preflight.registry\n"
        "bad = [m for m in ('textual', 'rich', 'fabric', 'paramiko', 'preflight.report', 'preflight.transport') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"judging imported {out}"
