"""Host patterns: expand (hostlist and Ansible ranges), bounded; compress back for display."""

from __future__ import annotations

import pytest

from preflight.inventory import hostpattern
from preflight.inventory.hostpattern import HostPatternError, compress, expand


@pytest.mark.parametrize("pattern, names", [
    ("gpu-[00-03]", ["gpu-00", "gpu-01", "gpu-02", "gpu-03"]),
    ("gpu-[1-3,7]", ["gpu-1", "gpu-2", "gpu-3", "gpu-7"]),
    ("n[01-02]-ib[0-1]", ["n01-ib0", "n01-ib1", "n02-ib0", "n02-ib1"]),
    ("gpu[01:04]", ["gpu01", "gpu02", "gpu03", "gpu04"]),
    ("gpu[1:7:3]", ["gpu1", "gpu4", "gpu7"]),
    ("rack[a:c]", ["racka", "rackb", "rackc"]),
    ("gpu-[8-11]", ["gpu-8", "gpu-9", "gpu-10", "gpu-11"]),
    ("gpu-[01-02],login", ["gpu-01", "gpu-02", "login"]),
    ("plain", ["plain"]),
])
def test_expand(pattern: str, names: list[str]) -> None:
    assert expand(pattern) == names


@pytest.mark.parametrize("bad", [
    "gpu-[01-", "gpu-]", "gpu-[5-1]", "gpu-[a-b]", "gpu-[]", "gpu-[[1-2]]", "a b", "", "gpu[1:2:0]", "gpu[1:2:3:4]",
])
def test_expand_errors(bad: str) -> None:
    with pytest.raises(HostPatternError):
        expand(bad)


def test_expand_is_bounded() -> None:
    with pytest.raises(HostPatternError, match="100000"):
        expand("n[0-999]-g[0-999]")
    assert len(expand("n[1-100000]")) == hostpattern.MAX_NAMES


@pytest.mark.parametrize("pattern", [
    "gpu-[00-63]", "gpu-[1-3,7]", "n[01-02]-ib[0-1]", "gpu-[8-11]", "gpu-[01-04],login-01", "a[1-2]b[3-4]c[5-6]",
    "gpu-[01-02,3,04-05]",
])
def test_compress_round_trip(pattern: str) -> None:
    names = expand(pattern)
    assert compress(names) == pattern
    assert expand(compress(names)) == names


def test_compress_display() -> None:
    assert compress(["gpu-03", "gpu-01", "gpu-02", "login", "gpu-01"]) == "gpu-[01-03],login"
    assert compress(["gpu01", "gpu02", "gpu04"]) == "gpu[01-02,04]"
    assert compress([]) == ""
    names = ["b7", "a1", "a3", "x"]
    assert sorted(expand(compress(names))) == sorted(names)
