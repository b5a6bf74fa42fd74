"""`run --slurm -i INV --shard K/N` against the real local Slurm: each shard's nodes become srun's nodelist, and
the shards' bundles merge to the nodes of the unsharded `run --slurm -i INV`, with the same verdicts.

The CLI runs the plain `sh -s` collector (no simulated-node wrapper), so every node shows this host's own
tools (as in test_slurm_transport's CLI test): the point is which nodes each shard reaches and that the merge
judges them as the unsharded run does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from preflight.inventory.shard import Shard, members
from preflight.sim.slurm import SlurmCluster, missing_binaries

NODES = [("sh1", "h100-healthy"), ("sh2", "h100-healthy"), ("sh3", "h100-healthy"), ("sh4", "h100-healthy"),
         ("sh5", "h100-healthy")]
NAMES = [n for n, _p in NODES]
MEASURED = {"network.clock_skew"}  # measured afresh by each collection


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        pytest.skip(f"Slurm/munge not installed (missing {', '.join(missing)}; run scripts/install-test-deps.sh)")
    c = SlurmCluster(tmp_path_factory.mktemp("slurm-shard"), NODES)
    try:
        c.start(timeout_s=30)
        yield c
    finally:
        c.stop()


def _cli(cluster, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *argv], capture_output=True, text=True, timeout=240,
                          env=cluster.env(dict(os.environ)))


def _verdicts(doc):
    return [(n["name"], n["outcome"], n["status"],
             [(f["check"], f["status"], f["subject"], f["msg"] if f["check"] not in MEASURED else None)
              for f in n["findings"]]) for n in doc["nodes"]]


def test_slurm_shards_merge_to_the_unsharded_run(cluster, tmp_path):
    inv = tmp_path / "inv.yaml"
    inv.write_text("groups:\n  sim:\n    hosts:\n" + "".join(f"      {n}: {{address: 127.0.0.1}}\n" for n in NAMES))
    base = ["run", "--slurm", "--slurm-partition", cluster.partition, "-i", str(inv), "--timeout", "90", "-q",
            "--headless", "--no-history"]
    # the unsharded run names its nodes (with a partition and no nodelist, srun would take one node)
    whole = _cli(cluster, *base, "--slurm-nodelist", ",".join(NAMES), "--json", str(tmp_path / "whole.json"))
    assert (tmp_path / "whole.json").exists(), whole.stderr
    for k in (1, 2):
        proc = _cli(cluster, *base, "--shard", f"{k}/2", "--save", str(tmp_path / f"s{k}"))
        assert (tmp_path / f"s{k}" / "bundle.json").exists(), proc.stderr
        got = [n["name"] for n in json.loads((tmp_path / f"s{k}" / "bundle.json").read_text())["nodes"]]
        assert sorted(got) == sorted(members(NAMES, Shard(k, 2)))  # srun ran on this shard's nodes only
    merged = _cli(cluster, "merge", str(tmp_path / "s1"), str(tmp_path / "s2"), "-q", "--no-history",
                  "--json", str(tmp_path / "merged.json"))
    assert merged.returncode == whole.returncode, merged.stderr
    w, m = (json.loads((tmp_path / f"{x}.json").read_text()) for x in ("whole", "merged"))
    assert [n["name"] for n in m["nodes"]] == NAMES
    assert _verdicts(m) == _verdicts(w)


def test_slurm_shard_needs_an_inventory(cluster):
    proc = _cli(cluster, "run", "--slurm", "--slurm-partition", cluster.partition, "--shard", "1/2", "-q",
                "--headless")
    assert proc.returncode == 3 and "give -i INVENTORY" in proc.stderr
