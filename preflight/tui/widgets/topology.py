"""The GPU topology of one node drawn as a matrix: link type per GPU pair, NVLinks up, nearest NICs."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from preflight.facts import NodeFacts

LEGEND = ("NV#: # NVLinks · PIX/PXB: via PCIe switch(es) · PHB: host bridge · NODE: same NUMA node · "
          "SYS: across sockets · X: self. ! marks a pair unlike the rest of this node; "
          "✖ a GPU with inactive NVLinks.")


def _gpu_pairs(facts: NodeFacts) -> tuple[list[str], dict[tuple[str, str], str], Any]:
    topo = facts.topology
    if topo is None:
        return [], {}, None
    m = topo.matrix
    if m is not None and getattr(m, "rows", None):
        gpus = [r for r in m.rows if r.startswith("GPU")]
        return gpus, dict(m.links), m
    n = topo.gpu_count
    gpus = [f"GPU{i}" for i in range(n)]
    links: dict[tuple[str, str], str] = {}
    for (i, j), v in topo.links.items():
        links[(f"GPU{i}", f"GPU{j}")] = v
        links[(f"GPU{j}", f"GPU{i}")] = v
    return gpus, links, None


def render_topology(facts: NodeFacts | None) -> RenderableType:
    if facts is None:
        return Text("no facts for this node (not reached, or not judged yet)", style="italic")
    gpus, links, matrix = _gpu_pairs(facts)
    if not gpus:
        why = facts.missing.get("topology", "not collected")
        return Text(f"no topology facts: {why}", style="italic")
    usual = Counter(links.get((a, b), "?") for a in gpus for b in gpus if a != b).most_common(1)[0][0]
    nvl = {f.gpu_index: f for f in (facts.nvlink or ())}
    t = Table(title=f"{facts.name}: GPU topology (nvidia-smi topo -m)", title_justify="left", box=None,
              padding=(0, 1, 0, 0), pad_edge=False, header_style="bold underline")
    t.add_column("", no_wrap=True)
    for g in gpus:
        t.add_column(g.replace("GPU", "G"), justify="center", no_wrap=True)
    t.add_column("NVLink", justify="right", no_wrap=True)
    t.add_column("near NIC", no_wrap=True)
    t.add_column("NUMA", justify="right", no_wrap=True)
    for a in gpus:
        cells: list[Text] = []
        for b in gpus:
            v = links.get((a, b), "?") if a != b else "X"
            if a == b:
                cells.append(Text("X", style="dim"))
            elif v != usual:
                cells.append(Text(v + "!", style="bold red"))
            else:
                cells.append(Text(v))
        idx = int(a[3:]) if a[3:].isdigit() else -1
        nv = nvl.get(idx)
        if nv is None:
            nv_cell = Text("—", style="dim")
        elif nv.active < nv.total:
            nv_cell = Text(f"✖ {nv.active}/{nv.total}", style="bold red")
        else:
            nv_cell = Text(f"{nv.active}/{nv.total}")
        near = ""
        numa = ""
        if matrix is not None:
            near = ",".join(c for c in matrix.columns if c.startswith(("NIC", "mlx")) and matrix.links.get((a, c)) in ("PIX", "PXB"))
            names = getattr(matrix, "nic_names", {}) or {}
            near = ",".join(names.get(c, c) for c in near.split(",") if c) if near else "—"
            numa = str((getattr(matrix, "numa_affinity", {}) or {}).get(a, ""))
        t.add_row(Text(a, style="bold"), *cells, nv_cell, Text(near or "—"), Text(numa or "—"))
    parts: list[RenderableType] = [t, Text(LEGEND, style="dim")]
    down = [f for f in (facts.nvlink or ()) if f.active < f.total]
    for f in down:
        inactive = ", ".join(map(str, f.inactive_links)) or "?"
        parts.append(Text(f"GPU{f.gpu_index}: {f.active} of {f.total} NVLinks active (inactive: {inactive})",
                          style="bold red"))
        parts.extend(Text("  │ " + e, style="cyan") for e in f.evidence[:4])
    if facts.topology is not None and facts.topology.fragment:
        parts.append(Text("the topology output was a fragment: some rows were missing", style="yellow"))
    return Group(*parts)


class TopologyView(Static):
    """Shows `render_topology(facts)`; set `.facts` to redraw."""

    def show(self, facts: NodeFacts | None) -> None:
        self.update(render_topology(facts))
