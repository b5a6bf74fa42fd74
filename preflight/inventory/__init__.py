"""Inventory loading: the nodes to check, how to reach them, and what to expect of them.

The formats read (see docs/inventory.md): the native format (``defaults`` / ``expect`` /
``thresholds`` / ``groups`` / ``hosts``), Ansible YAML inventories (``all:`` / ``children:`` /
``hosts:`` / ``vars:``, with ``preflight_expect`` / ``preflight_thresholds`` / ``preflight_labels``),
Ansible INI inventories, both Ansible formats with ``group_vars/`` / ``host_vars/`` beside them, and the
JSON of ``ansible-inventory --list`` (or ``--ansible-inventory SOURCE``, which runs it).
Every problem is an :class:`InventoryError` whose text is one line,
``<file>:<line>: <key path>: <what is wrong>``.

The package, in the order a file is read (each module imports only those above it):

* ``hostpattern``: host ranges (``gpu-[01-16]``, ``gpu[01:16]``) expanded and compressed; no
  inventory types, so selections and the readers share it.
* ``model``: what callers hold: Node, Inventory (with ``select``), Expectations, EXPECT_KEYS,
  InventoryError, the default timeouts.
* ``source``: YAML composed by hand into mappings that remember each key's line; reading them,
  refusing unknown keys with a did-you-mean.
* ``fields``: typed readers for one value each (counts, numbers, text, connection settings,
  ``expect`` / ``accept`` / ``thresholds`` / ``labels``, host names and addresses).
* ``layers``: settings per level (defaults, group, host) merged into a Node, and the group graph
  (depths, ancestors, cycles). Its own module because all three entry points build nodes the
  same way; neither format owns it.
* ``native`` and ``ansible``: the two YAML schemas, each read in short steps; ``ansible_ini`` and
  ``ansible_json`` fill the same Ansible tree from INI and ``ansible-inventory --list`` JSON;
  ``vars_dirs`` adds ``group_vars/`` and ``host_vars/`` to it in Ansible's precedence.
* ``load`` (``load_inventory``: a file or stdin, any format, told by content) and ``hosts`` (``inventory_from_hosts``:
  the CLI's ``-H`` strings). Separate because ``-H`` reads no file and has its own error source.
"""

from __future__ import annotations

from preflight.inventory.hosts import inventory_from_hosts
from preflight.inventory.load import load_inventory
from preflight.inventory.model import (
    DEFAULT_COMMAND_TIMEOUT_S,
    DEFAULT_CONNECT_TIMEOUT_S,
    EXPECT_KEYS,
    Expectations,
    Inventory,
    InventoryError,
    Node,
)

__all__ = [
    "DEFAULT_COMMAND_TIMEOUT_S",
    "DEFAULT_CONNECT_TIMEOUT_S",
    "EXPECT_KEYS",
    "Expectations",
    "Inventory",
    "InventoryError",
    "Node",
    "inventory_from_hosts",
    "load_inventory",
]
