"""Simulated-fleet fixtures: real sshd daemons on 127.0.0.1, stopped by their recorded PIDs."""

from __future__ import annotations

import os
import shutil

import pytest

from preflight.sim.fleet import SSHD, SimFleet


@pytest.fixture(scope="module")
def sim_fleet_factory(tmp_path_factory):
    if not (os.path.exists(SSHD) and shutil.which("ssh-keygen")):
        pytest.skip("OpenSSH server not installed (apt-get install openssh-server)")
    fleets: list[SimFleet] = []

    def make(nodes):
        fleet = SimFleet(tmp_path_factory.mktemp("fleet"), nodes)
        fleets.append(fleet)
        fleet.start()
        return fleet

    try:
        yield make
    finally:
        for fleet in fleets:
            fleet.stop()
