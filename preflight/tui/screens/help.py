"""The help panel (`?`): every key of every screen."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("everywhere", (("?", "this help (again to close)"), ("p", "plan screen"), ("s", "save the bundle (raw outputs)"),
                    ("e", "export the JSON report"), ("esc", "back"), ("q", "quit (exit code of the run)"))),
    ("fleet", (("⏎", "open the node (on a group cell: that group first)"), ("c / click header", "check screen for the column"),
               ("f", "failed and unreachable nodes only"), ("/", "search nodes (text or glob)"),
               ("r", "re-run the node (bundle: re-judge its recorded facts)"))),
    ("node", (("t", "topology matrix / findings"), ("f", "warnings and failures only"), ("c", "check screen for the finding"),
              ("r", "re-run this node"))),
    ("check", (("↑↓ list", "pick a check"), ("⏎ / n", "open the first node with that value"),
               ("r", "re-run the check (re-judges the facts already collected)"))),
    ("plan", (("tab", "model, context, seqs, weights; the table updates"), ("y", "copy the selected layout's launch command"))),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "close"), Binding("question_mark", "app.pop_screen", "close"),
                Binding("q", "app.pop_screen", "close", show=False)]

    def compose(self) -> ComposeResult:
        t = Table(title="preflight keys", title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
        t.add_column("screen", style="bold")
        t.add_column("key", no_wrap=True)
        t.add_column("does")
        for screen, keys in KEYS:
            for i, (k, what) in enumerate(keys):
                t.add_row(screen if i == 0 else "", Text(k, style="bold cyan"), what)
        with VerticalScroll(id="help-box"):
            yield Static(t, id="help")
            yield Static(Text("Status reads by symbol and word: ✔ ok  ▲ warn  ✖ FAIL  ? error  – skip  ⨯ unreach",
                              style="dim"))
