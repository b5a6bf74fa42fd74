"""How a status reads in the TUI: symbol and word (for monochrome terminals), plus a colour."""

from __future__ import annotations

from rich.text import Text

from preflight.results import Status

SYMBOL = {Status.PASS: "✔", Status.SKIP: "–", Status.ACCEPTED: "◇", Status.WARN: "▲", Status.FAIL: "✖", Status.ERROR: "?"}
WORD = {Status.PASS: "ok", Status.SKIP: "skip", Status.ACCEPTED: "accepted", Status.WARN: "warn", Status.FAIL: "FAIL", Status.ERROR: "error"}
STYLE = {Status.PASS: "green", Status.SKIP: "dim", Status.ACCEPTED: "cyan", Status.WARN: "bold yellow", Status.FAIL: "bold red",
         Status.ERROR: "bold magenta"}
UNREACH = "⨯ unreach"
UNREACH_STYLE = "bold magenta"


def label(status: Status) -> str:
    """`✖ FAIL`: reads without colour."""
    return f"{SYMBOL[status]} {WORD[status]}"


def status_text(status: Status | None, *, pad: str = "") -> Text:
    """A table cell for a status; None (no finding in that group) is a dim dot."""
    if status is None:
        return Text(pad + "·", style="dim")
    return Text(pad + label(status), style=STYLE[status])


def unreachable_text(outcome: str, *, pad: str = "") -> Text:
    word = "unreach" if outcome == "unreachable" else outcome.replace("_", " ")
    return Text(f"{pad}⨯ {word}", style=UNREACH_STYLE)
