"""inventory_from_hosts: the CLI's -H strings, with keyword defaults."""

from __future__ import annotations

import pytest
from _inventory_files import by_name

from preflight.inventory import InventoryError, inventory_from_hosts


def test_inventory_from_hosts() -> None:
    inv = inventory_from_hosts(["gpu-01", "root@gpu-02:2222", "[::1]:2201", "n[01-02]"],
                               user="admin", connect_timeout_s=3, expect={"gpus_per_node": 8})
    n = by_name(inv)
    assert inv.names == ("gpu-01", "gpu-02", "::1", "n01", "n02")
    assert (n["gpu-01"].user, n["gpu-01"].port, n["gpu-01"].connect_timeout_s) == ("admin", None, 3.0)
    assert (n["gpu-02"].user, n["gpu-02"].port) == ("root", 2222)
    assert (n["::1"].address, n["::1"].port) == ("::1", 2201)
    assert n["n02"].expect.gpus_per_node == 8 and n["n02"].expect_source("gpus_per_node")


def test_inventory_from_hosts_same_address_different_ports() -> None:
    inv = inventory_from_hosts(["127.0.0.1:2201", "127.0.0.1:2202"])
    assert inv.names == ("127.0.0.1:2201", "127.0.0.1:2202")
    assert {n.address for n in inv.nodes} == {"127.0.0.1"}


@pytest.mark.parametrize("hosts, needle", [
    ([], "no hosts"), (["a", "a"], "twice"), (["a:70000"], "bad port"), (["gpu-[1-"], "bad host pattern"),
])
def test_inventory_from_hosts_errors(hosts: list[str], needle: str) -> None:
    msg = str(pytest.raises(InventoryError, inventory_from_hosts, hosts).value)
    assert needle in msg and "\n" not in msg


def test_inventory_from_hosts_rejects_unknown_defaults() -> None:
    with pytest.raises(TypeError):
        inventory_from_hosts(["a"], usr="x")
