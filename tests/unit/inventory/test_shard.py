"""--shard K/N: the split is deterministic, complete, disjoint, balanced and independent of order and process."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from preflight.cli import main
from preflight.inventory import inventory_from_hosts
from preflight.inventory.shard import (
    Shard,
    apply_shard,
    members,
    missing_shards,
    parse_shard,
    selection_digest,
    shard_of_all,
    shard_record,
)

NAMES = [f"gpu-{i:03d}" for i in range(1, 38)] + ["login", "node-a", "node-b", "dgx-h100-17.example.org"]


@pytest.mark.parametrize("text,k,n", [("1/1", 1, 1), ("2/4", 2, 4), (" 4 / 4 ", 4, 4), ("10/64", 10, 64)])
def test_parse_accepts_k_of_n(text: str, k: int, n: int) -> None:
    assert parse_shard(text) == Shard(k, n)


@pytest.mark.parametrize("text", ["0/2", "3/2", "1/0", "0/0", "a/b", "1-2", "1/2/3", "", "-1/2", "1/"])
def test_parse_refuses_bad_shards_with_one_line(text: str) -> None:
    with pytest.raises(ValueError) as exc:
        parse_shard(text)
    assert "\n" not in str(exc.value) and "--shard" in str(exc.value)


@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, len(NAMES)])
def test_every_node_in_exactly_one_shard_sizes_within_one(n: int) -> None:
    parts = [members(NAMES, Shard(k, n)) for k in range(1, n + 1)]
    flat = [x for p in parts for x in p]
    assert sorted(flat) == sorted(NAMES)  # complete, and no node twice (disjoint)
    sizes = [len(p) for p in parts]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_split_does_not_depend_on_inventory_order() -> None:
    want = shard_of_all(NAMES, 4)
    rng = random.Random(7)
    for _ in range(20):
        shuffled = NAMES[:]
        rng.shuffle(shuffled)
        assert shard_of_all(shuffled, 4) == want
        assert selection_digest(shuffled) == selection_digest(NAMES)
        # members keeps the order it is given: the shard's run keeps the inventory's order
        assert members(shuffled, Shard(2, 4)) == [x for x in shuffled if want[x] == 2]


def test_split_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = ("import json,sys; from preflight.inventory.shard import shard_of_all; "
            "print(json.dumps(shard_of_all(json.loads(sys.argv[1]), 3)))")
    got = []
    for seed in ("1", "12345"):
        proc = subprocess.run([sys.executable, "-c", code, json.dumps(NAMES)], capture_output=True, text=True,
                              env={"PYTHONHASHSEED": seed, "PATH": "/usr/bin:/bin"}, timeout=60, check=True)
        got.append(json.loads(proc.stdout))
    assert got[0] == got[1] == shard_of_all(NAMES, 3)


def test_a_split_is_not_a_split_of_the_order_or_of_python_hash() -> None:
    # sanity that the split mixes: shard 1 of 2 is neither the first half nor every other inventory entry
    first = members(NAMES, Shard(1, 2))
    assert first != NAMES[: len(first)] and first != NAMES[::2]


def test_apply_shard_narrows_an_inventory_and_records_it() -> None:
    inv = inventory_from_hosts(["a", "b", "c", "d", "e"])
    narrowed, rec = apply_shard(inv, Shard(2, 2), inventory_sha256="ab" * 32)
    assert [n.name for n in narrowed.nodes] == members(["a", "b", "c", "d", "e"], Shard(2, 2))
    assert rec["n"] == 2 and rec["shards"] == [2] and rec["total"] == 5 and rec["names"] == ["a", "b", "c", "d", "e"]
    assert rec["selection_sha256"] == selection_digest("edcba") and rec["inventory_sha256"] == "ab" * 32
    assert missing_shards(rec) == [1]
    assert missing_shards(shard_record(rec["names"], [1, 2], 2)) == []


def test_more_shards_than_nodes_is_refused() -> None:
    with pytest.raises(ValueError, match="leave a shard empty"):
        apply_shard(inventory_from_hosts(["a", "b"]), Shard(1, 3))


@pytest.mark.parametrize("shard", ["0/2", "3/2", "x", "3/3"])
def test_cli_bad_shard_exits_3_before_any_connection(shard: str, capsys: pytest.CaptureFixture[str]) -> None:
    # two hosts: 3/3 leaves a shard empty; nothing is contacted (the error comes before any SSH)
    assert main(["run", "-H", "192.0.2.1,192.0.2.2", "--shard", shard, "--headless", "-q"]) == 3
    err = capsys.readouterr().err.strip()
    assert "--shard" in err and len(err.splitlines()) == 1
