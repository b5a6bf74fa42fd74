"""Active tests (`--level standard|deep`, docs/levels.md): DCGM's verdict, measured copy and loopback bandwidth.

Expected values come, best first, from the inventory's thresholds, then per-SKU values other fleet tools
enforce (Azure azurehpc-health-checks, cited per value; shared/reference/thresholds.md), then a
derivation from the node's own facts (the PCIe link or IB port it should have), marked as ours.
"""

from __future__ import annotations

from collections.abc import Iterator
from statistics import median

from preflight.facts import GpuFacts, NodeFacts
from preflight.registry import CheckContext, check
from preflight.results import Finding

AZNHC = "Azure/azurehpc-health-checks"
# nvidia-smi GPU name substring -> (H2D/D2H GB/s, D2D GB/s, GPUDirect ib_write_bw loopback Gb/s), with sources
SKU_FLOORS: dict[str, tuple[float, float, float, str]] = {
    "H100 80GB HBM3": (48.0, 335.0, 380.0, f"{AZNHC} conf/nd96isr_h100_v5.conf (check_gpu_bw 48 335; "
                                           "ib_write_bw GDR loopback 380)"),
    "H200": (48.0, 335.0, 360.0, f"{AZNHC} conf/nd96isr_h200_v5.conf (check_gpu_bw 48 335; loopback 360)"),
    "A100-SXM4": (21.0, 235.0, 180.0, f"{AZNHC} conf/nd96asr_v4.conf, nd96amsr_a100_v4.conf (21 / 235-238 GB/s; "
                                      "loopback 180)"),
}
# GB/s per lane after line coding, per PCIe generation (3: 8 GT/s 128b/130b ... 5: 32 GT/s; 6: 64 GT/s FLIT)
PCIE_LANE_GBPS = {1: 0.25, 2: 0.5, 3: 0.985, 4: 1.969, 5: 3.938, 6: 7.563}
COPY_EFFICIENCY = 0.70  # ours: aznhc's 48 GB/s is 76% of Gen5 x16's 63 GB/s; 0.70 leaves run-to-run margin
LOOPBACK_EFFICIENCY = 0.85  # ours: aznhc's 380 Gb/s is 95% of NDR 400 with GPUDirect; 0.85 without a SKU value
PEER_SPREAD = 0.85  # ours: a GPU or HCA below 85% of its node's median is slower than its identical peers


def _sku(node: NodeFacts) -> tuple[float, float, float, str] | None:
    names = {g.name or "" for g in node.gpus or ()}
    for hint, floors in SKU_FLOORS.items():
        if any(hint.lower() in n.lower() for n in names):
            return floors
    return None


def _gpu(node: NodeFacts, index: int) -> GpuFacts | None:
    return next((g for g in node.gpus or () if g.index == index), None)


def _pcie_floor(g: GpuFacts | None) -> tuple[float | None, str]:
    if g is None or not g.pcie_gen_max or not g.pcie_width_max or g.pcie_gen_max not in PCIE_LANE_GBPS:
        return None, "no PCIe generation/width for this GPU"
    raw = PCIE_LANE_GBPS[g.pcie_gen_max] * g.pcie_width_max
    return round(raw * COPY_EFFICIENCY, 1), (f"ours: {COPY_EFFICIENCY:.0%} of PCIe Gen{g.pcie_gen_max} "
                                             f"x{g.pcie_width_max} ({raw:.1f} GB/s), the link this GPU supports")


@check(id="gpu.dcgm.diag", group="gpu", needs=("dcgm",),
       summary="DCGM diagnostics (dcgmi diag at the level's run level) pass every test on every GPU",
       remediation="Read DCGM's message for the failing test and GPU; reset the GPU and rerun `dcgmi diag -r 3`; "
                   "a repeat failure is for the vendor (RMA).")
def dcgm_diag(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    diag = node.dcgm
    level = f"dcgmi diag -r {diag.run_level}" if diag.run_level else "dcgmi diag"
    if diag.runtime_error:
        yield ctx.unknown(node, f"{level} did not run its tests: {diag.runtime_error}")
        return
    if diag.partial:
        yield ctx.unknown(node, f"{level} output is incomplete ({diag.partial}): not judged")
        return
    judged = [t for t in diag.tests if t.status in ("pass", "warn", "fail")]
    if not judged:
        yield ctx.unknown(node, f"{level} ran no test (every test {', '.join(sorted({t.status for t in diag.tests})) or 'absent'})")
        return
    for t in diag.tests:
        if t.status not in ("fail", "warn"):
            continue
        gpus = [g.gpu for g in t.gpus if g.status == t.status and g.gpu is not None]
        where = f"GPU {', '.join(map(str, gpus))}: " if gpus else ""
        text = "; ".join(t.warnings) or f"DCGM reports {t.status}"
        finding = ctx.fail if t.status == "fail" else ctx.warn
        yield finding(node, f"{where}{t.name} {'failed' if t.status == 'fail' else 'warned'}: {text}",
                      subject=t.name + (f" GPU {','.join(map(str, gpus))}" if gpus else ""),
                      observed=t.status, expected="pass", expected_source="DCGM's own verdict",
                      evidence=tuple(t.evidence[:12]), hint=ctx.spec.remediation if t.status == "fail" else None)
    if not any(t.status in ("fail", "warn") for t in diag.tests):
        skipped = [t.name for t in diag.tests if t.status in ("skip", "not_run")]
        yield ctx.ok(node, f"{level}: {len(judged)} tests passed" + (f" ({len(skipped)} skipped: "
                     f"{', '.join(skipped[:4])})" if skipped else ""), observed="pass", expected="pass",
                     expected_source="DCGM's own verdict")


def _copy_findings(node: NodeFacts, ctx: CheckContext, test: str, label: str) -> Iterator[Finding]:
    block = (node.copy_bw or {}).get(test)
    if block is None:
        yield ctx.unknown(node, f"nvbandwidth {test} not measured", subject=label)
        return
    sku = _sku(node)
    values = {int(col): v for row in block.rows for col, v in zip(block.columns, row.values)
              if v is not None and col.isdigit()}
    if not values:
        yield ctx.unknown(node, f"nvbandwidth {test}: no GPU measured", subject=label)
        return
    mid = median(values.values())
    override, osrc = ctx.threshold("h2d_d2h_gbps_min")
    for gpu, v in sorted(values.items()):
        floor: float | None
        if override is not None:
            floor, src = float(override), osrc
        elif sku is not None:
            floor, src = sku[0], sku[3]
        else:
            floor, src = _pcie_floor(_gpu(node, gpu))
        subject = f"GPU{gpu} {label}"
        ev = tuple(block.evidence[:4])
        if floor is None:
            yield ctx.unknown(node, f"{subject}: {v:.2f} GB/s measured but no expectation ({src})", subject=subject)
        elif v < floor:
            yield ctx.fail(node, f"{subject}: {v:.2f} GB/s, below {floor:.1f} GB/s", subject=subject,
                           observed=f"{v:.2f} GB/s", expected=f">= {floor:.1f} GB/s", expected_source=src,
                           evidence=ev, hint="Check `nvidia-smi -q` PCIe link generation/width for this GPU (a link "
                                             "trained down halves the copy rate), then reseat or RMA.")
        elif v < PEER_SPREAD * mid:
            yield ctx.warn(node, f"{subject}: {v:.2f} GB/s, under {PEER_SPREAD:.0%} of its peers' median {mid:.2f}",
                           subject=subject, observed=f"{v:.2f} GB/s", expected=f">= {PEER_SPREAD * mid:.1f} GB/s",
                           expected_source=f"ours: {PEER_SPREAD:.0%} of the node's median", evidence=ev)
        else:
            yield ctx.ok(node, f"{subject}: {v:.2f} GB/s", subject=subject, observed=f"{v:.2f} GB/s",
                         expected=f">= {floor:.1f} GB/s", expected_source=src)


@check(id="pcie.copy_bandwidth", group="topology", needs=("copy_bw", "gpus"),
       summary="measured host<->device copy bandwidth per GPU (nvbandwidth CE) reaches what its PCIe link should give",
       remediation="Compare the GPU's PCIe link (`nvidia-smi -q -d PCIE`: generation and width now vs max) with a good "
                   "GPU; a downtrained link halves the copy rate: reseat the GPU or its riser, check the slot, RMA.",
       thresholds={"h2d_d2h_gbps_min": None},
       threshold_sources={"h2d_d2h_gbps_min": "per-SKU (Azure aznhc), else 70% of the GPU's PCIe Gen x width"})
def copy_bandwidth(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    yield from _copy_findings(node, ctx, "host_to_device_memcpy_ce", "host->device")
    yield from _copy_findings(node, ctx, "device_to_host_memcpy_ce", "device->host")


@check(id="nvlink.copy_bandwidth", group="nvlink", needs=("copy_bw",),
       summary="measured device<->device copy bandwidth (nvbandwidth read CE) per GPU pair: per-SKU floor, "
               "and no pair far below its peers",
       remediation="Compare `nvidia-smi nvlink -s` and `topo -m` for the slow GPUs with a good node; a GPU whose "
                   "NVLinks are down copies at PCIe speed: reset it, check the fabric manager, RMA on repeat.",
       na_when="the level ran no device-to-device copy test")
def d2d_bandwidth(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    block = (node.copy_bw or {}).get("device_to_device_memcpy_read_ce")
    if block is None:
        yield ctx.na(node, "no device-to-device copy test ran")
        return
    pairs = {(row.label, col): v for row in block.rows for col, v in zip(block.columns, row.values)
             if v is not None and col != row.label}
    if not pairs:
        yield ctx.unknown(node, "nvbandwidth device_to_device_memcpy_read_ce: no GPU pair measured")
        return
    mid = median(pairs.values())
    sku = _sku(node)
    floor, src = (sku[1], sku[3]) if sku else (PEER_SPREAD * mid, f"ours: {PEER_SPREAD:.0%} of the node's median")
    low = {k: v for k, v in pairs.items() if v < floor}
    if low:
        worst = sorted(low.items(), key=lambda kv: kv[1])[:8]
        yield ctx.fail(node, f"{len(low)} GPU pairs below {floor:.0f} GB/s: " + ", ".join(
            f"GPU{a}->GPU{b} {v:.1f}" for (a, b), v in worst), observed=f"min {min(low.values()):.1f} GB/s",
            expected=f">= {floor:.0f} GB/s", expected_source=src, evidence=tuple(block.evidence[:10]),
            hint="Compare `nvidia-smi nvlink -s` and `topo -m` for these GPUs with a good node.")
    else:
        yield ctx.ok(node, f"{len(pairs)} GPU pairs, {min(pairs.values()):.1f}-{max(pairs.values()):.1f} GB/s",
                     observed=f"min {min(pairs.values()):.1f} GB/s", expected=f">= {floor:.0f} GB/s",
                     expected_source=src)


@check(id="ib.loopback_bw", group="ib", needs=("ib_loopback", "ib"),
       summary="ib_write_bw loopback per HCA (GPUDirect when loaded) reaches the port's rate",
       remediation="Check the port's rate and errors (`ibstat`, `mlxlink -d <hca> -c`), the HCA's PCIe link and NUMA "
                   "placement; reseat the cable or transceiver; RMA the HCA on repeat.",
       thresholds={"gbps_min": None},
       threshold_sources={"gbps_min": "per-SKU (Azure aznhc, GPUDirect), else 85% of the port's rate"})
def loopback_bw(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    rates = {p.ca: p.rate_gbps for p in node.ib or () if getattr(p, "rate_gbps", None)}
    sku = _sku(node)
    override, osrc = ctx.threshold("gbps_min")
    for hca, res in sorted((node.ib_loopback or {}).items()):
        subject = hca
        if res.gbps is None:
            yield ctx.unknown(node, f"{hca}: {res.problem or 'no bandwidth measured'}", subject=subject,
                              evidence=res.evidence)
            continue
        if override is not None:
            floor, src = float(override), osrc
        elif sku is not None and res.gpudirect:
            floor, src = sku[2], sku[3]
        elif rate := rates.get(hca):
            floor = round(LOOPBACK_EFFICIENCY * float(rate), 1)
            src = f"ours: {LOOPBACK_EFFICIENCY:.0%} of {hca}'s {rate:g} Gb/s port rate (ibstat)"
        else:
            yield ctx.unknown(node, f"{hca}: {res.gbps:.1f} Gb/s measured, but no port rate to compare with",
                              subject=subject, evidence=res.evidence)
            continue
        obs = f"{res.gbps:.1f} Gb/s at {res.size_bytes or '?'} B" + (" (GPUDirect)" if res.gpudirect else "")
        if res.gbps < floor:
            yield ctx.fail(node, f"{hca}: loopback {res.gbps:.1f} Gb/s, below {floor:.0f} Gb/s", subject=subject,
                           observed=obs, expected=f">= {floor:.0f} Gb/s", expected_source=src, evidence=res.evidence,
                           hint="Check the port's rate and errors (`ibstat`, `mlxlink -d <hca> -c`), the HCA's PCIe "
                                "link and NUMA placement; reseat the cable or transceiver.")
        else:
            yield ctx.ok(node, f"{hca}: loopback {res.gbps:.1f} Gb/s", subject=subject, observed=obs,
                         expected=f">= {floor:.0f} Gb/s", expected_source=src)
