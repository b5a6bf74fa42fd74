"""Parser for `nvidia-smi topo -m`: the GPU/NIC connection matrix, affinities and NIC legend.

Real outputs vary: tabs or spaces, indented (pasted through a pager), cells glued together
(`SYSSYS`, `NODEPXB`, header `NIC8NIC9`), named NIC columns (`mlx5_10`) on older drivers,
fragments without a header row, and a `topo -p2p` matrix appended. Nothing is guessed: a headerless
fragment's GPU/NIC split is read from a `NICn` row's `X` cell (the only cell that proves it), else only the
columns proven to be GPUs are kept; what the output did not show is named in `partial`. A matrix that
contradicts itself (an `X` off its own column, an NV# cell between a GPU and a NIC) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from preflight.facts import P2P_STATUS, TopologyFacts  # (the P2P legend lives with the facts, shared with the checks)
from preflight.parse.common import Unparseable, is_probably_text

LINK = r"X|NV\d+|PIX|PXB|PHB|NODE|SYS|SOC"
_LINK_RUN = re.compile(rf"^(?:{LINK})+$")
_LINK_ONE = re.compile(LINK)
_DEVICE = r"GPU\d+|NIC\d+|mlx\d+_\d+|hfi\d+_\d+|bnxt_re\d+|irdma\d+|ib\d+"
_HEADER_TOKEN = re.compile(rf"({_DEVICE}|CPU Affinity|NUMA Affinity|GPU NUMA ID)")
_ROW = re.compile(rf"^\s*({_DEVICE})\s+(.*)$")
# nearest first: what "close" means for a GPU and a NIC
LINK_RANK = {"X": 0, "PIX": 1, "PXB": 2, "PHB": 3, "NODE": 4, "SYS": 5, "SOC": 5}


@dataclass(frozen=True)
class TopoMatrix:
    """`nvidia-smi topo -m`: link type per device pair, affinities, NIC legend.

    `partial` names what the output did not show (no header row, rows cut off, GPU rows missing): a pair
    absent from `links` is then unknown, never "no link". `fragment` is `partial is not None`.
    """
    columns: tuple[str, ...]
    rows: tuple[str, ...]
    links: dict[tuple[str, str], str]  # (row device, column device) -> "NV18" / "PIX" / ...
    cpu_affinity: dict[str, str] = field(default_factory=dict)
    numa_affinity: dict[str, str] = field(default_factory=dict)
    gpu_numa_id: dict[str, str] = field(default_factory=dict)
    nic_names: dict[str, str] = field(default_factory=dict)  # NIC0 -> mlx5_0 (from "NIC Legend")
    fragment: bool = False
    notes: tuple[str, ...] = ()
    raw_rows: dict[str, str] = field(default_factory=dict)
    missing: dict[str, str] = field(default_factory=dict)  # "GPU0 NUMA Affinity" -> "na"
    partial: str | None = None  # what could not be seen, e.g. "no rows for GPU6, GPU7"

    @property
    def gpus(self) -> tuple[str, ...]:
        names = {c for c in self.columns if c.startswith("GPU")} | {r for r in self.rows if r.startswith("GPU")}
        return tuple(sorted(names, key=lambda s: int(s[3:])))

    @property
    def nics(self) -> tuple[str, ...]:
        return tuple(c for c in self.columns if not c.startswith("GPU"))

    def link(self, a: str, b: str) -> str | None:
        return self.links.get((a, b)) or self.links.get((b, a))

    def nvlink_count(self, a: str, b: str) -> int | None:
        """Bonded NVLinks between two GPUs (NV18 -> 18), 0 for a PCIe path, None if unknown."""
        kind = self.link(a, b)
        if kind is None:
            return None
        return int(kind[2:]) if kind.startswith("NV") else 0

    def gpu_pairs(self) -> dict[tuple[int, int], str]:
        out: dict[tuple[int, int], str] = {}
        gpus = self.gpus
        for i, a in enumerate(gpus):
            for b in gpus[i + 1:]:
                kind = self.link(a, b)
                if kind is not None:
                    out[(int(a[3:]), int(b[3:]))] = kind
        return out

    def nvlink_domain_size(self) -> int:
        """Largest set of GPUs in which every pair is joined by NVLink (1 when none; 0 when no GPU↔GPU cell is known)."""
        pairs = self.gpu_pairs()
        if not pairs:
            return 0 if len(self.gpus) > 1 else len(self.gpus)
        return len(self.nvlink_clique())

    def nvlink_clique(self) -> list[int]:
        """The GPUs of the largest all-NVLink set, in index order (one GPU, or none, without NVLink)."""
        pairs = self.gpu_pairs()
        gpus = sorted({i for p in pairs for i in p} | {int(g[3:]) for g in self.gpus})
        best: list[int] = gpus[:1]
        # in a truncated matrix a pair with no row either way is unknown: counted as NVLink (an upper bound)
        unknown = "NV?" if self.fragment else ""
        # greedy clique growth is exact for the uniform (all-to-all or pairwise bridge) layouts seen in practice
        for start in gpus:
            clique = [start]
            for g in gpus:
                kinds = [pairs.get((min(g, c), max(g, c)), unknown) for c in clique]
                if g != start and all(k.startswith("NV") for k in kinds) and any(k != "NV?" for k in kinds):
                    clique.append(g)
            if len(clique) > len(best):
                best = sorted(clique)
        return best

    def unknown_nic_cells(self, gpu: str) -> tuple[str, ...]:
        """NIC columns whose link to `gpu` the output did not show (a cut-off row, a missing GPU row)."""
        return tuple(self.nic_names.get(n, n) for n in self.nics if self.link(gpu, n) is None)

    def gpu_nic_affinity(self) -> dict[str, tuple[str, str]]:
        """Nearest NIC of each GPU and the link type to it (PIX best, SYS worst)."""
        out: dict[str, tuple[str, str]] = {}
        for g in self.gpus:
            best: tuple[int, str, str] | None = None
            for n in self.nics:
                kind = self.link(g, n)
                if kind is None:
                    continue
                rank = LINK_RANK.get(kind, 9)
                if best is None or rank < best[0]:
                    best = (rank, n, kind)
            if best:
                out[g] = (self.nic_names.get(best[1], best[1]), best[2])
        return out


def _split_cells(tokens: list[str], limit: int | None) -> tuple[list[str], list[str]]:
    """Leading link cells (glued ones split) and the remaining tokens."""
    cells: list[str] = []
    i = 0
    while i < len(tokens) and (limit is None or len(cells) < limit):
        tok = tokens[i]
        if not _LINK_RUN.match(tok):
            break
        parts = _LINK_ONE.findall(tok)
        if limit is not None and len(cells) + len(parts) > limit:
            break
        cells.extend(parts)
        i += 1
    return cells, tokens[i:]


def _is_header(line: str) -> bool:
    """A header names devices: `GPU0 GPU1 ... NIC0 CPU Affinity`, never a link cell after the first name."""
    tokens = line.split()
    if len(tokens) < 2 or not re.match(rf"^(?:{_DEVICE})", tokens[0]):
        return False
    return bool(re.match(rf"^(?:{_DEVICE})", tokens[1])) or tokens[1] in ("CPU", "NUMA")


def _device_number(label: str) -> int:
    return int(re.sub(r"\D", "", label))


def _headerless_columns(pending: list[tuple[str, list[str], str]]) -> tuple[list[str], str] | Unparseable:
    """Columns of a headerless fragment, from what the rows prove, and the note that says how.

    A `NICj` row's `X` cell sits in column `ngpu + j`: that fixes the GPU/NIC split. Without such a row only
    a lower bound is known (a GPU row's own `X`, its last NV# cell: NVLink joins GPUs only); the columns
    past it may be GPUs or NICs, so they are not read.
    """
    cells = {label: _split_cells(toks, None)[0] for label, toks, _ in pending}
    width = max(len(c) for c in cells.values())
    lower, splits = 0, {}
    for label, row in cells.items():
        nv = [i for i, c in enumerate(row) if c.startswith("NV")]
        if label.startswith("GPU"):
            own = _device_number(label)
            if "X" in row and row.index("X") != own:
                return Unparseable.of(f"row {label} has its X cell in column {row.index('X')}, not {own}: "
                                      "columns misaligned", "\n".join(line for _, _, line in pending))
            lower = max([lower, own + 1] + [i + 1 for i in nv])
        elif nv:
            return Unparseable.of(f"row {label} has an {row[nv[0]]} cell: NVLink joins GPUs only, "
                                  "columns misaligned", "\n".join(line for _, _, line in pending))
        elif label.startswith("NIC") and "X" in row:
            splits[label] = row.index("X") - _device_number(label)
    if len(set(splits.values())) > 1:
        told = ", ".join(f"{k} -> {v}" for k, v in sorted(splits.items()))
        return Unparseable.of(f"no header row and the NIC rows disagree on the number of GPU columns ({told})",
                              "\n".join(line for _, _, line in pending))
    if splits:
        ngpu = next(iter(splits.values()))
        if ngpu < lower or ngpu > width:
            return Unparseable.of(f"no header row: the X of {min(splits)} puts {ngpu} GPU columns, but the GPU rows "
                                  f"show at least {lower} (of {width} cells)",
                                  "\n".join(line for _, _, line in pending))
        how = f"no header row: {ngpu} GPUs and {width - ngpu} NICs, from the X cell of {min(splits)}"
        return [f"GPU{i}" for i in range(ngpu)] + [f"NIC{i}" for i in range(width - ngpu)], how
    if lower == 0:
        return Unparseable.of("no header row and no GPU or NICn row: which columns are GPUs is unknown",
                              "\n".join(line for _, _, line in pending))
    how = (f"no header row and no NICn row: only the first {lower} columns are proven GPUs; the other "
           f"{width - lower} columns may be GPUs or NICs and were not read")
    return [f"GPU{i}" for i in range(lower)], how


def _affinity_cells(rest: list[str], names: list[str]) -> dict[str, str]:
    """The trailing affinity cells by header name (CPU Affinity may be absent in old outputs)."""
    names = names or ["CPU Affinity", "NUMA Affinity", "GPU NUMA ID"]
    return dict(zip(names, rest))


_AFFINITY_COLUMNS = ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")


def _scan_lines(lines: list[str]) -> tuple[list[str], list[str], dict[str, str], list[tuple[str, list[str], str]]]:
    """(header columns, affinity columns, NIC legend, matrix rows as (label, tokens, line)) of the first matrix."""
    columns: list[str] = []
    has_affinity: list[str] = []
    nic_names: dict[str, str] = {}
    pending: list[tuple[str, list[str], str]] = []
    done_matrix = False
    for line in lines:
        legend = re.match(r"^\s*(NIC\d+)\s*:\s*(\S+)\s*$", line)
        if legend:
            nic_names[legend.group(1)] = legend.group(2)
            continue
        if line.strip().startswith("Legend"):
            done_matrix = True
            continue
        if done_matrix:
            continue
        if _is_header(line):
            # A later header re-reads the columns. (The guard meant to stop at a second matrix, `seen_header and
            # rows`, never fired: rows were only read after this loop. Kept as it behaved; a matrix whose rows
            # hold P2P codes is refused below.)
            columns = [t for t in _HEADER_TOKEN.findall(line) if t not in _AFFINITY_COLUMNS]
            has_affinity = [t for t in _HEADER_TOKEN.findall(line) if t in _AFFINITY_COLUMNS]
            continue
        m = _ROW.match(line)
        if m:
            pending.append((m.group(1), m.group(2).split(), line))
    return columns, has_affinity, nic_names, pending


def _misaligned(label: str, cells: list[str], rest: list[str], columns: list[str], headerless: bool,
                line: str) -> Unparseable | None:
    """Why a row cannot belong to this matrix (P2P codes, its X cell elsewhere, not a column), else None."""
    if not cells and rest and rest[0] in P2P_STATUS:
        return Unparseable.of(f"row {label} holds P2P status codes ({rest[0]}): a `topo -p2p` matrix, "
                              "not `topo -m`", line)
    if label in columns:
        own = columns.index(label)
        if "X" in cells and cells.index("X") != own:
            return Unparseable.of(f"row {label} has its X cell under {columns[cells.index('X')]}, not its own "
                                  "column: columns misaligned", line)
        if "X" not in cells and len(cells) > own:
            return Unparseable.of(f"row {label} has no X cell in its own column: columns misaligned", line)
        return None
    if not label.startswith("GPU") and len(cells) > 0 and headerless:
        return None  # a named NIC row of a headerless fragment: its cells are read against the proven columns
    return Unparseable.of(f"row {label} is not a column of the matrix header", line)


def _read_affinity(label: str, rest: dict[str, str], stores: dict[str, dict[str, str]], missing: dict[str, str]) -> None:
    """A GPU row's CPU/NUMA affinity cells into their stores (N/A is recorded as missing, not as a value)."""
    for key, store in stores.items():
        value = rest.get(key)
        if value is None:
            continue
        if value.upper() == "N/A":
            missing[f"{label} {key}"] = "na"
        else:
            store[label] = value


def parse_topo_matrix(text: str) -> TopoMatrix | Unparseable:
    """`nvidia-smi topo -m`: tabs or spaces, glued cells, named NIC columns, headerless fragments."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    columns, has_affinity, nic_names, pending = _scan_lines(text.replace("\r", "").split("\n"))
    if not pending:
        return Unparseable.of("no matrix rows (GPUn/NICn lines) found", text)
    rows: list[str] = []
    links: dict[tuple[str, str], str] = {}
    stores: dict[str, dict[str, str]] = {key: {} for key in _AFFINITY_COLUMNS}
    raw_rows: dict[str, str] = {}
    missing: dict[str, str] = {}
    gaps: list[str] = []  # what the output did not show: becomes `partial`
    if not columns:
        inferred = _headerless_columns(pending)
        if isinstance(inferred, Unparseable):
            return inferred
        columns, how = inferred
        gaps.append(how)
    for label, tokens, line in pending:
        cells, rest = _split_cells(tokens, len(columns))
        if label in raw_rows:
            continue
        refused = _misaligned(label, cells, rest, columns, bool(gaps), line)
        if refused is not None:
            return refused
        full_width = len(_split_cells(tokens, None)[0])
        if len(cells) < len(columns):
            gaps.append(f"row {label} shows {len(cells)} of {len(columns)} cells")
        rows.append(label)
        raw_rows[label] = line
        for col, cell in zip(columns, cells):
            if cell.startswith("NV") and not (label.startswith("GPU") and col.startswith("GPU")):
                return Unparseable.of(f"{cell} between {label} and {col}: NVLink joins GPUs only, so the columns "
                                      "are misaligned", line)
            links[(label, col)] = cell
        if label.startswith("GPU") and rest and full_width <= len(columns):
            _read_affinity(label, _affinity_cells(rest, has_affinity), stores, missing)
    absent = [c for c in columns if c.startswith("GPU") and c not in raw_rows]
    if not links:
        return Unparseable.of("matrix rows have no link cells (X/NV#/PIX/PXB/PHB/NODE/SYS)", text)
    if not any(a.startswith("GPU") and b.startswith("GPU") for a, b in links):
        gaps.append("no GPU rows: only GPU↔NIC links from NIC rows are known")
    elif absent:
        gaps.append(f"no rows for {', '.join(absent)}")
    partial = "; ".join(gaps) or None
    return TopoMatrix(
        columns=tuple(columns), rows=tuple(rows), links=links, cpu_affinity=stores["CPU Affinity"],
        numa_affinity=stores["NUMA Affinity"], gpu_numa_id=stores["GPU NUMA ID"], nic_names=nic_names,
        fragment=partial is not None, notes=tuple(gaps), raw_rows=raw_rows, missing=missing, partial=partial,
    )


def topology_facts(m: TopoMatrix) -> TopologyFacts:
    """What the checks judge of a `topo -m` matrix: GPU pairs, NVLink domain, a signature to compare nodes, NIC affinity."""
    pairs = m.gpu_pairs()
    signature = ";".join(f"{i}-{j}:{k}" for (i, j), k in sorted(pairs.items()))
    aff = {int(g[3:]): v for g, v in m.gpu_nic_affinity().items()}
    evidence = tuple(m.raw_rows[g] for g in m.gpus if g in m.raw_rows)
    return TopologyFacts(gpu_count=len(m.gpus), links=pairs, nvlink_domain=m.nvlink_domain_size(),
                         signature=signature, nic_affinity=aff, fragment=m.fragment, evidence=evidence, matrix=m,
                         partial=m.partial)


@dataclass(frozen=True)
class P2PMatrix:
    """`nvidia-smi topo -p2p r|w|rw|n|a`: peer-access status for every GPU pair."""

    gpus: tuple[str, ...]
    status: dict[tuple[str, str], str]
    raw_rows: dict[str, str] = field(default_factory=dict)

    def not_ok(self) -> list[tuple[str, str, str]]:
        return [(a, b, s) for (a, b), s in sorted(self.status.items()) if a != b and s != "OK"]


def parse_p2p_matrix(text: str) -> P2PMatrix | Unparseable:
    """The last GPU×GPU matrix whose cells are P2P status codes (OK/NS/CNS/GNS/TNS/DR/U)."""
    if not is_probably_text(text):
        return Unparseable.of("empty or binary output", text)
    header: list[str] = []
    status: dict[tuple[str, str], str] = {}
    raw: dict[str, str] = {}
    found: P2PMatrix | None = None
    for line in text.splitlines():
        tokens = line.split()
        if tokens and all(re.fullmatch(r"GPU\d+", t) for t in tokens):
            if status:
                found = P2PMatrix(tuple(header), dict(status), dict(raw))
            header, status, raw = tokens, {}, {}
            continue
        if header and tokens and re.fullmatch(r"GPU\d+", tokens[0]) and len(tokens) == len(header) + 1:
            cells = tokens[1:]
            if all(c in P2P_STATUS for c in cells):
                for col, cell in zip(header, cells):
                    status[(tokens[0], col)] = cell
                raw[tokens[0]] = line
    if status:
        found = P2PMatrix(tuple(header), status, raw)
    if found is None:
        return Unparseable.of("no GPU×GPU matrix of P2P status codes (OK/NS/CNS/GNS/TNS)", text)
    return found
