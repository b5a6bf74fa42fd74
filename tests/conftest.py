"""Test-session-wide: the run history (preflight/history) never lands in the real home.

`preflight run`/`hang` append to `$XDG_DATA_HOME/preflight/history.sqlite` by default; every test (and every
CLI subprocess it starts, which inherits the environment) gets a throwaway XDG_DATA_HOME instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile

_DATA_HOME = tempfile.mkdtemp(prefix="preflight-test-xdg-data-")
os.environ["XDG_DATA_HOME"] = _DATA_HOME


def pytest_unconfigure(config: object) -> None:
    shutil.rmtree(_DATA_HOME, ignore_errors=True)
