"""The check screen: one check across every node, nodes grouped by the value they observed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, OptionList, Static
from textual.widgets.option_list import Option

from preflight.report.console import pair_diff
from preflight.results import RunReport
from preflight.tui.status import STYLE, SYMBOL, label
from preflight.tui.views import ValueGroup, check_groups, check_status, finding_values

if TYPE_CHECKING:
    from preflight.tui.host import RunHost


class CheckScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("r", "rerun", "re-run check"),
        Binding("n", "open_node", "node"),
    ]

    def __init__(self, *, group: str | None = None, check_id: str | None = None) -> None:
        super().__init__()
        self.group = group
        self.check_id = check_id
        self._groups: list[ValueGroup] = []
        self._ids: list[str] = []

    @property
    def papp(self) -> RunHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="check-title")
        with Horizontal():
            yield OptionList(id="checks")
            with Vertical(id="check-main"):
                yield DataTable(id="values", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="value-box"):
                    yield Static(id="value-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#values", DataTable)
        wide = self.app.size.width >= 120
        self.query_one("#checks", OptionList).styles.width = 36 if wide else 30
        value = 30 if wide else 14
        # "which" takes what is left: the list, 4 columns of 2 padding, a scrollbar
        which = max(12, self.app.size.width - (36 if wide else 30) - (8 + value + 5) - 8 - 2)
        table.add_column("status", key="status", width=8)
        table.add_column("value", key="value", width=value)
        table.add_column("nodes", key="n", width=5)
        table.add_column("which", key="which", width=which)
        report = self.papp.state.run_report()
        specs = sorted(self.papp.specs.values(), key=lambda s: (s.group, s.id))
        self._ids = [s.id for s in specs]
        if self.check_id is None:
            pool = [s for s in specs if self.group is None or s.group == self.group]
            ranked = sorted(pool, key=lambda s: -((check_status(report, s.id) or _NONE).rank))
            self.check_id = ranked[0].id if ranked else self._ids[0]
        self._fill_options(report)
        self.show_check(self.check_id)
        table.focus()

    def _fill_options(self, report: RunReport) -> None:
        ol = self.query_one("#checks", OptionList)
        highlighted = ol.highlighted
        ol.clear_options()
        room = (36 if self.app.size.width >= 120 else 30) - 8  # border, padding, mark, scrollbar
        for cid in self._ids:
            s = check_status(report, cid)
            mark = Text(f"{SYMBOL[s]} " if s else "· ", style=STYLE[s] if s else "dim")
            prompt = Text.assemble(mark, cid if len(cid) <= room else cid[:room - 1] + "…")
            prompt.no_wrap, prompt.overflow = True, "ellipsis"
            ol.add_option(Option(prompt, id=cid))
        if highlighted is not None:
            ol.highlighted = highlighted

    def show_check(self, check_id: str) -> None:
        self.check_id = check_id
        spec = self.papp.specs[check_id]
        report = self.papp.state.run_report()
        self._groups = check_groups(report, check_id)
        title = Text.assemble(("check ", "dim"), (check_id, "bold"), f" · {spec.group} · {spec.scope}",
                              no_wrap=True, overflow="ellipsis")
        room = 2 * max(20, self.app.size.width - 2)  # the title box is 3 rows: the summary gets two
        summary = spec.summary if len(spec.summary) <= room else spec.summary[:room - 1] + "…"
        self.query_one("#check-title", Static).update(Group(title, Text(summary, style="italic")))
        ol = self.query_one("#checks", OptionList)
        idx = self._ids.index(check_id)
        if ol.highlighted != idx:
            ol.highlighted = idx
        table = self.query_one("#values", DataTable)
        table.clear()
        for i, g in enumerate(self._groups):
            which = ", ".join(g.members[:6]) + (f" +{len(g.members) - 6}" if len(g.members) > 6 else "")
            table.add_row(Text(label(g.status), style=STYLE[g.status]), self._value(g), str(len(g.nodes)),
                          Text(which), key=str(i), height=None)
        self._show_group()

    @staticmethod
    def _value(g: ValueGroup) -> str:
        """The group's value; topology.consistent: the GPU pairs that differ, not a 28-pair signature."""
        return finding_values(g.sample)[0] if g.sample.observed is not None else g.value

    def _selected(self) -> ValueGroup | None:
        table = self.query_one("#values", DataTable)
        if 0 <= table.cursor_row < len(self._groups):
            return self._groups[table.cursor_row]
        return None

    def _show_group(self) -> None:
        box = self.query_one("#value-detail", Static)
        g = self._selected()
        if g is None:
            box.update(Text("no findings for this check (not selected for the run, or no node answered)",
                            style="italic"))
            return
        spec = self.papp.specs[self.check_id or g.sample.check]
        distinct = len(self._groups)
        parts = [
            Text.assemble((f"{len(self._groups)} distinct value{'s' if distinct != 1 else ''}", "bold"),
                          f" across {sum(len(x.nodes) for x in self._groups)} node entries"),
            Text.assemble(("value: ", "bold"), self._value(g), "  ", (label(g.status), STYLE[g.status])),
            Text.assemble(("expected: ", "bold"), finding_values(g.sample)[1] if pair_diff(g.sample) else g.expected),
            Text.assemble(("nodes: ", "bold"), ", ".join(g.members)),
        ]
        if g.sample.msg:
            parts.append(Text(g.sample.msg, style="dim"))
        hint = g.sample.hint or (spec.remediation if g.status.rank >= 2 else "")
        if hint:
            parts.append(Text.assemble(("hint: ", "bold"), hint))
        box.update(Group(*parts))

    @on(OptionList.OptionHighlighted, "#checks")
    def pick_check(self, event: OptionList.OptionHighlighted) -> None:
        if event.option.id and event.option.id != self.check_id:
            self.show_check(event.option.id)

    @on(DataTable.RowHighlighted, "#values")
    def pick_group(self, _event: DataTable.RowHighlighted) -> None:
        self._show_group()

    @on(DataTable.RowSelected, "#values")
    def enter_group(self, _event: DataTable.RowSelected) -> None:
        self.action_open_node()

    def action_open_node(self) -> None:
        g = self._selected()
        if g is not None and g.nodes and g.nodes[0] != "fleet":
            self.papp.open_node(g.nodes[0], group=self.papp.specs[self.check_id or ""].group)

    def action_rerun(self) -> None:
        if self.check_id:
            self.papp.rerun_check(self.check_id)

    def state_changed(self, names: list[str]) -> None:
        if self.check_id:
            keep = self.query_one("#values", DataTable).cursor_row
            self._fill_options(self.papp.state.run_report())
            self.show_check(self.check_id)
            table = self.query_one("#values", DataTable)
            if self._groups:
                table.move_cursor(row=min(keep, len(self._groups) - 1))


class _NoStatus:
    rank = -1


_NONE = _NoStatus()
