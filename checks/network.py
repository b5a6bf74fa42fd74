"""Network-level facts between controller and nodes: clock agreement."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import FleetFacts, NodeFacts
from preflight.registry import CheckContext, check, consistency
from preflight.results import Finding, Status


@check(id="network.clock_skew", group="network", needs=("clock_offset_s",),
       summary="The node's clock agrees with the controller's within a tolerance (the offset is measured at collection start; the round trip bounds its error)",
       remediation="Enable and check time sync (chronyc tracking / timedatectl); skewed clocks scramble the timelines on-call correlates across nodes.",
       thresholds={"max_skew_s": 2.0},
       threshold_sources={"max_skew_s": "preflight default: well above NTP/chrony error, well below what breaks log correlation"})
def clock_skew(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    offset = float(node.clock_offset_s or 0.0)
    latency = float(node.collect_latency_s or 0.0)
    limit, source = ctx.threshold("max_skew_s")
    # the node stamped its start somewhere inside [0, latency] after the controller's: only the excess is skew
    skew = offset - latency if offset > latency else (offset if offset < 0 else 0.0)
    observed = f"{skew:+.2f} s (raw offset {offset:+.2f} s, round trip {latency:.2f} s)"
    if abs(skew) > float(limit):
        yield ctx.warn(node, observed=observed,
                       expected=f"|skew| <= {limit} s", expected_source=source, msg=f"clock off by {skew:+.1f} s",
                       hint=ctx.spec.remediation)
    else:
        yield ctx.ok(node, observed=observed)


def nccl_list(spec: str) -> tuple[bool, bool, list[str]]:
    """NCCL's list syntax (NCCL_SOCKET_IFNAME, NCCL_IB_HCA): (exclude, exact, names without ':port')."""
    spec = spec.strip()
    exclude = spec.startswith("^")
    spec = spec.lstrip("^")
    exact = spec.startswith("=")
    spec = spec.lstrip("=")
    return exclude, exact, [s.split(":")[0].strip() for s in spec.split(",") if s.strip()]


def nccl_matches(spec: str, candidates: list[str]) -> list[str]:
    """The candidates NCCL would use for this list (prefix match unless '=', inverted by '^')."""
    exclude, exact, names = nccl_list(spec)

    def hit(c: str) -> bool:
        return any(c == n if exact else c.startswith(n) for n in names)

    return [c for c in candidates if hit(c) != exclude]


@check(id="network.nccl_interfaces", group="network", needs=("netifs",),
       summary="The interfaces and HCAs the inventory says NCCL uses (expect.nccl_socket_ifname, expect.nccl_ib_hca) exist on the node, and a socket interface is up",
       remediation="Fix NCCL_SOCKET_IFNAME / NCCL_IB_HCA for this node (names differ between images: ib0 vs ibp26s0) or rename the interfaces; "
                   "a wrong value makes NCCL bootstrap on the wrong network (docker0) or fall back to sockets.",
       na_when="the inventory names no NCCL interface or HCA (expect.nccl_socket_ifname / nccl_ib_hca)")
def nccl_interfaces(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    ifname, if_src = ctx.expected(node, "nccl_socket_ifname")
    hca, hca_src = ctx.expected(node, "nccl_ib_hca")
    if ifname is None and hca is None:
        yield ctx.na(node, "does not apply: the inventory names no NCCL interface or HCA "
                           "(expect.nccl_socket_ifname / nccl_ib_hca)")
        return
    ifs = node.netifs or {}
    if ifname is not None:
        used = nccl_matches(str(ifname), sorted(ifs))
        up = [i for i in used if ifs[i].get("operstate") == "up"]
        status = Status.PASS if up else Status.FAIL
        yield ctx.finding(node, status, subject="NCCL_SOCKET_IFNAME",
                          observed=", ".join(f"{i} ({ifs[i].get('operstate')})" for i in used) or "no matching interface",
                          expected=f"an up interface matching {ifname}", expected_source=if_src,
                          msg=f"NCCL_SOCKET_IFNAME={ifname} selects {', '.join(used) or 'nothing'} on this node",
                          evidence=(f"interfaces: {', '.join(sorted(ifs))}",), hint=None if up else ctx.spec.remediation)
    if hca is not None:
        cas = sorted({p.ca for p in node.ib or ()})
        exclude, exact, names = nccl_list(str(hca))
        missing = [] if exclude else [n for n in names if not any(c == n if exact else c.startswith(n) for c in cas)]
        used = nccl_matches(str(hca), cas)
        bad = bool(missing) or not used
        yield ctx.finding(node, Status.FAIL if bad else Status.PASS, subject="NCCL_IB_HCA",
                          observed=f"selects {', '.join(used) or 'nothing'}" + (f"; absent: {', '.join(missing)}" if missing else ""),
                          expected=f"every HCA in {hca} present", expected_source=hca_src,
                          msg=f"NCCL_IB_HCA={hca}: " + ("HCAs missing on this node" if bad else "all present"),
                          evidence=(f"HCAs: {', '.join(cas) or 'none'}",), hint=ctx.spec.remediation if bad else None)


@check(id="network.mtu.consistent", group="network", scope="fleet", needs=("netifs",),
       summary="The interfaces NCCL uses (expect.nccl_socket_ifname) have the same MTU on every node (a mismatch drops large frames or hangs bootstrap)",
       remediation="Set the same MTU on every node's fabric interfaces (netplan/NetworkManager, or the switch profile for RoCE).",
       na_when="the inventory names no NCCL interface (expect.nccl_socket_ifname)")
def mtu_consistent(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values: dict[str, object] = {}
    for n in fleet.reachable:
        spec, _ = ctx.expected(n, "nccl_socket_ifname")
        if spec is None:
            continue
        used = nccl_matches(str(spec), sorted(n.netifs or {}))
        mtus = sorted({mtu for i in used if (mtu := (n.netifs or {})[i].get("mtu"))})
        values[n.name] = ", ".join(str(m) for m in mtus) or None
    if not values:
        for n in fleet.reachable:
            yield ctx.na(n, msg="does not apply: the inventory names no NCCL interface (expect.nccl_socket_ifname)")
        return
    sub = type(fleet)(nodes=tuple(n for n in fleet.nodes if n.name in values), expect=fleet.expect)
    yield from consistency(sub, ctx, "x_mtu", values, label="MTU", hint=ctx.spec.remediation)


@check(id="network.resolve", group="network", scope="fleet", needs=("resolved",),
       summary="Every node resolves every peer's host name (as the inventory names them), and all nodes agree on the address (a stale /etc/hosts entry differs)",
       remediation="Fix DNS or /etc/hosts on the node; torchrun/NCCL bootstrap (MASTER_ADDR, hostfiles) fails or connects to the wrong host otherwise.")
def resolve(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    from collections import Counter

    majority: dict[str, tuple[str, ...]] = {}
    names = sorted({name for n in fleet.reachable for name in (n.resolved or {})})
    for name in names:
        answers = Counter(tuple(ans) for n in fleet.reachable
                          if isinstance(ans := (n.resolved or {}).get(name), list))
        if answers:
            majority[name] = answers.most_common(1)[0][0]
    for n in fleet.reachable:
        failed, differs = [], []
        for name, answer in sorted((n.resolved or {}).items()):
            if not isinstance(answer, list):
                failed.append(f"{name}: {answer.get('error') if isinstance(answer, dict) else answer}")
            elif name in majority and tuple(answer) != majority[name]:
                differs.append(f"{name} -> {', '.join(answer)} (fleet: {', '.join(majority[name])})")
        if failed or differs:
            yield ctx.fail(n, observed="; ".join(failed + differs),
                           expected="every peer name resolves, to the fleet's address", expected_source="fleet majority",
                           msg=f"{len(failed)} peer names do not resolve, {len(differs)} resolve differently",
                           evidence=tuple(failed + differs)[:10], hint=ctx.spec.remediation)
        else:
            yield ctx.ok(n, observed=f"{len(n.resolved or {})} peers resolved")
