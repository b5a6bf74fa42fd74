"""The hang screen: ranks × where each one is (state, GPU use, top of stack, last collective), causes beside it.

Opened by `preflight tui` on a bundle saved by `preflight hang --save`, or `preflight hang --tui`.
The culprit is selected first; Enter on a cause selects its rank in the table.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

COLUMNS = ("rank", "node", "pid", "state", "GPU", "util", "top of stack / last collective")


def rank_rows(result: Any) -> list[tuple[Any, ...]]:
    """One row per rank: the live gather when there is one, else what the logs said."""
    rows: list[tuple[Any, ...]] = []
    for r in result.ranks:
        where = r.top_frame or ("in a collective" if r.in_collective else "")
        rows.append((r.rank, r.node, r.pid, r.state or "", r.gpu, f"{r.gpu_util}%" if r.gpu_util is not None else "", where))
    if not rows:
        for r in result.verdict.ranks:
            last = f"watchdog #{r.watchdog_seq} {r.watchdog_op or ''}" if r.watchdog_seq is not None else (
                f"FR entered {r.fr_last_entered} / completed {r.fr_last_completed}" if r.fr_last_entered is not None else "")
            rows.append((r.rank, r.node, r.pid, "init ✔" if r.init_complete else "init ✖", r.cuda_dev, "", last))
    return rows


class HangScreen(Screen[None]):
    BINDINGS = [Binding("q", "app.quit", "quit"), Binding("c", "focus_causes", "causes"), Binding("k", "focus_ranks", "ranks")]

    def __init__(self, result: Any, title: str) -> None:
        super().__init__()
        self.result = result
        self.heading = title

    def compose(self) -> ComposeResult:
        v = self.result.verdict
        yield Static(Text(f"{self.heading} · {v.summary}"), id="hang-header")
        with Vertical():
            causes = OptionList(*[Option(Text(f"{'CULPRIT' if i == 0 else f'#{i + 1}'} {c.score:.2f}  {c.title}"), id=f"c{i}")
                                  for i, c in enumerate(v.causes)] or [Option("no likely cause in these facts", disabled=True)],
                                id="hang-causes")
            yield causes
            yield Static("", id="hang-evidence")
            yield DataTable(id="hang-ranks", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#hang-ranks", DataTable)
        table.add_columns(*COLUMNS)
        culprit = self.result.verdict.culprit
        for row in rank_rows(self.result):
            cells = ["–" if x is None or x == "" else str(x) for x in row]
            bad = culprit is not None and culprit.rank is not None and row[0] == culprit.rank
            table.add_row(*[Text(c, style="bold red") if bad else Text(c) for c in cells], key=f"r{row[0]}-{row[1]}-{row[2]}")
        self.query_one("#hang-causes", OptionList).highlighted = 0 if self.result.verdict.causes else None
        self._show(0)

    def _show(self, index: int) -> None:
        causes = self.result.verdict.causes
        if not causes:
            return
        c = causes[index]
        lines = [f"next: {c.next_command}"] + [f"│ {e}" for e in c.evidence]
        self.query_one("#hang-evidence", Static).update(Text("\n".join(lines)))
        if c.rank is not None:
            table = self.query_one("#hang-ranks", DataTable)
            for i, row in enumerate(rank_rows(self.result)):
                if row[0] == c.rank:
                    table.move_cursor(row=i)
                    break

    @on(OptionList.OptionHighlighted, "#hang-causes")
    def _highlight(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index is not None:
            self._show(event.option_index)

    def action_focus_causes(self) -> None:
        self.query_one("#hang-causes", OptionList).focus()

    def action_focus_ranks(self) -> None:
        self.query_one("#hang-ranks", DataTable).focus()


class HangApp(App[int]):
    CSS = """
    #hang-header { height: 1; background: $boost; }
    #hang-causes { height: 8; }
    #hang-evidence { height: auto; max-height: 8; padding: 0 1; color: $text-muted; }
    #hang-ranks { height: 1fr; }
    """

    def __init__(self, result: Any, title: str = "preflight hang") -> None:
        super().__init__()
        self.result = result
        self.heading = title

    def on_mount(self) -> None:
        self.push_screen(HangScreen(self.result, self.heading))

    def action_quit(self) -> None:  # type: ignore[override]
        self.exit(0 if self.result.verdict.causes else 2)
