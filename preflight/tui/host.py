"""What the screens need of the app that hosts them, so they do not import the app (which pushes them).

`PreflightApp` satisfies it; a screen reaches it as `self.papp`.
"""

from __future__ import annotations

from typing import Protocol

from preflight.registry import CheckSpec
from preflight.tui.source import RunSource
from preflight.tui.state import RunState


class RunHost(Protocol):
    source: RunSource
    state: RunState
    model_name: str | None
    groups_of: dict[str, str]  # check id -> group
    specs: dict[str, CheckSpec]
    collecting: bool

    @property
    def is_live(self) -> bool: ...

    @property
    def judging(self) -> bool: ...

    def fleet_painted(self) -> None: ...

    def rerun_node(self, name: str) -> None: ...

    def rerun_check(self, check_id: str) -> None: ...

    def open_node(self, name: str, *, group: str | None = None) -> None: ...

    def open_check(self, *, check_id: str | None = None, group: str | None = None) -> None: ...
