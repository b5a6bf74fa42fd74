"""Re-record the bundle `preflight demo` replays: a live run against a 4-node simulated fleet.

    python -m preflight.sim.record_demo [OUT]   (default: preflight/data/demo/bundle.json)

gpu-01 and gpu-02 are healthy 8x H100 nodes, gpu-03 runs an older driver, gpu-04 has two
NVLinks of GPU 5 down (profiles and provenance: preflight/sim/profiles/*/profile.yaml). The run
includes the nccl-tests probes (`--nccl`): every node's all_reduce_perf stand-in prints the
recorded single-node 8x H100 run, so the planner has a measured intra-node bandwidth.
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
from pathlib import Path

from preflight.collect.bundle import save_bundle
from preflight.collect.probes import NCCL_PROBES
from preflight.inventory import load_inventory
from preflight.session import collect
from preflight.sim.fleet import SimFleet
from preflight.transport.fanout import FanoutOptions
from preflight.transport.ssh import SshOptions

DEMO_FLEET = [("gpu-01", "h100-healthy"), ("gpu-02", "h100-healthy"), ("gpu-03", "driver-mismatch"),
              ("gpu-04", "nvlink-down")]
DEMO_EXPECT = {"gpus_per_node": 8, "gpu_model": "NVIDIA H100 80GB HBM3",
               # said once, as an operator would: the simulated nodes have no kernel log (no clean 8x H100
               # dmesg was found published), so gpu.xid reads `accepted`, with this reason, not `error`
               "accept": {"xid": "the simulated fleet has no recorded kernel log (dmesg) of a healthy 8x H100 node"}}


def record(out: Path) -> Path:
    with tempfile.TemporaryDirectory(prefix="preflight-demo-") as tmp:
        with SimFleet(Path(tmp), DEMO_FLEET) as fleet:
            inv_path = fleet.write_inventory(Path(tmp) / "demo.yaml", DEMO_EXPECT, fleet.sandbox_thresholds())
            inv = load_inventory(inv_path)
            nodes = [dataclasses.replace(n, command_timeout_s=60.0) for n in inv.nodes]
            opts = FanoutOptions(ssh=SshOptions(known_hosts=inv.known_hosts, use_default_known_hosts=False))
            # inventory Nodes are frozen; session.Node declares settable attributes (should be read-only properties)
            bundle = collect(nodes, opts, include_optional=NCCL_PROBES)
    bundle.label = "recording"
    bundle.inventory = {"path": "simulated fleet (python -m preflight.sim.record_demo)", "expect": DEMO_EXPECT}
    for raw in bundle.nodes:  # sources named in the tmp inventory would point at a deleted file
        raw.expect_sources = dict.fromkeys(raw.expect, "inventory:demo.yaml defaults")
        raw.expect_sources.update({f"accept.{k}": "inventory:demo.yaml defaults" for k in raw.expect.get("accept", {})})
    return save_bundle(bundle, out)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1] / "data" / "demo" / "bundle.json"
    print(record(target))
