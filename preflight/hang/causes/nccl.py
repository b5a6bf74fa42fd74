"""Causes from what NCCL itself logged: mismatched NCCL versions, ranks that never finished init (or never
appear), and NCCL WARN / error lines with what to run next."""

from __future__ import annotations

from collections import Counter, defaultdict

from preflight.hang.joined import JoinedInputs
from preflight.hang.nccl_log import RETCODES, NcclRank
from preflight.hang.verdict_types import Cause, evidence_tuple, quoted, ranks_text


def version_causes(world: JoinedInputs, versions_seen: list[tuple[str, str]]) -> list[Cause]:
    """Nodes whose NCCL version differs from the target: the version most nodes run, or the newest on a tie."""
    by_rank = Counter(r.version for r in world.nccl if r.version)
    out: list[Cause] = []
    if len(by_rank) > 1:
        target, why = version_target(world)
        nodes: dict[str, list[NcclRank]] = defaultdict(list)
        for r in world.nccl:
            if r.version and r.version != target:
                nodes[r.host].append(r)
        ref = next((r for r in world.nccl if r.version == target), None)
        for host, rs in sorted(nodes.items()):
            ranks = sorted(r.rank for r in rs if r.rank is not None)
            vers = sorted({r.version for r in rs if r.version})
            out.append(Cause(0.8, f"{host} runs NCCL {', '.join(vers)} while {by_rank[target]} rank(s) run {target}",
                             ranks[0] if ranks else None, host,
                             evidence_tuple(quoted(rs[0].version_evidence) + quoted(ref.version_evidence if ref else None)),
                             f"ssh {host} 'python -c \"import torch; print(torch.cuda.nccl.version())\"; "
                             f"ldconfig -p | grep libnccl'  (install NCCL {target} there: {why})", "version",
                             tuple(ranks)))
    elif not by_rank:
        distinct = dict.fromkeys(v for v, _ in versions_seen)
        if len(distinct) > 1:
            newest = max(distinct, key=version_key)
            out.append(Cause(0.5, f"the logs show different NCCL versions: {', '.join(distinct)}", None, None,
                             evidence_tuple(f"{src}: NCCL version {v}" for v, src in versions_seen),
                             f"check which nodes run which NCCL (ldconfig -p | grep libnccl on each); "
                             f"target the newest, {newest}", "version"))
    return out


def version_key(v: str) -> tuple[int, ...]:
    """'2.21.5' -> (2, 21, 5); '2.18.5-1' -> (2, 18, 5, 1)."""
    return tuple(int(x) for x in v.replace("-", ".").split(".") if x.isdigit())


def version_target(world: JoinedInputs) -> tuple[str, str]:
    """The version to install everywhere, with why: the one most nodes run (its rank count breaks a tie), else the
    newest seen."""
    per_node: dict[str, Counter[str]] = defaultdict(Counter)
    for r in world.nccl:
        if r.version:
            per_node[r.host][r.version] += 1
    node_votes = Counter(c.most_common(1)[0][0] for c in per_node.values())
    ranks = Counter(r.version for r in world.nccl if r.version)
    newest = max(ranks, key=version_key)
    (top, n), *rest = sorted(node_votes.items(), key=lambda kv: (-kv[1], -ranks[kv[0]], version_key(kv[0])))
    if not rest or n > rest[0][1]:
        extra = "" if top == newest else f"; newest seen {newest}"
        return top, f"the version {n} of {len(per_node)} node(s) run ({ranks[top]} rank(s)){extra}"
    return newest, (f"no version runs on most nodes ({', '.join(f'{v} on {c}' for v, c in node_votes.most_common())}"
                    f" node(s)): the newest")


def init_causes(world: JoinedInputs) -> list[Cause]:
    """Ranks that never reached Init COMPLETE while most did, and ranks of the job that never appear at all."""
    known = [r for r in world.nccl if r.rank is not None]
    done = [r for r in known if r.init_complete]
    if not done or len(done) < len(known) / 2:
        return []
    out: list[Cause] = []
    pending: dict[str, list[NcclRank]] = defaultdict(list)
    completed = {r.rank for r in done}
    for r in known:
        if r.rank not in completed:
            pending[r.host].append(r)
    for host, rs in sorted(pending.items()):
        ranks = sorted({r.rank for r in rs if r.rank is not None})
        out.append(Cause(0.6, f"{ranks_text(ranks)} on {host} never reached NCCL Init COMPLETE "
                              f"({len(completed)} rank(s) did)", ranks[0], host,
                         evidence_tuple([str(rs[0].first_line)] + [str(w) for r in rs for w in r.warnings][:3]),
                         f"ssh {host} 'py-spy dump --pid {rs[0].pid}'  (where is NCCL init stuck?)", "init", tuple(ranks)))
    if world.nranks:
        absent = set(range(world.nranks)) - {r.rank for r in known}
        if absent and len(known) >= world.nranks / 2:
            out.append(Cause(0.55, f"{ranks_text(absent)} of {world.nranks} never appear in the NCCL logs "
                                   f"(process not started, or its log is missing)", min(absent), None, (),
                             "check the launcher's log for those ranks; preflight hang -i INVENTORY", "init",
                             tuple(sorted(absent))))
    return out


def error_causes(world: JoinedInputs) -> list[Cause]:
    """NCCL WARN / error lines, one cause per node, plus those no rank prefix attributes."""
    out: list[Cause] = []
    by_node: dict[str, list[NcclRank]] = defaultdict(list)
    for r in world.nccl:
        if r.warnings or r.errors:
            by_node[r.host].append(r)
    for host, rs in sorted(by_node.items()):
        lines = [e for r in rs for e in (*r.warnings, *r.errors)]
        ranks = sorted({r.rank for r in rs if r.rank is not None})
        codes = sorted({c for r in rs for c in r.retcodes})
        first = lines[0]
        msg = first.text.split("NCCL WARN", 1)[-1].strip()
        who = f"{ranks_text(ranks)} on {host}" if ranks else host
        what = f" ({', '.join(RETCODES.get(c, str(c)) for c in codes)})" if codes else ""
        out.append(Cause(_error_score(msg), f"{who}: {len(lines)} NCCL warning/error line(s){what}: {msg[:140]}",
                         ranks[0] if ranks else None, host, evidence_tuple(str(e) for e in lines), _error_next(msg, host),
                         "nccl_error", tuple(ranks)))
    loose = [e for _, f in world.files if f.nccl is not None for e in f.nccl.unattributed]
    if loose:
        msg = loose[0].text
        out.append(Cause(_error_score(msg) - 0.05, f"NCCL error without a rank prefix: {msg[:140]}", None, None,
                         evidence_tuple(str(e) for e in loose), _error_next(msg, None), "nccl_error"))
    return out


def _error_score(msg: str) -> float:
    """How likely a warning is the cause: peer/transport failures above generic ones."""
    m = msg.lower()
    if "got completion from peer" in m or "remote process exited" in m or "mismatched collective" in m:
        return 0.65
    if "connect" in m or "connection" in m:
        return 0.6
    return 0.5


def _error_next(msg: str, host: str | None) -> str:
    """What to run next for this kind of NCCL warning."""
    m = msg.lower()
    on = f"ssh {host} " if host else ""
    if "got completion from peer" in m or "vendor err" in m:
        return f"{on}'ibstat; perfquery -x' on this node and the named peer (error 12 / vendor err 129 = IB retry timeout: link or switch)"
    if "mismatched collective" in m:
        return "check the collective calls around the named rank; rerun with NCCL_DEBUG_SUBSYS=COLL"
    if "connect" in m or "connection" in m or "route to host" in m:
        return f"{on}'ip -br addr; ip route'  and check the peer address/port is reachable; pin NCCL_SOCKET_IFNAME"
    return f"preflight hang -i INVENTORY --hosts {host or '<node>'}"
