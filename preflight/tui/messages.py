"""Messages from run workers to the app (posted from threads; handled on the UI thread)."""

from __future__ import annotations

from dataclasses import dataclass, field

from textual.message import Message

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.facts import FleetFacts
from preflight.results import RunReport


@dataclass
class NodeStarted(Message):
    name: str


@dataclass
class NodeJudged(Message):
    """A node answered; `report` holds its node-scope checks (fleet checks follow in a FleetJudged)."""

    raw: NodeRaw
    report: RunReport
    facts: FleetFacts


@dataclass
class FleetJudged(Message):
    """A judgement of every node answered so far, computed from these raw versions."""

    report: RunReport
    facts: FleetFacts
    versions: dict[str, int] = field(default_factory=dict)


@dataclass
class CheckJudged(Message):
    check_id: str
    report: RunReport


@dataclass
class RunFinished(Message):
    bundle: Bundle


@dataclass
class StateChanged(Message):
    """Sent to screens: these nodes' rows changed (empty: counts/meta only)."""

    names: list[str]
