"""The hang screen's panes as text: one cause in full, NCCL RAS, IB / NIC, the jobs of an analyze, next commands.

Every cause renders the same way (score, kind, rank, node, the ranks it covers, its evidence lines, its next
command), so a cause of a kind this module has never heard of shows in full without a change here. The RAS and
IB panes gather causes by kind prefix (FAMILIES); a new kind with one of those prefixes lands there too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from preflight.hang.verdict_types import ranks_text

FAMILIES: dict[str, tuple[str, ...]] = {
    "ras": ("ras_", "live_ras"),
    "ib": ("live_ib", "ib_", "mlxlink", "link_", "mlx5", "network", "socket_fallback"),
}
MAX_RANKS_NAMED = 12


def family(kind: str, name: str) -> bool:
    return kind.startswith(FAMILIES[name])


def cause_head(i: int, c: Any) -> str:
    return f"{'CULPRIT' if i == 0 else f'#{i + 1}'} {c.score:.2f}  {c.title}"


def render_cause(i: int, c: Any, rank_nodes: dict[int, str]) -> RenderableType:
    """Any cause in full: what it is, where, which ranks, the lines it rests on, what to run."""
    where = " · ".join(x for x in (f"rank {c.rank}" if c.rank is not None else "", c.node or "",
                                   f"job {c.job}" if getattr(c, "job", None) is not None else "") if x)
    head = Text.assemble(("CULPRIT" if i == 0 else f"#{i + 1}", "bold red" if i == 0 else "bold"),
                         f" score {c.score:.2f} · {c.kind or 'cause'}" + (f" · {where}" if where else ""))
    parts: list[RenderableType] = [head, Text(c.title)]
    covered = tuple(getattr(c, "ranks", ()) or ())
    if len(covered) > 1:
        parts.append(Text(f"covers {ranks_text(covered)}" + _where(c, covered, rank_nodes), style="dim"))
    parts += [Text(f"│ {e}", style="cyan") for e in c.evidence]
    parts.append(Text.assemble(("next: ", "bold"), c.next_command))
    return Group(*parts)


def _where(c: Any, covered: tuple[int, ...], rank_nodes: dict[int, str]) -> str:
    """Where a cause's ranks run. RAS numbers ranks within a communicator (a TP group's rank 3 is not global
    rank 3) and names its own node, so its ranks are never looked up in the job's rank table; nor are ranks
    the table does not hold all of."""
    if family(c.kind, "ras") or not all(r in rank_nodes for r in covered):
        return f" on {c.node}" if c.node else ""
    return _nodes_of(covered, rank_nodes)


def _nodes_of(ranks: Iterable[int], rank_nodes: dict[int, str]) -> str:
    """' on gpu-01 (ranks 0, 2), gpu-02 (rank 5)' when the ranks' nodes are known."""
    by_node: dict[str, list[int]] = {}
    for r in ranks:
        if r in rank_nodes:
            by_node.setdefault(rank_nodes[r], []).append(r)
    if not by_node:
        return ""
    if len(by_node) == 1:
        return f" on {next(iter(by_node))}"
    return " on " + ", ".join(f"{n} ({ranks_text(rs)})" for n, rs in sorted(by_node.items()))


def _family_causes(verdict: Any, name: str) -> list[tuple[int, Any]]:
    return [(i, c) for i, c in enumerate(verdict.causes) if family(c.kind, name)]


def render_ras(result: Any, rank_nodes: dict[int, str]) -> RenderableType:
    """NCCL's own view: ranks missing, dead or behind, and their nodes; what was asked, or why not."""
    v = result.verdict
    parts: list[RenderableType] = [Text("NCCL RAS: ranks missing or behind in NCCL's own count", style="bold")]
    for i, c in _family_causes(v, "ras"):
        label = {"ras_mismatch": "behind", "ras_incomplete": "no data from", "ras_dead": "dead"}.get(c.kind, c.kind)
        covered = tuple(c.ranks) or ((c.rank,) if c.rank is not None else ())
        line = (f"{label}: {ranks_text(covered)}{_where(c, covered, rank_nodes)}" if covered
                else f"{label}: {c.node or 'node unknown'}")
        parts.append(Text.assemble(("✖ ", "red"), line))
        parts.append(render_cause(i, c, rank_nodes))
    notes = [n for n in getattr(result, "notes", ()) if "ncclras" in n or "RAS" in n]
    notes += [f"{f.path}: {f.note}" for f in v.files if "ncclras" in f.kinds and f.note]
    parts += [Text(f"note: {n}", style="dim") for n in notes]
    if len(parts) == 1:
        parts.append(Text("no RAS report in these inputs", style="italic"))
        parts += [Text(f"next: {s}") for s in v.next_commands if "ncclras" in s]
    return Group(*parts)


def render_ib(result: Any, rank_nodes: dict[int, str]) -> RenderableType:
    """IB counter rates, links down, ports idle, NIC (mlx5) health lines: each cause with its lines."""
    v = result.verdict
    parts: list[RenderableType] = [Text("IB ports and NICs: counter rates, links, mlx5 health", style="bold")]
    order = FAMILIES["ib"]  # counter rates and links first (short lines), then NIC health, then the network choice
    found = sorted(_family_causes(v, "ib"), key=lambda ic: (next(n for n, p in enumerate(order) if ic[1].kind.startswith(p)), ic[0]))
    for i, c in found:
        parts.append(render_cause(i, c, rank_nodes))
    if len(parts) == 1:
        parts.append(Text("no IB port error rising, link down, idle port or mlx5 health line in these inputs",
                          style="italic"))
        parts += [Text(f"next: {s}") for s in v.next_commands if "--sweeps" in s or "mlx5" in s]
    return Group(*parts)


def render_jobs(verdict: Any) -> RenderableType:
    """How `preflight analyze` split its inputs: each job's files, what tells it apart, its culprit."""
    jobs = verdict.jobs
    if not jobs:
        return Text("one job: a live gather is never split", style="italic")
    head = f"{len(jobs)} job(s) in these inputs, judged apart" if len(jobs) > 1 else "one job in these inputs"
    parts: list[RenderableType] = [Text(head, style="bold")]
    for j in jobs:
        culprit = j.verdict.culprit
        parts.append(Text.assemble((f"job {j.index}", "bold"), f" · {len(j.files)} file(s) · ",
                                   j.description or "no host, version or communicator printed"))
        if j.why:
            parts.append(Text(f"  together by {', '.join(j.why[:3])}", style="dim"))
        parts.append(Text(f"  {'culprit: ' + culprit.title if culprit else 'no likely cause'}",
                          style="red" if culprit else "italic"))
    return Group(*parts)


def _numbered(steps: Iterable[str]) -> Table:
    """'1. step' rows whose wrapped lines hang under the text, not under the number."""
    grid = Table.grid(padding=(0, 1))
    grid.add_column(justify="right")
    grid.add_column(overflow="fold")
    for i, step in enumerate(steps, 1):
        grid.add_row(f"{i}.", step)
    return grid


def render_next(verdict: Any, notes: Iterable[str] = ()) -> RenderableType:
    """What to run next: the no-cause steps in order, else each cause's own next command; then the gather's
    notes (what RAS said or why it was not asked, the --dump-fr outcomes), which are no cause but are facts."""
    if verdict.next_commands:
        parts: list[RenderableType] = [Text("no likely cause: run these, in order", style="bold"),
                                       _numbered(verdict.next_commands)]
    else:
        steps = list(dict.fromkeys(c.next_command for c in verdict.causes))
        parts = [Text("each cause's next command, culprit first", style="bold")] if steps else [
            Text("nothing to suggest", style="italic")]
        parts += [_numbered(steps[:12])] if steps else []
    shown = list(dict.fromkeys(notes))
    if shown:
        parts.append(Text("notes", style="bold"))
        parts += [Text(f"· {n}", style="dim") for n in shown]
    return Group(*parts)
