"""`--shard K/N`: one deterministic slice of a selection, so N controllers each check their part of a fleet.

The split depends only on the node *names* of the selection and on N: each name's SHA-256 (not Python's
`hash()`, which is salted per process) orders the selection; the node at rank r of that order is in shard
`r mod N + 1`. So every node is in exactly one shard, shard sizes differ by at most one, and the answer is
the same on every controller, whatever the inventory's order (two controllers whose inventories list the
same hosts in another order split them alike). Adding a node to the inventory may move others to another
shard: shards are only joined when they were cut from the same selection (its digest, below, which
`preflight merge` compares).

What a shard records (a bundle's `options["shard"]`, a JSON report's `source.shard`) is `shard_record`:
which shards it holds, of how many, the selection's size, digest and names in inventory order, so a merge
can tell a complete set from a partial one, name the nodes of a missing shard and keep the unsharded order.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

METHOD = "sha256-rank"  # recorded, so a later change of the split is told apart from a mixed inventory
_SHARD_RE = re.compile(r"\s*(\d{1,6})\s*/\s*(\d{1,6})\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `k` of `n` (both 1-based)."""

    k: int
    n: int

    def __str__(self) -> str:
        return f"{self.k}/{self.n}"


def parse_shard(text: str) -> Shard:
    """'K/N' with 1 <= K <= N; ValueError with one line otherwise."""
    m = _SHARD_RE.fullmatch(str(text))
    if not m:
        raise ValueError(f"--shard {text!r}: give K/N, e.g. 1/4 (shard K of N, 1 <= K <= N)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= k <= n:
        raise ValueError(f"--shard {text!r}: K must be between 1 and N (got K={k}, N={n})")
    return Shard(k, n)


def _key(name: str) -> tuple[str, str]:
    return hashlib.sha256(name.encode("utf-8")).hexdigest(), name


def shard_of_all(names: Iterable[str], n: int) -> dict[str, int]:
    """{name: its shard (1..n)} for a whole selection."""
    ranked = sorted(set(names), key=_key)
    return {name: r % n + 1 for r, name in enumerate(ranked)}


def members(names: Iterable[str], shard: Shard) -> list[str]:
    """The names in `shard`, in the order given."""
    names = list(names)
    of = shard_of_all(names, shard.n)
    return [name for name in names if of[name] == shard.k]


def selection_digest(names: Iterable[str]) -> str:
    """The selection's identity: SHA-256 of its sorted, distinct names (order does not matter)."""
    return hashlib.sha256("\n".join(sorted(set(names))).encode("utf-8")).hexdigest()


def shard_record(names: Sequence[str], shards: Iterable[int], n: int, *, inventory_sha256: str | None = None) -> dict[str, Any]:
    """What a shard (or a merge of some shards) of the selection `names` records about itself."""
    held = sorted(set(shards))
    record: dict[str, Any] = {"method": METHOD, "n": n, "shards": held, "total": len(names),
                              "selection_sha256": selection_digest(names), "names": list(names)}
    if inventory_sha256:
        record["inventory_sha256"] = inventory_sha256
    return record


def missing_shards(record: dict[str, Any]) -> list[int]:
    """The shards (1..n) a record does not hold: empty for a complete set."""
    try:
        n = int(record.get("n") or 0)
        held = {int(k) for k in record.get("shards") or ()}
    except (TypeError, ValueError):
        return []
    return [k for k in range(1, n + 1) if k not in held]


def describe(record: dict[str, Any]) -> str:
    """'shard 1/2 of 6 nodes' / 'shards 1, 3 of 4 (of 12 nodes)' / 'all 2 shards (12 nodes)'."""
    n, held, total = record.get("n"), list(record.get("shards") or ()), record.get("total")
    if not missing_shards(record):
        return f"all {n} shards ({total} nodes)"
    if len(held) == 1:
        return f"shard {held[0]}/{n} of {total} nodes"
    return f"shards {', '.join(str(k) for k in held)} of {n} (of {total} nodes)"


def apply_shard(inventory: Any, shard: Shard, *, inventory_sha256: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(the inventory narrowed to `shard`, its record); an `Inventory` (any frozen dataclass with `nodes`).

    N larger than the selection is refused (ValueError): every shard holds at least one node."""
    names = [node.name for node in inventory.nodes]
    if shard.n > len(names):
        raise ValueError(f"--shard {shard}: {shard.n} shards of {len(names)} node(s) would leave a shard empty; "
                         f"give N <= {len(names)}")
    keep = set(members(names, shard))
    narrowed = dataclasses.replace(inventory, nodes=tuple(node for node in inventory.nodes if node.name in keep))
    return narrowed, shard_record(names, [shard.k], shard.n, inventory_sha256=inventory_sha256)


__all__ = ["METHOD", "Shard", "apply_shard", "describe", "members", "missing_shards", "parse_shard",
           "selection_digest", "shard_of_all", "shard_record"]
