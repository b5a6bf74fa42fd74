"""The plan in the console: the layouts table, the memory math and launch lines of the picks, exclusions."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from preflight.plan.planner import Candidate
from preflight.plan.result import PlanResult

VERDICT_STYLE = {"safe": ("✔ safe", "green"), "risky": ("▲ risky", "yellow"), "unsafe": ("✖ unsafe", "red")}
GB = 1e9


def _gb(x: float) -> str:
    return f"{x / GB:.1f}"


def _verdict(c: Candidate) -> Text:
    word, style = VERDICT_STYLE.get(c.verdict, (c.verdict, ""))
    return Text(word + (" (est.)" if c.verdict_label.endswith("(estimated)") else ""), style=style)


def _per_seq(c: Candidate) -> str:
    v = c.estimate("decode_tokens_per_s_per_seq")
    return f"{v:.0f}" if v else "–"


def _agg(c: Candidate) -> str:
    v = c.estimate("decode_tokens_per_s_aggregate")
    return f"{v:.0f}" if v else "–"


def candidates_table(cands: list[Candidate], title: str, width: int | None = None) -> Table:
    """Narrow enough for an 80-column terminal: the memory breakdown is in the recommendation panels; under
    100 columns the nodes column goes (the recommendation names the nodes), and an empty reasons column too."""
    rows = []
    for c in cands:
        m = c.memory
        nodes = list(dict.fromkeys(c.nodes_used))
        where = nodes[0] if len(nodes) == 1 else f"{nodes[0]}+{len(nodes) - 1}"
        reasons = ", ".join(dict.fromkeys(r.code for r in c.reasons if r.severity != "info"))
        if m.verdict != "fits":
            reasons = ", ".join(x for x in (f"memory: {m.verdict}", reasons) if x)
        rows.append((c.label, str(c.gpus), escape(where), f"{_gb(m.total)}/{_gb(m.usable)}", str(m.max_seqs),
                     f"{_per_seq(c)}/{_agg(c)}", _verdict(c), reasons))
    show_nodes = width is None or width >= 100
    show_reasons = any(r[-1] for r in rows)
    t = Table(title=title, title_justify="left", pad_edge=False, show_edge=False)
    t.add_column("layout", no_wrap=True)
    t.add_column("GPUs", justify="right")
    if show_nodes:
        t.add_column("nodes", overflow="fold", max_width=10)
    t.add_column("GB/GPU", justify="right", no_wrap=True)
    t.add_column("cap", justify="right", no_wrap=True)
    t.add_column("tok/s*", justify="right", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    if show_reasons:
        t.add_column("reasons", overflow="fold", ratio=1)
    for r in rows:
        cells = [*r[:2], *((r[2],) if show_nodes else ()), *r[3:7], *((r[7],) if show_reasons else ())]
        t.add_row(*cells)
    return t


def reasons_legend(cands: list[Candidate]) -> list[str]:
    """One line per reason code in the shown rows: its text and the fact it came from (first occurrence)."""
    seen: dict[str, str] = {}
    for c in cands:
        for r in c.reasons:
            if r.severity != "info" and r.code not in seen:
                seen[r.code] = f"  {r.code} ({r.severity}): {escape(r.text)} [dim]— {escape(r.fact_source)}[/]"
    return list(seen.values())


def render(result: PlanResult, console: Console, *, show_all: bool = False, limit: int = 15) -> None:
    p = result.plan
    m, o = p.model, p.options
    console.print(f"[bold]Plan for {escape(m.id)}[/] ({escape(m.source)}; {m.params / 1e9:.1f} B params) on {escape(result.source)}: "
                  f"weights {o.weight_dtype}, KV cache {o.kv_dtype}, context {o.context}, {o.seqs} sequences, "
                  f"gpu_memory_utilization {o.gpu_memory_utilization:g}")
    if p.excluded:
        t = Table(title="excluded nodes (failing checks or unreachable)", title_justify="left")
        t.add_column("node")
        t.add_column("why", overflow="fold")
        for node, why in p.excluded:
            t.add_row(escape(node), escape(why))
        console.print(t)
    usable = [c for c in p.candidates if c.verdict != "unsafe"]
    unsafe = [c for c in p.candidates if c.verdict == "unsafe"]
    order = {id(c): i for i, c in enumerate(p.recommend_throughput)}
    usable.sort(key=lambda c: (c.verdict != "safe", order.get(id(c), 10**6), -c.gpus))
    shown = usable if show_all else usable[:limit]
    console.print(candidates_table(shown, f"layouts that can run ({len(usable)}; safe first, best throughput first)",
                                   console.width))
    for line in reasons_legend(shown):
        console.print(line)
    if len(shown) < len(usable):
        console.print(f"[dim]… {len(usable) - len(shown)} more (use --all)[/]")
    if show_all:
        console.print(candidates_table(unsafe, f"unsafe layouts ({len(unsafe)})", console.width))
        for line in reasons_legend(unsafe):
            console.print(line)
    elif unsafe:
        codes = Counter(r.code for c in unsafe for r in c.reasons if r.severity == "unsafe")
        console.print(f"[dim]{len(unsafe)} unsafe layouts not shown (--all lists them): "
                      + ", ".join(f"{k} ×{v}" for k, v in codes.most_common()) + "[/]")
    _recommendations(result, console)
    if not p.recommend_throughput:
        _guidance(result, console)
    if result.what_if:
        t = Table(title="what the excluded nodes would cost (layouts unsafe only because of them)", title_justify="left")
        for col in ("with node", "layout", "why unsafe", "safe on the healthy nodes"):
            t.add_column(col, overflow="fold")
        for w in result.what_if:
            t.add_row(escape(", ".join(w.included)), w.candidate.label,
                      escape("; ".join(f"{r.text} ({r.fact_source})" for r in w.candidate.reasons if r.severity == "unsafe")),
                      w.safe_instead.label if w.safe_instead else "–")
        console.print(t)
    console.print("[dim]GB/GPU: needed / usable on the heaviest stage; cap: full-context sequences that fit "
                  "(capacity); (est.): safe on a link-rate estimate of the fabric, not a measurement; "
                  "tok/s*: decode tokens/s per sequence / all sequences. * estimates, not measurements: "
                  + "; ".join(p.notes) + "[/]")


def _picks(result: PlanResult) -> list[tuple[str, Candidate]]:
    """(title, layout) per objective shown; objectives that pick the same layout share one entry."""
    p = result.plan
    kinds = [p.options.objective] if p.options.objective else ["latency", "throughput"]
    out: list[tuple[list[str], Candidate]] = []
    for kind in kinds:
        picks = p.recommended(kind)
        if not picks:
            continue
        same = next((o for o in out if o[1] is picks[0]), None)
        if same:
            same[0].append(kind)
        else:
            out.append(([kind], picks[0]))
    return [(" and ".join(k), c) for k, c in out]


def _panel(c: Candidate, title: str, console: Console) -> None:
    where = ", ".join(f"{pl.node} (GPUs {pl.cuda_visible_devices})" for pl in c.placement[:4])
    if len(c.placement) > 4:
        where += f" … +{len(c.placement) - 4} nodes"
    body = [f"[bold]{c.label}[/] {escape(c.verdict_label)} on {escape(where)}; capacity {c.capacity} full-context sequences"]
    body += [f"  {escape(f)}" for f in c.memory.formulas]
    body += [f"  {e.name}: {e.value:.4g} {e.unit}  [dim]({e.kind}: {escape(e.formula)})[/]"
             for e in c.estimates if e.value is not None]
    body += [f"  reason ({r.severity}): {escape(r.text)} [dim]({escape(r.fact_source)})[/]" for r in c.reasons]
    console.print(Panel("\n".join(body), title=title, title_align="left", expand=True))


def _recommendations(result: PlanResult, console: Console) -> None:
    p = result.plan
    picks = _picks(result)
    if not picks:
        wanted = p.options.objective or "latency or throughput"
        console.print(f"[bold red]no safe layout for {wanted}[/]")
        return
    for title, c in picks:
        _panel(c, f"recommended for {title}", console)
        kind = title.split(" and ")[0]
        for lc in result.launch.get(kind, ()):  # unwrapped, so a command copies as one line
            console.print(f"[bold]{lc.engine}[/] ({title}, {c.label}):")
            for step in lc.steps:
                console.print(f"  # on {escape(step.node)}", style="dim")
                console.print("  " + escape(step.command), soft_wrap=True)
            for n in lc.notes:
                console.print(f"  [dim]note: {escape(n)}[/]", soft_wrap=True)


def _guidance(result: PlanResult, console: Console) -> None:
    """Nothing safe: the smallest changes that would fix it, then the best risky layout with its risks."""
    if result.guidance:
        console.print("[bold]what would make a layout fit or be safe[/] (each: the plan computed again with that change)")
        for h in result.guidance:
            lead = "" if h.change == "(fact)" else f"[bold]{escape(h.change)}[/]: "
            console.print(f"  {lead}{escape(h.result)}" + (f" [dim]({escape(h.formula)})[/]" if h.formula else ""),
                          soft_wrap=True)
    if result.plan.best_risky:
        _panel(result.plan.best_risky[0], "best risky layout (not safe: see its risky reasons)", console)
