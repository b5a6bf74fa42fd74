"""Causes from the network NCCL chose: a node that fell back to sockets (no libibverbs), a node whose transport,
interfaces or HCAs differ from the majority's, or a whole job on TCP."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from preflight.hang.joined import JoinedInputs, majority, node_values
from preflight.hang.nccl_log import NcclRank
from preflight.hang.verdict_types import Cause, evidence_tuple, quoted, ranks_text


def socket_fallback_causes(world: JoinedInputs) -> list[Cause]:
    """Per node: libibverbs could not be loaded and NCCL carried the job over sockets (IPoIB or Ethernet), no RDMA."""
    by_node: dict[str, list[NcclRank]] = defaultdict(list)
    for r in world.nccl:
        if r.socket_fallback:
            by_node[r.host].append(r)
    others_ib = {r.host for r in world.nccl if r.transport == "IB"} - set(by_node)
    out: list[Cause] = []
    for host, rs in sorted(by_node.items()):
        ranks = sorted({r.rank for r in rs if r.rank is not None})
        ifs = tuple(dict.fromkeys(i for r in rs for i in r.interfaces))
        ipoib = [i for i in ifs if i.startswith("ib")]
        over = f"IPoIB ({', '.join(ipoib)})" if ipoib else (f"TCP on {', '.join(ifs)}" if ifs else "TCP")
        who = f"{ranks_text(ranks)} on {host}" if ranks else host
        title = f"{who}: NCCL could not load libibverbs and fell back to sockets over {over}: no RDMA"
        if others_ib:
            title += f" ({len(others_ib)} other node(s) use NET/IB)"
        off = next((r.ib_disabled for r in rs if r.ib_disabled is not None), None)
        if off is not None:
            title += "; NCCL_IB_DISABLE is set as well"
        r0 = rs[0]
        evid = (quoted(r0.ibverbs_failure) + quoted(r0.socket_evidence) + quoted(r0.socket_via_evidence) + quoted(off)
                + [str(e) for r in rs[1:3] for e in (r.ibverbs_failure,) if e is not None])
        out.append(Cause(0.84 if others_ib else 0.78, title, ranks[0] if ranks else None, host, evidence_tuple(evid),
                         f"ssh {host} 'ldconfig -p | grep libibverbs; ls /etc/libibverbs.d; ibv_devinfo -l'  "
                         f"(install rdma-core/libibverbs (MOFED/DOCA) on the node or in the job's container image, "
                         f"with /dev/infiniband passed in; then the log shows 'NET/IB : Using [0]mlx5_...')",
                         "socket_fallback", tuple(ranks)))
    return out


def _top(values: Counter[Any] | None, default: Any) -> Any:
    """The most common of `values`, `default` when there are none."""
    top = majority(values) if values else None
    return top[0] if top is not None else default


def network_causes(world: JoinedInputs, covered: set[str] | None = None) -> list[Cause]:
    """Nodes whose network differs from the majority's, or a whole job on sockets; `covered` nodes already have a
    socket-fallback cause (not named twice)."""
    covered = covered or set()
    per_node: dict[str, tuple[str | None, tuple[str, ...], tuple[str, ...]]] = {}
    first: dict[str, NcclRank] = {}
    tr = node_values(world.nccl, "transport")
    ifs = node_values(world.nccl, "interfaces")
    devs = node_values(world.nccl, "net_devices")
    for h in set(tr) | set(ifs):
        per_node[h] = (_top(tr.get(h), None), _top(ifs.get(h), ()), _top(devs.get(h), ()))
    for rank in world.nccl:
        if rank.net_evidence is not None and rank.host not in first:
            first[rank.host] = rank
    out: list[Cause] = []
    if not per_node:
        return out
    maj_t = majority(Counter(t for t, _, _ in per_node.values() if t))
    maj_i = majority(Counter(i for _, i, _ in per_node.values() if i))
    maj_d = majority(Counter(d for _, _, d in per_node.values() if d))
    n = len(per_node)

    def describe(t: str | None, i: tuple[str, ...], d: tuple[str, ...]) -> str:
        s = f"NET/{t}" if t else "the network"
        if t == "IB" and d:
            s += f" ({', '.join(d[:4])})"
        return s + (f" on {', '.join(i)}" if i else "")

    for host, (t, i, d) in sorted(per_node.items()):
        if host in covered:
            continue
        diff_t = maj_t and t and t != maj_t[0] and maj_t[1] > n / 2
        diff_i = maj_i and i and i != maj_i[0] and maj_i[1] > n / 2
        diff_d = maj_d and d and t == "IB" and d != maj_d[0] and maj_d[1] > n / 2
        if not (diff_t or diff_i or diff_d):
            continue
        others = describe(maj_t[0] if maj_t else None, maj_i[0] if maj_i else (), maj_d[0] if maj_d else ())
        title = f"{host} uses {describe(t, i, d)} while {n - 1} other node(s) use {others}"
        score = 0.82 if diff_t and diff_i else 0.8 if diff_t else 0.72 if diff_i else 0.6
        ranks = sorted(r.rank for r in world.nccl if r.host == host and r.rank is not None)
        r = first.get(host)
        ref = next((x for h, x in first.items() if h != host and per_node[h][0] == (maj_t[0] if maj_t else None)), None)
        evid = quoted(r.net_evidence if r else None) + quoted(ref.net_evidence if ref else None)
        if diff_t and t == "Socket":
            nxt = (f"ssh {host} 'ibstat; ibv_devinfo -l; ldconfig -p | grep -e libibverbs -e libnccl-net; env | grep NCCL_'"
                   f"  (why no IB on {host}: HCA down, libibverbs missing, NCCL_IB_DISABLE, or wrong NCCL_SOCKET_IFNAME)")
        else:
            nxt = (f"ssh {host} 'ip -br addr; ibdev2netdev; env | grep -e NCCL_SOCKET_IFNAME -e NCCL_IB_HCA'"
                   f"  (set the same NCCL_SOCKET_IFNAME / NCCL_IB_HCA on every node)")
        out.append(Cause(score, title, ranks[0] if ranks else None, host, evidence_tuple(evid), nxt, "network", tuple(ranks)))
    if not out and maj_t and maj_t[0] == "Socket" and maj_t[1] == n and not set(per_node) <= covered:
        r = next(iter(first.values()), None)
        evid = [str(x.net_evidence) for x in first.values() if x.net_evidence is not None]  # one line per node
        out.append(Cause(0.45, f"the job runs NCCL over NET/Socket (TCP) on all {n} node(s): InfiniBand is not used",
                         r.rank if r else None, r.host if r else None, evidence_tuple(evid),
                         "on a node: ibstat; ibv_devinfo -l; ldconfig -p | grep libibverbs; env | grep NCCL_IB",
                         "network"))
    return out
