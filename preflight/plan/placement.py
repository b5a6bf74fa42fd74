"""Where a layout's GPUs go: nodes sorted once per TP size, a layout's placement a prefix of that order.

Also the per-plan memos the planner keys on the pool (rates, rule results, options per sequence count),
so that layouts on the same kinds of node share work instead of repeating it.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .constraints import Reason
from .models import ModelSpec
from .rates import Rates, rates_for
from .shapes import FleetShape, NodeShape, PlanOptions

__all__ = ["Placement", "Pool", "place"]


@dataclass(frozen=True)
class Placement:
    """GPUs of one node that a layout uses (index order; TP groups are consecutive runs)."""

    node: str
    gpus: tuple[int, ...]

    @property
    def cuda_visible_devices(self) -> str:
        return ",".join(map(str, self.gpus))


def _signature(n: NodeShape) -> tuple[object, ...]:
    """Everything but the name a judgement reads: nodes alike are judged once."""
    return (n.gpus, n.gpu_model, n.gpu_memory_mib, n.nvlink_domain, n.hbm_gbps, n.intra_busbw_gbps,
            n.small_msg_latency_us, n.ib_gbps, n.ib_ports, n.driver, n.cuda, n.nccl, n.described)


@dataclass
class _Order:
    """The nodes in the order TP groups of one size take them, with running capacity for bisecting."""

    nodes: tuple[NodeShape, ...]
    names: tuple[str, ...]
    cum: list[int]  # cumulative units (TP groups, or GPUs when no node holds a group) through node i
    caps: list[int]  # units node i holds
    per_group: int  # GPUs per unit
    firsts: tuple[int, ...]  # index of the first node of each kind, in order
    pool: Pool
    full: list[Placement] = field(default_factory=list)  # node i's placement when filled, built as layouts reach it

    def filled(self, k: int) -> list[Placement]:
        """The first k nodes' placements when filled (built once, on first need: most layouts use few nodes)."""
        for i in range(len(self.full), k):
            self.full.append(self.pool.placement(self.nodes[i], self.caps[i] * self.per_group))
        return self.full[:k]


class _Later:
    """A placement built on first call and kept: shared by the layouts that place as many TP groups."""

    __slots__ = ("_args", "_got")

    def __init__(self, pool: Pool, order: _Order, need: int, k: int) -> None:
        self._args: tuple[Pool, _Order, int, int] | None = (pool, order, need, k)
        self._got: tuple[Placement, ...] = ()

    def __call__(self) -> tuple[Placement, ...]:
        if self._args is not None:
            pool, order, need, k = self._args
            self._got, self._args = pool._place(order, need, k), None
        return self._got


class Pool:
    """Nodes sorted once per TP size; a layout's placement is a prefix of that order (bisected, not rebuilt).

    Keeps planning over a 1,000-node fleet linear in the layouts, not in layouts × nodes: the order for
    a TP size is worked out per kind of node (nodes alike sort alike), and a node filled with the same
    number of GPUs under two TP sizes shares one Placement.
    """

    def __init__(self, nodes: tuple[NodeShape, ...]) -> None:
        self.nodes = nodes
        self._orders: dict[int, _Order] = {}
        kinds: dict[tuple[object, ...], int] = {}
        self._kind = [kinds.setdefault(_signature(n), len(kinds)) for n in nodes]
        self._kind_node = [nodes[self._kind.index(k)] for k in range(len(kinds))]  # one node of each kind
        self._placements: dict[tuple[str, int], Placement] = {}
        self._rates: dict[tuple[object, ...], Rates] = {}
        self._keep: list[FleetShape] = []
        self._reasons: dict[tuple[object, ...], list[Reason]] = {}  # fleet_reasons' memo (keys hold ids)
        self._model_memos: dict[tuple[int, int], dict[tuple[object, ...], list[Reason]]] = {}
        self._held: list[tuple[ModelSpec | None, PlanOptions]] = []
        self._with_seqs: dict[tuple[int, int], PlanOptions] = {}
        self._sorted: dict[tuple[tuple[bool, bool], ...], tuple[list[int], tuple[NodeShape, ...], tuple[str, ...],
                                                               tuple[int, ...]]] = {}
        self._full: dict[tuple[object, ...], list[Placement]] = {}
        self._placed: dict[tuple[int, int], tuple[_Later, tuple[str, ...], tuple[NodeShape, ...]]] = {}

    def with_seqs(self, opts: PlanOptions, seqs: int) -> PlanOptions:
        """`replace(opts, seqs=seqs)`, made once per sequence count (capacities repeat across layouts)."""
        key = (id(opts), seqs)
        got = self._with_seqs.get(key)
        if got is None:
            got = self._with_seqs[key] = replace(opts, seqs=seqs)
            self._held.append((None, opts))
        return got

    def model_memo(self, model: ModelSpec, opts: PlanOptions) -> dict[tuple[object, ...], list[Reason]]:
        """model_reasons' memo for one model and options (kept, so their ids stay theirs)."""
        key = (id(model), id(opts))
        got = self._model_memos.get(key)
        if got is None:
            got = self._model_memos[key] = {}
            self._held.append((model, opts))
        return got

    def reasons_memo(self, fleet: FleetShape) -> dict[tuple[object, ...], list[Reason]]:
        """fleet_reasons' memo for layouts on this pool's nodes; the fleet is kept so its id stays its own."""
        if not any(f is fleet for f in self._keep):
            self._keep.append(fleet)
        return self._reasons

    def rates(self, fleet: FleetShape, used: tuple[NodeShape, ...], weight_dtype: str, *, multinode: bool,
              in_domain: bool) -> Rates:
        """`rates_for`, once per (fleet, kinds of node used, precision, multi-node, inside a domain)."""
        key = (id(fleet), tuple(map(id, used)), weight_dtype, multinode, in_domain)
        got = self._rates.get(key)
        if got is None:
            got = self._rates[key] = rates_for(fleet, used, weight_dtype, multinode=multinode, in_domain=in_domain)
            if not any(f is fleet for f in self._keep):
                self._keep.append(fleet)  # the ids in the key stay those objects' while the pool lives
        return got

    def placement(self, node: NodeShape, ngpus: int) -> Placement:
        key = (node.name, ngpus)
        got = self._placements.get(key)
        if got is None:
            got = self._placements[key] = Placement(node.name, node.placement_order()[:ngpus])
        return got

    def _order(self, tp: int) -> _Order:
        if tp in self._orders:
            return self._orders[tp]
        reps = self._kind_node
        sort_key = tuple((n.nvlink_domain < tp, n.gpus < tp) for n in reps)  # per kind; sorted() below is stable
        whole = any(n.gpus >= tp for n in reps)
        kind_cap = [self._cap(n, tp) if whole else n.gpus for n in reps]
        per = tp if whole else 1
        # TP sizes whose nodes sort alike share the order; those that also fill each node with as many
        # GPUs (TP 1, 2, 4, 8 on 8-GPU nodes) share the filled placements too
        shared = self._sorted.get(sort_key)
        if shared is None:
            idx = sorted(range(len(self.nodes)), key=[sort_key[k] for k in self._kind].__getitem__)
            nodes = tuple(self.nodes[i] for i in idx)
            seen: dict[int, int] = {}
            for pos, i in enumerate(idx):
                if len(seen) == len(reps):
                    break
                seen.setdefault(self._kind[i], pos)
            shared = self._sorted[sort_key] = (idx, nodes, tuple(n.name for n in nodes), tuple(sorted(seen.values())))
        idx, nodes, names, firsts = shared
        caps = [kind_cap[self._kind[i]] for i in idx]
        full = self._full.setdefault((sort_key, tuple(c * per for c in kind_cap)), [])
        order = _Order(nodes, names, list(itertools.accumulate(caps)), caps, per, firsts, self, full)
        self._orders[tp] = order
        return order

    @staticmethod
    def _cap(n: NodeShape, tp: int) -> int:
        # a TP group takes GPUs of the node's clean NVLink clique first (gpu_order); groups beyond the
        # clique (or on a PCIe-only node) still fit on the rest, and the NVLink constraint judges them
        if tp == 1 or n.nvlink_domain <= 1:
            return n.gpus // tp
        return max(n.nvlink_domain // tp, 1 if n.gpus >= tp else 0)

    def place(self, tp: int, pp: int, dp: int) -> tuple[tuple[Placement, ...], tuple[str, ...], tuple[NodeShape, ...]] | None:
        """(placement, every node used, one node of each kind used); None when the GPUs cannot hold it."""
        got = self.place_later(tp, pp, dp)
        return None if got is None else (got[0](), got[1], got[2])

    def place_later(self, tp: int, pp: int, dp: int) -> tuple[Callable[[], tuple[Placement, ...]], tuple[str, ...],
                                                               tuple[NodeShape, ...]] | None:
        """`place`, with the placement as a function that builds it (once) when first called."""
        o = self._order(tp)
        need = pp * dp * (tp // o.per_group)
        if not o.cum or o.cum[-1] < need:
            return None
        got = self._placed.get((tp, need))  # layouts with as many TP groups share one placement (PP2 DP4, PP4 DP2, EP)
        if got is None:
            k = bisect.bisect_left(o.cum, need)  # the last node used
            reps = tuple(o.nodes[i] for i in o.firsts if i <= k)
            got = self._placed[(tp, need)] = (_Later(self, o, need, k), o.names[: k + 1], reps)
        return got

    def _place(self, o: _Order, need: int, k: int) -> tuple[Placement, ...]:
        before = o.cum[k - 1] if k else 0
        full = o.filled(k + 1)
        last = full[k]
        if o.cum[k] != need:
            last = self.placement(o.nodes[k], (need - before) * o.per_group)
        return (*full[:k], last)


def place(nodes: tuple[NodeShape, ...], tp: int, pp: int, dp: int) -> tuple[Placement, ...] | None:
    """Pack PP×DP TP groups onto nodes, NVLink-capable nodes first; None if they do not fit.

    A TP group stays on one node when any node has TP GPUs; otherwise groups fill whole nodes
    in order (TP across nodes, which the constraints then judge).
    """
    got = Pool(nodes).place(tp, pp, dp)
    return got[0] if got else None
