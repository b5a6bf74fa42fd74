"""Host lists from the one verdict: the nodes that passed (mpirun hostfile, Slurm nodelist, torchrun, plain)
and the excluded ones with their one-line reasons.

The split is the planner's (`plan.judged_fleet.exclusions`): a node is excluded exactly when the plan
excludes it, so a job launched on this list runs where the plan said it can.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from preflight.inventory.hostpattern import compress
from preflight.plan.judged_fleet import exclusions
from preflight.results import RunReport

FORMATS = ("mpi", "slurm", "torchrun", "plain")


@dataclass(frozen=True)
class HostSplit:
    passed: tuple[tuple[str, int], ...]  # (node name, GPU slots), in report order
    excluded: tuple[tuple[str, str], ...]  # (node name, the verdict's one-line reason)


def split(report: RunReport, gpus: Mapping[str, int] | None = None) -> HostSplit:
    """Nodes that passed (with their GPU count: `gpus[name]`, 0 when unknown) and those the verdict excludes."""
    excluded = exclusions(report)
    counts = gpus or {}
    passed = tuple((n.name, int(counts.get(n.name, 0))) for n in report.nodes if n.name not in excluded)
    return HostSplit(passed=passed, excluded=tuple((n.name, excluded[n.name]) for n in report.nodes
                                                   if n.name in excluded))


def render_hosts(hosts: HostSplit, fmt: str) -> str:
    """The passed nodes as `fmt` (one of FORMATS); an empty list gives an empty text (never a wrong one)."""
    names = [name for name, _ in hosts.passed]
    if fmt == "mpi":  # Open MPI hostfile: `host slots=N` (one rank per GPU)
        return "".join(f"{name} slots={slots}\n" if slots else f"{name}\n" for name, slots in hosts.passed)
    if fmt == "slurm":  # srun/sbatch --nodelist
        return compress(names) + "\n" if names else ""
    if fmt == "torchrun":
        return _torchrun(hosts)
    if fmt == "plain":
        return "".join(f"{name}\n" for name in names)
    raise ValueError(f"hosts format {fmt!r}: choose {', '.join(FORMATS)}")


def _torchrun(hosts: HostSplit) -> str:
    """Shell-sourceable variables for `torchrun --nnodes=$NNODES --nproc-per-node=$NPROC_PER_NODE
    --rdzv-endpoint=$MASTER_ADDR:29500`: the first node is the rendezvous host. Names are shell-quoted."""
    import shlex

    if not hosts.passed:
        return ""
    slots = sorted({s for _, s in hosts.passed})
    nproc = str(slots[0]) if len(slots) == 1 and slots[0] else "gpu"
    lines = [f"NNODES={len(hosts.passed)}", f"NPROC_PER_NODE={nproc}",
             f"MASTER_ADDR={shlex.quote(hosts.passed[0][0])}",
             f"HOSTS={shlex.quote(','.join(name for name, _ in hosts.passed))}"]
    if len(slots) > 1:
        lines.append("# the nodes have different GPU counts: " + ", ".join(f"{n}={s}" for n, s in hosts.passed))
    return "\n".join(lines) + "\n"


def render_excluded(hosts: HostSplit, actions: Mapping[str, str] | None = None) -> str:
    """`name<TAB>action<TAB>reason` per excluded node (the action is the node's strongest suggestion)."""
    acts = actions or {}
    return "".join(f"{name}\t{acts.get(name, 'drain')}\t{' '.join(reason.split())}\n" for name, reason in hosts.excluded)
