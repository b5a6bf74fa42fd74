"""Network-level facts between controller and nodes: clock agreement."""

from __future__ import annotations

from collections.abc import Iterator

from preflight.engine import CheckContext
from preflight.facts import NodeFacts
from preflight.registry import check
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
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.WARN, observed=observed,
                      expected=f"|skew| <= {limit} s", expected_source=source, msg=f"clock off by {skew:+.1f} s",
                      hint=ctx.spec.remediation)
    else:
        yield Finding(check=ctx.spec.id, node=node.name, status=Status.PASS, observed=observed)
