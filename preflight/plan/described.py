"""Fleets described, not measured: `--fleet 2x8:h100-sxm,ib=8x400,nvl=72`, and what-ifs on a measured fleet.

A described fleet becomes the same `FleetShape` the measured path builds (judged_fleet.py), so
the planner has one code path. Every fact of it comes from `gpus.yaml` or the description and
says so ("described fleet, not measured"); nothing is passed off as observed.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import replace

from ..reference import gpu_specs
from .shapes import FleetShape, NodeShape, NvlinkDomain

TERM = re.compile(r"^(\d+)x(\d+):([a-z0-9][a-z0-9.-]*)((?:,[a-z]+=[^,]+)*)$")
MAX_NODES = 100_000
# Ring all-reduce inside a node reaches about 80% of the unidirectional NVLink spec
# (planner-notes §5 rules of thumb: A100 78%, H200 ring 82%).
NVLINK_RING_EFFICIENCY = 0.8
DESCRIBED = "described fleet, not measured"


def _spec(gpu: str) -> dict[str, object]:
    specs = {str(s["id"]): s for s in gpu_specs()}
    if gpu in specs:
        return specs[gpu]
    near = difflib.get_close_matches(gpu, list(specs), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(near)}?" if near else f"; known: {', '.join(sorted(specs))}"
    raise ValueError(f"--fleet: unknown GPU id {gpu!r} (preflight/data/reference/gpus.yaml){hint}")


def _options(text: str, term: str) -> tuple[tuple[int, float] | None, int | None]:
    ib: tuple[int, float] | None = None
    nvl: int | None = None
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        if key == "ib":
            m = re.fullmatch(r"(\d+)x(\d+(?:\.\d+)?)", value)
            if not m or int(m[1]) < 1 or float(m[2]) <= 0:
                raise ValueError(f"--fleet {term!r}: ib= takes NICSxGBITS per node, e.g. ib=8x400")
            ib = (int(m[1]), float(m[2]))
        elif key == "nvl":
            if not value.isdigit() or int(value) < 1:
                raise ValueError(f"--fleet {term!r}: nvl= takes the NVLink domain size in GPUs, e.g. nvl=72")
            nvl = int(value)
        else:
            raise ValueError(f"--fleet {term!r}: unknown option {key!r} (ib=NICSxGBITS, nvl=GPUS)")
    return ib, nvl


def _node(name: str, gpus: int, spec: dict[str, object], ib: tuple[int, float] | None, term: str) -> NodeShape:
    nvswitch = bool(spec.get("nvswitch"))
    link = spec.get("nvlink_bw_gbps_unidir")
    busbw = float(str(link)) * NVLINK_RING_EFFICIENCY if nvswitch and link else None
    src = (f"{DESCRIBED}: gpus.yaml {spec['id']} nvlink_bw_gbps_unidir {link} × {NVLINK_RING_EFFICIENCY:g} "
           "(ring ≈ 80% of link spec, planner-notes §5)") if busbw else None
    return NodeShape(
        name=name, gpus=gpus, gpu_model=str(spec.get("nvidia_smi_name_hint") or spec.get("name") or spec["id"]),
        # gpus.yaml memory_gb is the spec sheet's GB (binary GiB in practice): × 1024 MiB
        gpu_memory_mib=int(float(str(spec.get("memory_gb") or 0)) * 1024),
        hbm_gbps=float(str(spec["hbm_bw_tbps"])) * 1000 if spec.get("hbm_bw_tbps") else None,
        nvlink_domain=gpus if nvswitch else 1, intra_busbw_gbps=busbw, intra_busbw_source=src,
        ib_gbps=ib[0] * ib[1] if ib else None, ib_ports=ib[0] if ib else None,
        facts_source=f"{DESCRIBED}: --fleet {term}, gpus.yaml {spec['id']}", described=True,
    )


def parse_term(term: str, start: int = 1) -> tuple[list[NodeShape], list[NvlinkDomain]]:
    """One `--fleet` term -> its nodes (named <gpu>-<n>, numbered from `start`) and NVLink domains."""
    m = TERM.match(term.strip().lower())
    if not m:
        raise ValueError(f"--fleet {term!r}: expected NODESxGPUS:GPU[,ib=NICSxGBITS][,nvl=GPUS], e.g. 2x8:h100-sxm,ib=8x400")
    count, gpus, gpu = int(m[1]), int(m[2]), m[3]
    if not 1 <= count <= MAX_NODES or not 1 <= gpus <= 72:
        raise ValueError(f"--fleet {term!r}: 1-{MAX_NODES} nodes of 1-72 GPUs")
    spec = _spec(gpu)
    ib, nvl = _options(m[4], term)
    nodes = [_node(f"{gpu}-{i:02d}", gpus, spec, ib, term) for i in range(start, start + count)]
    domains: list[NvlinkDomain] = []
    if nvl and nvl > gpus:
        if nvl % gpus:
            raise ValueError(f"--fleet {term!r}: nvl={nvl} is not a whole number of {gpus}-GPU nodes")
        per = nvl // gpus
        for k in range(0, count, per):
            members = tuple(n.name for n in nodes[k:k + per])
            domains.append(NvlinkDomain(gpus=len(members) * gpus, nodes=members, healthy=True, broken_by=(),
                                        cluster_uuid=None, clique_id=f"described-{len(domains)}"))
        nodes = [replace(n, nvlink_domain=gpus) for n in nodes]
    elif nvl and nvl < gpus:
        nodes = [replace(n, nvlink_domain=nvl) for n in nodes]
    return nodes, domains


def described_fleet(terms: list[str]) -> FleetShape:
    """Several `--fleet` terms make one mixed fleet; ValueError (one line) on bad input."""
    nodes: list[NodeShape] = []
    domains: list[NvlinkDomain] = []
    for term in terms:
        gpu = term.split(":", 1)[-1].split(",", 1)[0].strip().lower()
        start = 1 + sum(1 for n in nodes if n.name.rsplit("-", 1)[0] == gpu)
        more, doms = parse_term(term, start)
        nodes += more
        domains += doms
    return FleetShape(nodes=tuple(nodes), nvlink_domains=tuple(domains))


def _known(fleet: FleetShape, name: str, flag: str) -> None:
    names = [n.name for n in fleet.nodes]
    if name in names:
        return
    excluded = dict(fleet.excluded)
    if name in excluded:
        raise ValueError(f"{flag}: {name} is excluded ({excluded[name]}); only healthy nodes can be used")
    near = difflib.get_close_matches(name, names, n=3)
    raise ValueError(f"{flag}: no healthy node {name!r}" + (f"; did you mean {' or '.join(near)}?" if near else ""))


def what_if(fleet: FleetShape, *, without: Sequence[str] = (), plus: Sequence[str] = ()) -> FleetShape:
    """The measured fleet without some nodes and/or plus N hypothetical copies of a node (`N:NODE`)."""
    for name in without:
        _known(fleet, name, "--without")
    nodes = [n for n in fleet.nodes if n.name not in set(without)]
    if not nodes and fleet.nodes:
        raise ValueError("--without removes every healthy node")
    for item in plus:
        count, _, name = item.partition(":")
        if not count.isdigit() or not name or not 1 <= int(count) <= MAX_NODES:
            raise ValueError(f"--plus {item!r}: expected N:NODE, e.g. --plus 2:gpu-01")
        _known(fleet, name, "--plus")
        like = next(n for n in fleet.nodes if n.name == name)
        nodes += [replace(like, name=f"{name}+{i}", facts_source=f"hypothetical: like {name} ({like.facts_source})")
                  for i in range(1, int(count) + 1)]
    return replace(fleet, nodes=tuple(nodes))
