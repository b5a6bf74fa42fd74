"""Grey IB links read with mlxlink (`preflight run --mlxlink`): post-/pre-FEC BER, module temperature against
its own threshold, link downs and retrainings since the counters were cleared. The thresholds and their sources
are preflight/ib_link.py's (re-exported by the registry), which `preflight hang` uses on the same probe."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from preflight.facts import NodeFacts
from preflight.registry import (
    EFFECTIVE_BER_FAIL,
    RAW_BER_FAIL_FEC,
    SRC_IBDIAG,
    SRC_IEEE_PREFEC,
    CheckContext,
    check,
    judge_port,
)
from preflight.results import Finding


def _ber(value: float | None) -> str:
    return "not shown" if value is None else ("0" if value == 0 else f"{value:.0E}")


def _observed(p: Any) -> str:  # a preflight.parse.mlxlink.MlxlinkPort
    temp = "not shown" if p.module_temp_c is None else f"{p.module_temp_c:g} C" + (
        f" (high {p.module_temp_high_c:g} C)" if p.module_temp_high_c is not None else "")
    return (f"effective BER {_ber(p.effective_ber)}, raw BER {_ber(p.raw_ber)} ({p.fec or 'FEC not shown'}), module "
            f"{temp}, link downs {p.link_down if p.link_down is not None else 'not shown'}, link error recoveries "
            f"{p.link_error_recovery if p.link_error_recovery is not None else 'not shown'}")


@check(id="ib.link_quality", group="ib", needs=("link_quality",),
       summary="mlxlink per IB port: post-FEC BER <= 1E-12, pre-FEC BER <= 2.4E-4 under FEC, module below its "
               "high temperature threshold, no link downs or retrainings since the last clear (run --mlxlink)",
       remediation="Reseat, then replace the cable or transceiver (BER, errors, link downs); check cooling for a hot "
                   "module; clear with `mlxlink -d DEV -p PORT --clear_counters`, let traffic run 5-10 min and read "
                   "`mlxlink -d DEV -p PORT -c` again.",
       thresholds={"effective_ber_max": EFFECTIVE_BER_FAIL, "raw_ber_max_fec": RAW_BER_FAIL_FEC},
       threshold_sources={"effective_ber_max": SRC_IBDIAG, "raw_ber_max_fec": SRC_IEEE_PREFEC})
def link_quality(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    eff, eff_src = ctx.threshold("effective_ber_max")
    raw, raw_src = ctx.threshold("raw_ber_max_fec")
    expected = f"effective BER <= {float(eff):.0E}, raw BER <= {float(raw):.1E} under FEC, module < its high threshold"
    for key, port in sorted((node.link_quality or {}).items()):
        if isinstance(port, str):  # why this port could not be read
            yield ctx.unknown(node, f"{key}: {port}", subject=key)
            continue
        found = judge_port(port, effective_ber_max=float(eff), raw_ber_max_fec=float(raw))
        if found:
            say = ctx.fail if any(f.level == "fail" for f in found) else ctx.warn
            yield say(node, f"{key}: " + "; ".join(f.what for f in found), subject=key, observed=_observed(port),
                      expected=expected, expected_source="; ".join(dict.fromkeys(f.source for f in found)),
                      hint="; ".join(dict.fromkeys(f.action for f in found)))
        elif port.missing:
            yield ctx.unknown(node, f"{key}: nothing over a threshold in what mlxlink showed, but not seen: "
                              f"{'; '.join(port.missing)}", subject=key, observed=_observed(port))
        else:
            yield ctx.ok(node, f"{key}: {port.speed or ''} {port.state or ''}".rstrip() + f": {_observed(port)}",
                         subject=key, observed=_observed(port), expected=expected,
                         expected_source=f"{eff_src}; {raw_src}")
