"""A live run through Slurm (`run --slurm`): one srun runs the collector on every node of an allocation.

The inventory, when given, only supplies expectations (attached by node name, as an SSH run does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from preflight import __version__
from preflight.collect.bundle import Bundle
from preflight.session import attach_expectations


@dataclass(frozen=True)
class SlurmRequest:
    """Where srun runs and for how long; `inventory` is a loaded, selected inventory or None."""

    inventory: Any
    inventory_path: str | None
    partition: str | None = None
    nodes: int | None = None
    nodelist: str | None = None
    timeout: float | None = None
    nccl: bool = False


def slurm_bundle(req: SlurmRequest) -> Bundle:
    """Collect through srun; every node that answered gets its inventory expectations."""
    from preflight.collect.probes import NCCL_PROBES
    from preflight.collect.script import build_script, select_probes
    from preflight.transport.slurm import SlurmOptions, collect_slurm

    limit = float(req.timeout or 300.0)
    include = NCCL_PROBES if req.nccl else ()
    script = build_script(select_probes(include), ngpus=8, deadline_s=max(10.0, limit - 10))
    by_name = {n.name: n for n in req.inventory.nodes} if req.inventory is not None else {}
    nodelist = req.nodelist or (",".join(by_name) if by_name and not (req.nodes or req.partition) else None)
    opts = SlurmOptions(partition=req.partition, nodes=req.nodes, nodelist=nodelist, time_limit_s=limit)
    raws = collect_slurm(script, opts, expected_nodes=list(by_name) if nodelist and by_name else None)
    for raw in raws:
        node = by_name.get(raw.name)
        if node is not None:
            attach_expectations(raw, node)
    return Bundle(nodes=raws, tool_version=__version__, inventory={"path": req.inventory_path},
                  options={"transport": "slurm", "probes": [p.id for p in select_probes(include)]})


def in_allocation() -> bool:
    from preflight.transport.slurm import in_allocation as inside

    return inside()


def slurm_node_states(names: list[str], *, scontrol: str = "scontrol", env: dict[str, str] | None = None,
                      timeout_s: float = 15.0) -> dict[str, Any]:
    """{name: actions.slurm.NodeState} from one `scontrol show node -o NAMES` (argv, no shell); nodes Slurm does
    not know are absent. Raises OSError / subprocess errors when scontrol cannot run."""
    import subprocess

    from preflight.actions.slurm import parse_show_node

    if not names:
        return {}
    proc = subprocess.run([scontrol, "show", "node", "-o", ",".join(names)], capture_output=True, text=True,
                          timeout=timeout_s, env=env)
    return parse_show_node(proc.stdout)


def apply_actions(actions: list[Any], *, env: dict[str, str] | None = None,
                  timeout_s: float = 15.0) -> list[tuple[Any, int, str]]:
    """Run each action's argv (never through a shell): [(action, exit status, scontrol's message)]."""
    import subprocess

    done = []
    for act in actions:
        if not act.argv:
            continue
        try:
            proc = subprocess.run(list(act.argv), capture_output=True, text=True, timeout=timeout_s, env=env)
            done.append((act, proc.returncode, (proc.stderr or proc.stdout).strip()))
        except (OSError, subprocess.TimeoutExpired) as exc:
            done.append((act, 127, str(exc)))
    return done
