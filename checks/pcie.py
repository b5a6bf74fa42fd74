"""PCIe links of GPUs and NICs: trained to their full width (and, for NICs, speed)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from preflight.facts import NodeFacts
from preflight.registry import CheckContext, check
from preflight.results import Finding, Status

_HINT = ("A link trained below its width (x8 instead of x16) halves host↔GPU and GPUDirect bandwidth: reseat the card or riser, "
         "check the slot and BIOS lane settings, compare `lspci -vv` LnkSta with LnkCap.")


@check(id="pcie.gpu.link", group="topology", needs=("gpus",),
       summary="Every GPU's PCIe link runs at its maximum width; a lower generation alone is by design (GPUs drop the link generation when idle) and is only reported",
       remediation=_HINT)
def gpu_link(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    gpus = [g for g in node.gpus or () if g.pcie_width_current is not None and g.pcie_width_max is not None]
    listed = {id(g) for g in gpus}  # by identity: GpuFacts' field-by-field == made this quadratic
    for g in node.gpus or ():
        if id(g) not in listed:
            yield ctx.unknown(node, f"{g.ref} PCIe link width not in the collected outputs "
                                    "(nvidia-smi --query-gpu pcie.link.* or -q GPU Link Info)", subject=g.ref)
    if not node.gpus:
        yield ctx.unknown(node, "no GPUs reported: PCIe links cannot be judged")
    for g in gpus:
        assert g.pcie_width_current is not None and g.pcie_width_max is not None  # `gpus` keeps only these
        gen = f"Gen{g.pcie_gen_current}/{g.pcie_gen_max}" if g.pcie_gen_current is not None else "gen unknown"
        observed = f"x{g.pcie_width_current} of x{g.pcie_width_max}, {gen}"
        if g.pcie_width_current < g.pcie_width_max:
            yield ctx.fail(node, subject=g.ref, observed=observed,
                           expected=f"x{g.pcie_width_max}", expected_source="the GPU's own maximum (pcie.link.width.max)",
                           msg=f"{g.ref} PCIe link trained to x{g.pcie_width_current} of x{g.pcie_width_max}",
                           evidence=(g.raw_line,), hint=_HINT)
        else:
            note = " (lower generation while idle is normal)" if (g.pcie_gen_current or 0) < (g.pcie_gen_max or 0) else ""
            yield ctx.ok(node, subject=g.ref, observed=observed + note)


def _num(value: str | None) -> float | None:
    m = re.match(r"\s*([\d.]+)", value or "")
    return float(m.group(1)) if m else None


@check(id="pcie.nic.link", group="ib", needs=("ib",),
       summary="Every HCA's PCIe link runs at its maximum speed and width (sysfs current_link_* against max_link_*)",
       remediation=_HINT,
       na_when="the node has no IB/RoCE ports")
def nic_link(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    seen: dict[str, dict[str, str]] = {}
    for p in node.ib or ():
        if p.pcie and p.ca not in seen:
            seen[p.ca] = p.pcie
    if not seen:
        if not node.ib:
            yield ctx.na(node, "no IB/RoCE ports on this node")
        else:
            yield ctx.unknown(node, "no HCA PCIe link information in sysfs (device/current_link_*, max_link_*)")
        return
    for ca, link in sorted(seen.items()):
        cs, ms = _num(link.get("current_link_speed")), _num(link.get("max_link_speed"))
        cw, mw = _num(link.get("current_link_width")), _num(link.get("max_link_width"))
        observed = f"{link.get('current_link_speed')} x{link.get('current_link_width')} (max {link.get('max_link_speed')} x{link.get('max_link_width')})"
        down = (cs is not None and ms is not None and cs < ms) or (cw is not None and mw is not None and cw < mw)
        yield ctx.finding(node, Status.FAIL if down else Status.PASS, subject=ca,
                          observed=observed, expected="current = max", expected_source="the HCA's own max_link_* in sysfs",
                          msg=f"{ca} PCIe link below its maximum" if down else f"{ca} PCIe link at maximum",
                          evidence=(f"/sys/class/infiniband/{ca}/device: {observed}",) if down else (), hint=_HINT if down else None)
