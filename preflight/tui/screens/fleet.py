"""The fleet screen: nodes × check groups, worst status per cell, filled as nodes answer.

The DataTable renders only the visible rows; updates touch only the cells whose text changed.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Static

from preflight.facts import FleetFacts
from preflight.plan.envelope import Envelope, envelope
from preflight.registry import GROUPS
from preflight.results import NodeReport, RunReport, Status
from preflight.tui.state import group_statuses, node_verdict
from preflight.tui.status import STYLE, SYMBOL, UNREACH_STYLE
from preflight.tui.widgets.envelope import EnvelopeView
from preflight.tui.widgets.fleet_table import FleetTable

if TYPE_CHECKING:
    from preflight.tui.host import RunHost

SHORT = {"versions": "ver", "gpu": "gpu", "nvlink": "nvl", "topology": "topo", "ib": "ib", "memory": "mem",
         "nccl": "nccl", "network": "net"}
GRID_WORD = {Status.PASS: "ok", Status.SKIP: "skip", Status.ACCEPTED: "acc", Status.WARN: "warn", Status.FAIL: "FAIL", Status.ERROR: "err"}
GROUP_WIDTH = 7  # " ✖ FAIL": 8 groups fit an 80-column terminal with the node and state columns
STATE_WIDTH = 11


def _cell(status: Status | None) -> Text:
    if status is None:
        return Text(" ·", style="dim")
    return Text(f" {SYMBOL[status]} {GRID_WORD[status]}", style=STYLE[status])


# A rendered row's cells, by what they are made of: the node's report (by identity: a frozen report's findings
# never change) and its waiting label. Re-listing the rows (a filter) renders no row again.
_RowKey = tuple[NodeReport | None, str | None]


class FleetScreen(Screen[None]):
    BINDINGS = [
        Binding("f", "toggle_failures", "failures"),
        Binding("slash", "search", "search"),
        Binding("c", "check", "check"),
        Binding("r", "rerun_node", "re-run"),
        Binding("escape", "clear", "clear", show=False),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.failures_only = False
        self.query_text = ""
        self._cells: dict[str, dict[str, tuple[str, str]]] = {}  # what each shown row displays now
        self._shown: list[str] = []
        self._rendered: dict[str, tuple[_RowKey, dict[str, Text], dict[str, tuple[str, str]]]] = {}
        self._envelope_timer: Timer | None = None
        self.envelope_computations = 0  # envelopes shown so far (tests wait on it)

    @property
    def papp(self) -> RunHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title")
        yield Static(id="fleet-counts")
        box = EnvelopeView(id="envelope")
        box.border_title = "parallelism envelope"
        yield box
        yield Input(placeholder="search nodes: text or glob (gpu-0[1-3]), Enter to keep, Esc to clear", id="search")
        yield FleetTable(id="fleet", cursor_type="cell", cell_padding=0, zebra_stripes=True)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#fleet", DataTable)
        width = min(max((len(n) for n in self.papp.state.order), default=4), 28) + 2
        table.add_column(Text(" node"), key="node", width=width)
        table.add_column(Text(" state"), key="state", width=STATE_WIDTH)
        for g in GROUPS:
            table.add_column(Text(" " + SHORT.get(g, g)), key=g, width=GROUP_WIDTH)
        self.query_one("#search", Input).display = False
        self.rebuild()
        self.set_interval(1.0, self._tick_waiting)
        self.query_one("#envelope", EnvelopeView).show(None)
        self.schedule_envelope()
        table.focus()
        self.call_after_refresh(self.papp.fleet_painted)

    # ----- rows
    def row_cells(self, name: str) -> dict[str, Text]:
        """The row's cells (the same Text objects while the report and the waiting label are the same)."""
        return self._row(name)[1]

    def _row(self, name: str) -> tuple[_RowKey, dict[str, Text], dict[str, tuple[str, str]]]:
        """(what it is made of, cells, each cell's (text, style)): rendered once per report and waiting label."""
        st = self.papp.state
        rep = st.reports.get(name)
        label = st.waiting_label(name) if name in st.pending or rep is None else None
        hit = self._rendered.get(name)
        if hit is not None and hit[0][0] is rep and hit[0][1] == label:
            return hit
        cells = self._render_row(name, rep, label)
        row = ((rep, label), cells, {k: (v.plain, str(v.style)) for k, v in cells.items()})
        self._rendered[name] = row
        return row

    def _render_row(self, name: str, rep: NodeReport | None, label: str | None) -> dict[str, Text]:
        cells: dict[str, Text] = {"node": Text(" " + name)}
        if label is not None or rep is None:
            cells["state"] = Text(" … " + (label or ""), style="italic")
        elif rep.outcome != "ok":
            word = "unreach" if rep.outcome == "unreachable" else rep.outcome.replace("_", " ")[:8]
            cells["state"] = Text(f" ⨯ {word}", style=UNREACH_STYLE)
        else:
            cells["state"] = _cell(rep.status)  # the node's one verdict (NodeReport.status), as on every surface
        if rep is None:
            cells.update((g, Text(" ", style="dim")) for g in GROUPS)
        elif rep.outcome != "ok":
            cells.update((g, Text(" —", style="dim")) for g in GROUPS)
        else:
            cells.update(zip(GROUPS, map(_cell, group_statuses(rep, GROUPS, self.papp.groups_of))))
        return cells

    def matches(self, name: str) -> bool:
        st = self.papp.state
        if self.failures_only:
            rep = st.reports.get(name)
            if rep is None or node_verdict(rep) not in ("fail", "error", "unreachable"):
                return False
        q = self.query_text.strip().lower()
        if q:
            if any(ch in q for ch in "*?["):
                return fnmatch.fnmatchcase(name.lower(), q)
            return q in name.lower()
        return True

    def rebuild(self) -> None:
        """Re-list the rows (filters changed); keeps the cursor on the same node when it stays."""
        table = self.query_one("#fleet", DataTable)
        keep_row = self._cursor_node()
        keep_col = table.cursor_column
        table.clear()
        self._cells.clear()
        self._shown = [n for n in self.papp.state.order if self.matches(n)]
        for name in self._shown:
            _key, cells, sigs = self._row(name)
            self._cells[name] = dict(sigs)
            table.add_row(*cells.values(), key=name)
        if keep_row in self._shown:
            table.move_cursor(row=self._shown.index(keep_row), column=keep_col)
        self.update_header()

    def update_nodes(self, names: list[str]) -> int:
        """Re-render these nodes' rows; returns how many cells changed."""
        table = self.query_one("#fleet", DataTable)
        touched = 0
        for name in names:
            want = self.matches(name)
            if want != (name in self._cells):
                self.rebuild()  # a row enters or leaves the filtered view
                return -1
            if not want:
                continue
            _key, cells, sigs = self._row(name)
            shown = self._cells[name]
            for key, text in cells.items():
                sig = sigs[key]
                if shown.get(key) != sig:
                    table.update_cell(name, key, text)
                    shown[key] = sig
                    touched += 1
        return touched

    def state_changed(self, names: list[str]) -> None:
        if names:
            self.update_nodes(names)
        self.update_header()
        self.schedule_envelope()

    # ----- the parallelism envelope (computed in a worker, 0.3 s after the last change)
    def schedule_envelope(self) -> None:
        if self._envelope_timer is not None:
            self._envelope_timer.stop()
        self._envelope_timer = self.set_timer(0.3, self._start_envelope)

    def _start_envelope(self) -> None:
        st = self.papp.state
        if not st.reports:
            return
        model = self.papp.model_name or st.template.inventory.get("model") or None
        self.compute_envelope(st.run_report(), st.fleet_facts(), str(model) if model else None)

    @work(thread=True, exclusive=True, group="envelope", exit_on_error=False, description="parallelism envelope")
    def compute_envelope(self, report: RunReport, facts: FleetFacts, model: str | None) -> None:
        env = envelope(report, facts, model, source=self.papp.source.label)
        self.app.call_from_thread(self._show_envelope, env)

    def _show_envelope(self, env: Envelope) -> None:
        self.envelope_computations += 1
        self.query_one("#envelope", EnvelopeView).show(env)

    def _tick_waiting(self) -> None:
        waiting = [n for n, p in self.papp.state.pending.items() if p.since is not None]
        if waiting:
            self.update_nodes(waiting)
            self.update_header()

    def update_header(self) -> None:
        app = self.papp
        st = app.state
        c = st.counts()
        mode = []
        if app.collecting:
            mode.append(f"collecting: {len(st.order) - c['waiting']}/{len(st.order)} answered")
        elif app.judging and st.raws:
            mode.append("judging…")
        if self.failures_only:
            mode.append("filter: failures")
        if self.query_text:
            mode.append(f"search: {self.query_text}")
        if len(self._shown) != len(st.order):
            mode.append(f"showing {len(self._shown)} of {len(st.order)}")
        self.query_one("#fleet-title", Static).update(
            Text.assemble((app.source.label, "bold"), f" · {len(st.order)} nodes", *(f" · {m}" for m in mode),
                          "  ", ("p", "bold cyan"), (" full plan", "dim")))
        counts = Text.assemble(
            (f"✔ {c['pass']} passed", STYLE[Status.PASS]), "  ",
            (f"▲ {c['warn']} warned", STYLE[Status.WARN] if c["warn"] else ""), "  ",
            (f"✖ {c['fail']} failed", STYLE[Status.FAIL] if c["fail"] else ""), "  ",
            *(((f"? {c['error']} unknown", STYLE[Status.ERROR]), "  ") if c["error"] else ()),
            (f"⨯ {c['unreachable']} unreachable", UNREACH_STYLE if c["unreachable"] else ""),
            *((("  ", ""), (f"… {c['waiting']} waiting", "italic")) if c["waiting"] else ()),
        )
        self.query_one("#fleet-counts", Static).update(counts)

    # ----- cursor helpers
    def _cursor_node(self) -> str | None:
        table = self.query_one("#fleet", DataTable)
        if not self._shown or table.cursor_row >= len(self._shown) or table.cursor_row < 0:
            return None
        return self._shown[table.cursor_row]

    def _cursor_group(self) -> str | None:
        table = self.query_one("#fleet", DataTable)
        col = table.cursor_column - 2
        return GROUPS[col] if 0 <= col < len(GROUPS) else None

    # ----- events and actions
    @on(DataTable.CellSelected, "#fleet")
    def open_cell(self, event: DataTable.CellSelected) -> None:
        name = str(event.cell_key.row_key.value)
        col = str(event.cell_key.column_key.value)
        self.papp.open_node(name, group=col if col in GROUPS else None)

    @on(DataTable.HeaderSelected, "#fleet")
    def open_column(self, event: DataTable.HeaderSelected) -> None:
        col = str(event.column_key.value)
        if col in GROUPS:
            self.papp.open_check(group=col)

    def action_check(self) -> None:
        self.papp.open_check(group=self._cursor_group())

    def action_toggle_failures(self) -> None:
        self.failures_only = not self.failures_only
        self.rebuild()  # the title line says "filter: failures"

    def action_search(self) -> None:
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    @on(Input.Changed, "#search")
    def search_changed(self, event: Input.Changed) -> None:
        self.query_text = event.value
        self.rebuild()

    @on(Input.Submitted, "#search")
    def search_done(self, event: Input.Submitted) -> None:
        if not event.value:
            self.query_one("#search", Input).display = False
        self.query_one("#fleet", DataTable).focus()

    def action_clear(self) -> None:
        box = self.query_one("#search", Input)
        if box.display or self.query_text:
            box.value = ""
            box.display = False
            self.query_text = ""
            self.rebuild()
        self.query_one("#fleet", DataTable).focus()

    def action_rerun_node(self) -> None:
        name = self._cursor_node()
        if name is not None:
            self.papp.rerun_node(name)

    def on_screen_resume(self) -> None:
        self.rebuild()

