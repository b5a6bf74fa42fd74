"""The parallelism envelope on the fleet screen: what this fleet can run, before any plan is asked for."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from preflight.plan.envelope import Envelope
from preflight.report.console import envelope_lines


def envelope_renderable(env: Envelope | None, *, model_hint: bool = True) -> Group:
    """The console's envelope lines, each kept to one row (cut with … rather than wrapped), and the `p` hint."""
    if env is None:
        return Group(Text("parallelism envelope: waiting for the judged fleet…", style="italic dim"))
    lines = envelope_lines(env)
    if env.model is None and model_hint:
        lines.append(Text.assemble(("p", "bold cyan"), " the full plan: pick a model, see every layout and its reasons",
                                   style="dim"))
    for line in lines:
        line.no_wrap, line.overflow = True, "ellipsis"
    return Group(*lines)


class EnvelopeView(Static):
    """Shows an `Envelope`; `envelope` is what it shows now (None until the fleet is judged)."""

    envelope: Envelope | None = None

    def show(self, env: Envelope | None) -> None:
        self.envelope = env
        self.update(envelope_renderable(env))
