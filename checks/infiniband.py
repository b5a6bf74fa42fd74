"""InfiniBand / RoCE ports: Active, LinkUp, at the expected rate, as many as expected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from preflight.facts import FleetFacts, NodeFacts
from preflight.registry import CheckContext, check, consistency
from preflight.results import Finding

_HINT = ("Check the cable and switch port (`ibstat`, `iblinkinfo`), reseat the transceiver, and look at the "
         "switch for a port trained to a lower rate; a down port makes NCCL fall back or hang.")


_RATE_MEMO: list[tuple[FleetFacts, float | None]] = []  # the last fleet's answer: checks ask once per node


def _fleet_rate(fleet: FleetFacts) -> float | None:
    memo = _RATE_MEMO[0] if _RATE_MEMO else None  # one read: judging runs in several threads in the TUI
    if memo is not None and memo[0] is fleet:
        return memo[1]
    rates = Counter(p.rate_gbps for n in fleet.reachable for p in n.ib or () if p.state == "Active" and p.rate_gbps)
    value = rates.most_common(1)[0][0] if rates else None
    _RATE_MEMO[:] = [(fleet, value)]
    return value


@check(id="ib.port.state", group="ib", needs=("ib",),
       summary="Every IB/RoCE port is Active and LinkUp at the expected rate (inventory ib_rate_gbps, else the fleet's most common active rate)",
       remediation=_HINT,
       na_when="the node has no IB/RoCE ports")
def ib_port_state(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    ports = node.ib or ()
    pinned, source = ctx.expected(node, "ib_rate_gbps")
    rate = float(pinned) if pinned is not None else _fleet_rate(ctx.fleet)
    rate_source = source if pinned is not None else "fleet's most common active port rate"
    if not ports:
        yield ctx.na(node, "no IB/RoCE ports on this node (no ibstat ports, no /sys/class/infiniband)")
        return
    for p in ports:
        problems = []
        if p.state != "Active":
            problems.append(f"state {p.state}")
        if p.phys_state and p.phys_state != "LinkUp":
            problems.append(f"physical state {p.phys_state}")
        if rate is not None and p.state == "Active" and p.rate_gbps is not None and p.rate_gbps < rate:
            problems.append(f"rate {p.rate_gbps:g} Gb/s < {rate:g}")
        observed = f"{p.state}/{p.phys_state} {p.rate_gbps:g} Gb/s {p.link_layer or ''}".strip() if p.rate_gbps is not None \
            else f"{p.state}/{p.phys_state}"
        expected = f"Active/LinkUp {rate:g} Gb/s" if rate is not None else "Active/LinkUp"
        if problems:
            yield ctx.fail(node, subject=p.ref, observed=observed,
                           expected=expected, expected_source=rate_source, msg=f"{p.ref}: " + ", ".join(problems),
                           evidence=p.evidence, hint=_HINT)
        else:
            yield ctx.ok(node, subject=p.ref, observed=observed,
                         expected=expected, expected_source=rate_source, msg=f"{p.ref}: {observed}")


@check(id="ib.port.count", group="ib", needs=("ib",),
       summary="The node has the expected number of Active IB/RoCE ports (inventory ib_ports)",
       remediation=_HINT)
def ib_port_count(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    pinned, source = ctx.expected(node, "ib_ports")
    active = sum(1 for p in node.ib or () if p.state == "Active")
    if pinned is None and not node.ib:
        yield ctx.na(node, "no IB/RoCE ports on this node and no ib_ports expectation in the inventory")
    elif pinned is None:
        yield ctx.ok(node, observed=active,
                     msg=f"{active} active ports (no ib_ports expectation in the inventory)")
    elif active < int(pinned):
        yield ctx.fail(node, observed=active, expected=int(pinned),
                       expected_source=source, msg=f"{active} active IB/RoCE ports, {pinned} expected", hint=_HINT)
    else:
        yield ctx.ok(node, observed=active, expected=int(pinned),
                     expected_source=source, msg=f"{active} active ports")


@check(id="ib.port.errors", group="ib", needs=("ib",),
       summary="IB/RoCE port error counters stay at or under their thresholds (link_downed: a flap; symbol/receive errors: a bad cable or transceiver)",
       remediation="Rising link_downed or symbol errors mean a marginal cable/transceiver: reseat or replace it, check the switch side, then "
                   "clear the counters (perfquery -x -R) and re-check.",
       thresholds={"link_downed": 0, "symbol_error": 10, "port_rcv_errors": 10, "link_error_recovery": 10},
       threshold_sources={"link_downed": "Azure azurehpc-health-checks azure_ib_link_flapping.nhc (0 flaps), via shared/reference/thresholds.md",
                          "symbol_error": "preflight default (counters are cumulative since boot; a few errors are common)",
                          "port_rcv_errors": "preflight default (cumulative since boot)",
                          "link_error_recovery": "preflight default (cumulative since boot)"},
       na_when="the node has no IB/RoCE ports")
def ib_port_errors(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    ports = [p for p in node.ib or () if p.counters]
    if not node.ib:
        yield ctx.na(node, "no IB/RoCE ports on this node")
        return
    for p in node.ib:
        if not p.counters:
            yield ctx.unknown(node, f"{p.ref}: no port counters (/sys/class/infiniband/{p.ca}/ports/{p.port}/counters)",
                              subject=p.ref)
    for p in ports:
        over = []
        for name in ("link_downed", "symbol_error", "port_rcv_errors", "link_error_recovery"):
            limit, source = ctx.threshold(name)
            if name in p.counters and limit is not None and p.counters[name] > int(limit):
                over.append((name, p.counters[name], limit, source))
        if over:
            yield ctx.warn(node, subject=p.ref,
                           observed=", ".join(f"{n}={v}" for n, v, _, _ in over),
                           expected=", ".join(f"{n}<={lim}" for n, _, lim, _ in over), expected_source=over[0][3],
                           msg=f"{p.ref}: error counters above threshold", hint=_HINT + " " + ctx.spec.remediation,
                           evidence=tuple(f"/sys/class/infiniband/{p.ca}/ports/{p.port}/counters/{n}: {v}" for n, v, _, _ in over))
        else:
            yield ctx.ok(node, subject=p.ref,
                         observed=", ".join(f"{k}={v}" for k, v in sorted(p.counters.items())))


@check(id="versions.hca_firmware.consistent", group="versions", scope="fleet", needs=("ib",),
       summary="Every node's HCAs run the same firmware as the fleet majority (from ibstat / sysfs fw_ver)",
       remediation="Update the HCA firmware (mlxfwmanager / mstflint) to the fleet's version; mixed firmware causes subtle RDMA failures.",
       na_when="the node has no IB/RoCE ports")
def hca_firmware(fleet: FleetFacts, ctx: CheckContext) -> Iterator[Finding]:
    values = {n.name: (" + ".join(sorted({p.firmware for p in n.ib or () if p.firmware})) or None) for n in fleet.reachable}
    na = {n.name: "no IB/RoCE ports on this node" for n in fleet.reachable if not n.ib}
    yield from consistency(fleet, ctx, "x_hca_firmware", values, label="HCA firmware", hint=ctx.spec.remediation,
                           not_applicable=na)
