"""Simulated-fleet fixtures: real sshd daemons on 127.0.0.1, stopped by their recorded PIDs."""

from __future__ import annotations

import os
import shutil

import pytest

from preflight.sim.fleet import SSHD, SimFleet


def _require_sshd() -> None:
    """Skip, not error, where the OpenSSH server is absent: every simulated node is a real sshd."""
    if not (os.path.exists(SSHD) and shutil.which("ssh-keygen")):
        pytest.skip(f"OpenSSH server not installed ({SSHD} missing; apt-get install openssh-server)")


@pytest.fixture
def needs_sshd() -> None:
    """For tests that start a SimFleet themselves instead of through a factory: the same skip."""
    _require_sshd()


def _factory(tmp_path_factory):
    _require_sshd()
    fleets: list[SimFleet] = []

    def make(nodes, base_port=None):
        fleet = SimFleet(tmp_path_factory.mktemp("fleet"), nodes, base_port=base_port)
        fleets.append(fleet)  # before start(): a fleet that fails half-way is still stopped
        fleet.start()
        return fleet

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop()


@pytest.fixture(scope="module")
def sim_fleet_factory(tmp_path_factory):
    """`make([(name, profile), ...])` -> a started SimFleet, stopped when the module ends."""
    yield from _factory(tmp_path_factory)


@pytest.fixture(scope="session")
def sim_fleet(tmp_path_factory):
    """The same factory, for fleets shared by the whole session (stopped at session end)."""
    yield from _factory(tmp_path_factory)


def judge_sim_fleet(factory, inv_dir, nodes, *, expectations=None, include_optional=()):
    """Start `nodes`, write their inventory, collect over SSH and judge: (report, fleet)."""
    from preflight.engine import judge
    from preflight.inventory import load_inventory
    from preflight.session import collect
    from preflight.transport.fanout import FanoutOptions
    from preflight.transport.ssh import SshOptions

    fleet = factory(nodes)
    inv = load_inventory(fleet.write_inventory(inv_dir / "sim.yaml", expectations=expectations,
                                               thresholds=fleet.sandbox_thresholds()))
    opts = FanoutOptions(ssh=SshOptions(known_hosts=inv.known_hosts, use_default_known_hosts=False))
    report, _ = judge(collect(list(inv.nodes), opts, include_optional=include_optional))
    return report, fleet
