"""Fixtures for the inventory tests: the fixture inventories, loaded once per module."""

from __future__ import annotations

import pytest
from _inventory_files import FIX

from preflight.inventory import Inventory, load_inventory


@pytest.fixture(scope="module")
def good() -> Inventory:
    return load_inventory(FIX / "good.yaml")


@pytest.fixture(scope="module")
def ansible() -> Inventory:
    return load_inventory(FIX / "ansible.yaml")
