"""Inventory.select: names, globs, ranges, groups, negation; one-line errors with did-you-mean."""

from __future__ import annotations

import pytest
from _inventory_files import FIX

from preflight.inventory import Inventory, InventoryError


@pytest.mark.parametrize("pattern, names", [
    (None, ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05", "login-01", "spare-01")),
    ("gpu-02", ("gpu-02",)),
    ("gpu-0*", ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05")),
    ("gpu-[02-03]", ("gpu-02", "gpu-03")),
    ("gpu-[1-2]", None),  # unpadded range: no such names
    ("spare-01,gpu-[01-02]", ("gpu-01", "gpu-02", "spare-01")),  # inventory order, not pattern order
    ("@login", ("login-01",)),
    ("group:pod", ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05")),
    ("login", ("login-01",)),  # a bare group name
    ("@pod,!gpu-0[3-5]", ("gpu-01", "gpu-02")),
    ("!@pod", ("login-01", "spare-01")),
    ("@all", ("gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05", "login-01", "spare-01")),
    ("gpu-01,gpu-01", ("gpu-01",)),
])
def test_select(good: Inventory, pattern: str | None, names: tuple[str, ...] | None) -> None:
    if names is None:
        with pytest.raises(InventoryError):
            good.select(pattern)
        return
    chosen = good.select(pattern)
    assert chosen.names == names
    assert (chosen.path, chosen.format, chosen.known_hosts) == (good.path, good.format, good.known_hosts)


@pytest.mark.parametrize("pattern, needle", [
    ("gpu-9*", "'gpu-9*'"),
    ("@h200", "did you mean '@h100'"),
    ("gpu-06", "did you mean 'gpu-05'"),
    ("gpu-[01-", "bad pattern"),
    ("@pod,!@pod", "leaves no host"),
])
def test_select_errors(good: Inventory, pattern: str, needle: str) -> None:
    with pytest.raises(InventoryError) as exc:
        good.select(pattern)
    msg = str(exc.value)
    assert "\n" not in msg and needle in msg and str(FIX / "good.yaml") in msg
