"""The node screen: one node's findings (worst first), the selected one in full, and its topology."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Group
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from preflight.results import Finding, NodeReport, Status
from preflight.tui.status import STYLE, label, unreachable_text
from preflight.tui.views import finding_values, findings_order
from preflight.tui.widgets.finding_detail import FindingDetail
from preflight.tui.widgets.topology import TopologyView

if TYPE_CHECKING:
    from preflight.tui.host import RunHost


class NodeScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("t", "topology", "topology"),
        Binding("f", "toggle_failures", "problems"),
        Binding("c", "check", "check"),
        Binding("r", "rerun", "re-run"),
    ]

    def __init__(self, name: str, *, group: str | None = None) -> None:
        super().__init__()
        self.node_name = name
        self.group = group
        self.problems_only = False
        self._rows: list[Finding] = []

    @property
    def papp(self) -> RunHost:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="node-title")
        with TabbedContent(id="node-tabs"):
            with TabPane("Findings", id="tab-findings"):
                yield DataTable(id="findings", cursor_type="row", zebra_stripes=True)
                with VerticalScroll(id="detail-box"):
                    yield FindingDetail(id="detail")
            with TabPane("Topology", id="tab-topology"):
                with VerticalScroll(id="topology-box"):
                    yield TopologyView(id="topology")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        table = self.query_one("#findings", DataTable)
        # observed/expected share what the fixed columns leave (5 columns of 2 padding, a scrollbar)
        rest = max(24, self.app.size.width - (10 + 26 + 8) - 10 - 2)
        table.add_column("status", key="status", width=10)
        table.add_column("check", key="check", width=26)
        table.add_column("subject", key="subject", width=8)
        table.add_column("observed", key="observed", width=rest // 2)
        table.add_column("expected", key="expected", width=rest - rest // 2)
        self.refresh_node()
        table.focus()

    def refresh_node(self) -> None:
        st = self.papp.state
        rep = st.reports.get(self.node_name)
        self.query_one("#node-title", Static).update(self._title(rep))
        table = self.query_one("#findings", DataTable)
        keep = table.cursor_row
        table.clear()
        findings = list(rep.findings) if rep is not None else []
        if self.problems_only:
            findings = [f for f in findings if f.status.rank >= Status.WARN.rank]
        self._rows = findings_order(findings, self.papp.groups_of, self.group)
        for i, f in enumerate(self._rows):
            table.add_row(Text(label(f.status), style=STYLE[f.status]), f.check, f.subject or "",
                          *finding_values(f), key=str(i))
        if self._rows:
            table.move_cursor(row=min(max(keep, 0), len(self._rows) - 1))
        detail = self.query_one("#detail", FindingDetail)
        if rep is not None and rep.outcome != "ok":
            detail.update(Text.assemble(unreachable_text(rep.outcome), f"  {rep.message or rep.outcome}\n",
                                        ("No facts were collected from this node, so no check could run on it.",
                                         "italic")))
        else:
            self._show_detail()
        self.query_one("#topology", TopologyView).show(st.facts.get(self.node_name))

    def _title(self, rep: NodeReport | None) -> Group:
        """One line that never wraps (cut with …), then the node's reason in at most two lines."""
        st = self.papp.state
        title = Text.assemble(("node ", "dim"), (self.node_name, "bold"), no_wrap=True, overflow="ellipsis")
        if rep is None:
            title.append(f" · {st.waiting_label(self.node_name) or 'no answer yet'}", style="italic")
            return Group(title)
        title.append(f" ({rep.address}) · ")
        if rep.outcome != "ok":
            title.append_text(unreachable_text(rep.outcome))
        else:
            title.append(label(rep.status), style=STYLE[rep.status])
        title.append(f" · {rep.coverage.text()}")
        if self.app.size.width >= 100:
            title.append(f" · answered in {rep.duration_s:.1f} s")
        if self.group:
            title.append(f" · {self.group} first", style="dim")
        if rep.status == Status.PASS and rep.outcome == "ok":
            return Group(title)
        room = 2 * max(20, self.app.size.width - 2)  # the title box is 3 rows: the reason gets two
        reason = rep.reason if len(rep.reason) <= room else rep.reason[:room - 1] + "…"
        return Group(title, Text(reason, style=STYLE[rep.status]))  # the node's one verdict, as on every surface

    def _selected(self) -> Finding | None:
        table = self.query_one("#findings", DataTable)
        if 0 <= table.cursor_row < len(self._rows):
            return self._rows[table.cursor_row]
        return None

    def _show_detail(self) -> None:
        f = self._selected()
        self.query_one("#detail", FindingDetail).show(f, self.papp.specs.get(f.check) if f else None)

    @on(DataTable.RowHighlighted, "#findings")
    def highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_detail()

    @on(DataTable.RowSelected, "#findings")
    def selected(self, _event: DataTable.RowSelected) -> None:
        self.query_one("#detail-box").focus()

    def state_changed(self, names: list[str]) -> None:
        if self.node_name in names or not names:
            self.refresh_node()

    def action_topology(self) -> None:
        tabs = self.query_one("#node-tabs", TabbedContent)
        if tabs.active == "tab-topology":
            tabs.active = "tab-findings"
            self.query_one("#findings", DataTable).focus()
        else:
            tabs.active = "tab-topology"
            self.query_one("#topology-box").focus()  # focus left in a hidden pane would switch the tab back

    def action_toggle_failures(self) -> None:
        self.problems_only = not self.problems_only
        self.refresh_node()

    def action_check(self) -> None:
        f = self._selected()
        if f is not None:
            self.papp.open_check(check_id=f.check)

    def action_rerun(self) -> None:
        self.papp.rerun_node(self.node_name)
