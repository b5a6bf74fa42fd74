"""The plan screen: which TP/PP/DP/EP layouts the healthy nodes can run, for a model chosen here.

Changing the model, context, sequences or weight precision re-plans in a worker (debounced);
`y` copies the selected layout's vLLM launch lines to the clipboard and shows them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Group, RenderableType
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import DataTable, Footer, Input, Select, Static

from preflight.plan.dtypes import WEIGHT_DTYPES
from preflight.plan.errors import PlanError
from preflight.plan.launch import launch_commands
from preflight.plan.models import ModelSpec, catalog, load_model
from preflight.plan.planner import Candidate
from preflight.plan.shapes import PlanOptions

if TYPE_CHECKING:
    from preflight.plan.result import PlanResult
    from preflight.tui.host import RunHost

DEFAULT_MODEL = "meta-llama/Llama-3.1-70B"
VERDICT = {"safe": ("✔ safe", "green"), "risky": ("▲ risky", "bold yellow"), "unsafe": ("✖ unsafe", "bold red")}
GB = 1e9


def ordered(result: PlanResult) -> list[Candidate]:
    """Safe first, best throughput first; then risky; unsafe last (they stay, with their reasons)."""
    p = result.plan
    order = {id(c): i for i, c in enumerate(p.recommend_throughput)}
    rank = {"safe": 0, "risky": 1, "unsafe": 2}
    return sorted(p.candidates, key=lambda c: (rank.get(c.verdict, 3), order.get(id(c), 10**6), -c.gpus, c.label))


def launch_text(c: Candidate, model: ModelSpec, opts: PlanOptions) -> str:
    """The vLLM lines of a layout, one per node, each preceded by where it runs."""
    vllm = launch_commands(c, model.id, opts, mla=model.attention == "mla")[0]
    lines = []
    for step in vllm.steps:
        lines.append(f"# on {step.node}")
        lines.append(step.command)
    return "\n".join(lines)


class PlanScreen(Screen[None]):
    BINDINGS = [
        Binding("escape", "app.pop_screen", "back"),
        Binding("y", "copy_launch", "copy launch cmd"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.result: PlanResult | None = None
        self.error: str | None = None
        self.model: ModelSpec | None = None
        self.opts = PlanOptions(context=8192, seqs=16)
        self._rows: list[Candidate] = []
        self._timer: Timer | None = None
        self.computations = 0
        self.last_copied: str | None = None
        self._requested: tuple[str, PlanOptions] | None = None
        self.wide = True

    @property
    def papp(self) -> RunHost:
        return self.app  # type: ignore[return-value]

    def _model_choices(self) -> tuple[list[tuple[str, str]], str]:
        choices = [(m.short_name, m.id) for m in catalog()]
        wanted = self.papp.model_name
        value = DEFAULT_MODEL
        if wanted:
            try:
                spec = load_model(wanted)
            except PlanError as exc:
                self.notify(str(exc), severity="error")
            else:
                value = spec.id
                if spec.id not in {c[1] for c in choices}:
                    choices.insert(0, (spec.short_name, wanted))
                    value = wanted
        return choices, value

    def compose(self) -> ComposeResult:
        choices, value = self._model_choices()
        yield Static(id="plan-title")
        with Horizontal(id="plan-inputs"):
            sel = Select(choices, value=value, allow_blank=False, id="model")
            sel.border_title = "model"
            yield sel
            ctx = Input(str(self.opts.context), type="integer", id="context")
            ctx.border_title = "context"
            yield ctx
            seqs = Input(str(self.opts.seqs), type="integer", id="seqs")
            seqs.border_title = "seqs"
            yield seqs
            w = Select([(d, d) for d in WEIGHT_DTYPES], value="bf16", allow_blank=False, id="weights")
            w.border_title = "weights"
            yield w
        yield DataTable(id="candidates", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="plan-detail-box"):
            yield Static(id="plan-detail")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        t = self.query_one("#candidates", DataTable)
        cols = [("layout", "layout", 15), ("verdict", "verdict", 9), ("gpus", "GPUs", 4), ("mem", "GB/GPU", 9),
                ("seqs", "seqs", 5), ("tok", "tok/s*", 9)]
        self.wide = self.app.size.width >= 100  # narrower: the nodes column goes (the detail names them)
        if self.wide:
            cols.append(("nodes", "nodes", 14))
        used = sum(w + 2 for _k, _l, w in cols) + 2 + 2  # cell padding, the reasons column's own, a scrollbar
        cols.append(("reasons", "reasons", max(12, self.app.size.width - used)))
        for key, lab, width in cols:
            t.add_column(lab, key=key, width=width)
        self.replan()
        t.focus()

    # ----- inputs
    def _read_inputs(self) -> tuple[str, PlanOptions] | str:
        model = self.query_one("#model", Select).value
        weights = self.query_one("#weights", Select).value
        try:
            context = int(self.query_one("#context", Input).value or "0")
            seqs = int(self.query_one("#seqs", Input).value or "0")
        except ValueError:
            return "context and seqs must be whole numbers"
        if context <= 0 or seqs <= 0:
            return "context and seqs must be positive"
        return str(model), PlanOptions(weight_dtype=str(weights), kv_dtype=self.opts.kv_dtype, context=context,
                                       seqs=seqs, gpu_memory_utilization=self.opts.gpu_memory_utilization)

    @on(Select.Changed)
    @on(Input.Changed)
    def inputs_changed(self, _event: Any) -> None:
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.25, self.replan)

    @on(Input.Submitted)
    def inputs_submitted(self, _event: Input.Submitted) -> None:
        self.replan()
        self.query_one("#candidates", DataTable).focus()

    def replan(self) -> None:
        read = self._read_inputs()
        if isinstance(read, str):
            self.error = read
            self._requested = None
            self._show_plan()
            return
        model, opts = read
        if (model, opts) == self._requested:
            return  # (the inputs post Changed when they mount: nothing to re-plan)
        self._requested = (model, opts)
        self.compute(model, opts)

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False, description="plan")
    def compute(self, model_name: str, opts: PlanOptions) -> None:
        from preflight.plan.result import build_plan

        st = self.papp.state
        try:
            model = load_model(model_name)
            result = build_plan(st.run_report(), st.fleet_facts(), model, opts, source=self.papp.source.label)
            error = None
        except PlanError as exc:
            model, result, error = None, None, str(exc)
        self.app.call_from_thread(self._computed, model, opts, result, error)

    def _computed(self, model: ModelSpec | None, opts: PlanOptions, result: PlanResult | None, error: str | None) -> None:
        self.computations += 1
        self.model, self.opts, self.result, self.error = model, opts, result, error
        self._show_plan()

    # ----- output
    def _show_plan(self) -> None:
        title = self.query_one("#plan-title", Static)
        table = self.query_one("#candidates", DataTable)
        table.clear()
        self._rows = []
        if self.error or self.result is None:
            title.update(Text(f"no plan: {self.error or 'computing…'}", style="bold red" if self.error else "italic"))
            self.query_one("#plan-detail", Static).update("")
            return
        p = self.result.plan
        safe = sum(1 for c in p.candidates if c.verdict == "safe")
        head = Text.assemble(("Plan ", "bold"), (p.model.id, "bold"), f" · {p.model.params / 1e9:.1f} B params · ",
                             f"{len(p.candidates)} layouts, ", (f"{safe} safe", "green" if safe else "bold red"))
        if not p.recommend_throughput:
            head.append(" · no safe layout: see the reasons", style="bold red")
        if p.excluded:
            head.append("\nexcluded: " + ", ".join(n for n, _ in p.excluded) + " (failing checks)", style="dim")
        title.update(head)
        self._rows = ordered(self.result)
        for i, c in enumerate(self._rows):
            word, style = VERDICT.get(c.verdict, (c.verdict, ""))
            nodes = list(dict.fromkeys(c.nodes_used))
            where = nodes[0] if len(nodes) == 1 else f"{nodes[0]}+{len(nodes) - 1}"
            reasons = ", ".join(dict.fromkeys(r.code for r in c.reasons if r.severity != "info"))
            if c.memory.verdict != "fits":
                reasons = ", ".join(x for x in (f"memory: {c.memory.verdict}", reasons) if x)
            per_seq = c.estimate("decode_tokens_per_s_per_seq")
            agg = c.estimate("decode_tokens_per_s_aggregate")
            tok = f"{per_seq:.0f}/{agg:.0f}" if per_seq and agg else "–"
            cells: list[Any] = [c.label, Text(word, style=style), str(c.gpus),
                                f"{c.memory.total / GB:.1f}/{c.memory.usable / GB:.1f}", str(c.memory.max_seqs), tok]
            table.add_row(*cells, *([where] if self.wide else []), reasons or "—", key=str(i))
        if self._rows:
            table.move_cursor(row=0)
        self._show_selected()

    def selected(self) -> Candidate | None:
        table = self.query_one("#candidates", DataTable)
        if 0 <= table.cursor_row < len(self._rows):
            return self._rows[table.cursor_row]
        return None

    def _detail(self, c: Candidate) -> RenderableType:
        word, style = VERDICT.get(c.verdict, (c.verdict, ""))
        where = ", ".join(f"{pl.node} (GPUs {pl.cuda_visible_devices})" for pl in c.placement)
        parts: list[RenderableType] = [Text.assemble((c.label, "bold"), " ", (word, style), f" on {where or '—'}")]
        parts += [Text("  " + f) for f in c.memory.formulas]
        parts += [Text(f"  {e.name}: {e.value:.4g} {e.unit} ({e.kind}: {e.formula})", style="dim")
                  for e in c.estimates if e.value is not None]
        for r in c.reasons:
            parts.append(Text.assemble((f"  {r.severity}: ", "bold red" if r.severity == "unsafe" else "bold"),
                                       r.text, (f" ({r.fact_source})", "dim")))
        if self.model is not None and c.verdict != "unsafe" and c.memory.verdict != "does-not-fit":
            parts.append(Text("vLLM launch (y copies it):", style="bold"))
            parts.append(Text(launch_text(c, self.model, self.opts), style="cyan"))
        return Group(*parts)

    def _show_selected(self) -> None:
        c = self.selected()
        box = self.query_one("#plan-detail", Static)
        box.update(self._detail(c) if c is not None else Text("no layout", style="italic"))

    @on(DataTable.RowHighlighted, "#candidates")
    def highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_selected()

    def action_copy_launch(self) -> None:
        c = self.selected()
        if c is None or self.model is None:
            self.notify("no layout selected", severity="warning")
            return
        text = launch_text(c, self.model, self.opts)
        self.app.copy_to_clipboard(text)
        self.last_copied = text
        note = "" if c.verdict == "safe" else f" (careful: this layout is {c.verdict})"
        self.notify(text, title=f"copied: {c.label} vLLM launch{note}", timeout=8)
        box = self.query_one("#plan-detail", Static)
        box.update(Group(Text(f"copied to the clipboard ({c.label}):", style="bold"), Text(text, style="cyan"),
                         Text(""), self._detail(c)))

    def state_changed(self, names: list[str]) -> None:
        self._requested = None  # the fleet changed: the same inputs give a new plan
        if self._timer is not None:
            self._timer.stop()
        self._timer = self.set_timer(0.5, self.replan)
