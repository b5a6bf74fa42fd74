"""GPU health on one node: Xid events, uncorrectable ECC, persistence mode, MIG mode."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from preflight.facts import NodeFacts
from preflight.registry import CheckContext, check, describe_xid
from preflight.results import Finding, Status

_XID_SOURCE = "Xid catalogue (preflight/data/xid_catalog.yaml: NVIDIA Xid catalog, NVSentinel mapping)"


@check(id="gpu.xid", group="gpu", needs=("xid",),
       summary="No Xid errors (or Xid-less fatal GPU messages) in the kernel log; fatal codes fail, others warn, each with its catalogued meaning and action",
       remediation="Act on the most severe Xid: RESET_GPU/RESTART_BM codes mean drain the node and reset the GPU or reboot; "
                   "repeated codes after a reset mean RMA. Application-level codes (13, 31, 43) point at the job, not the node.")
def gpu_xid(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    events = node.xid or ()
    by_code: dict[int, list[Any]] = {}  # NodeFacts.xid holds parse.xid.XidEvent, typed Any there
    for ev in events:
        by_code.setdefault(ev.code, []).append(ev)
    for code, evs in sorted(by_code.items()):
        info = describe_xid(code) or {}
        fatal = bool(info.get("fatal"))
        meaning = info.get("mnemonic", "not in the catalogue")
        devices = sorted({e.device for e in evs})
        yield ctx.finding(node, Status.FAIL if fatal else Status.WARN, subject=f"Xid {code}",
                          observed=f"{len(evs)}× Xid {code} ({meaning}) on {', '.join(devices)}",
                          expected="no Xid", expected_source=_XID_SOURCE,
                          msg=f"Xid {code} {meaning}: {info.get('meaning', '')}".strip(),
                          evidence=tuple(e.raw_line for e in evs[:8]),
                          hint=f"catalogued action: {info.get('action', 'see the NVIDIA Xid catalog')}. {ctx.spec.remediation}")
    for ev in node.kernel_events:
        if ev.kind in ("fallen_off_bus", "gsp_timeout"):
            yield ctx.fail(node, subject=ev.kind,
                           observed=ev.kind.replace("_", " "), expected="no fatal GPU kernel messages",
                           msg=f"kernel reports {ev.kind.replace('_', ' ')} (no Xid printed)", evidence=(ev.raw_line,),
                           hint="A GPU that fell off the bus or whose GSP stopped answering needs a node reboot; drain first.")
    sxids: dict[tuple[str | None, int | None], list[Any]] = {}
    for ev in node.kernel_events:
        if ev.kind == "nvswitch_sxid":
            sxids.setdefault((ev.device, ev.code), []).append(ev)
    for (dev, sxid), sevs in sorted(sxids.items(), key=lambda kv: (str(kv[0][0]), kv[0][1] or 0)):
        text = "\n".join(e.raw_line for e in sevs)
        fatal = bool(re.search(r"\bfatal\b", text, re.I)) and not re.search(r"non-?fatal", text, re.I)
        yield ctx.finding(node, Status.FAIL if fatal else Status.WARN, subject=f"SXid {sxid}",
                          observed=f"{len(sevs)}× NVSwitch SXid {sxid} on {dev}",
                          expected="no SXid", expected_source="NVIDIA NVSwitch SXid errors (the message says Fatal / Non-fatal)",
                          msg=f"NVSwitch {dev} reports {'fatal' if fatal else 'non-fatal'} SXid {sxid}",
                          evidence=tuple(e.raw_line for e in sevs[:8]),
                          hint="A fatal SXid needs the NVSwitch tray/baseboard reset (drain first); repeated non-fatal SXids on one "
                               "link point at a marginal NVLink: check `nvidia-smi nvlink -e` and fabric manager logs.")
    if not by_code and not sxids and not any(e.kind in ("fallen_off_bus", "gsp_timeout") for e in node.kernel_events):
        yield ctx.ok(node, observed="no Xid lines",
                     msg="no Xid or fatal GPU messages in the kernel log")


@check(id="gpu.ecc.uncorrectable", group="gpu", needs=("gpus",),
       summary="No GPU reports uncorrectable ECC errors (volatile since boot; aggregate over its life) above the threshold",
       remediation="Drain the node and reset the GPU; an uncorrectable error that returns after reset, or a row-remap failure, means RMA.",
       thresholds={"max_volatile": 0, "max_aggregate": 0},
       threshold_sources={"max_volatile": "facebookresearch/gcm check_nvidia_smi.py default (uncorrected volatile 0), via shared/reference/thresholds.md",
                          "max_aggregate": "same rule applied to the lifetime counter (an RMA signal)"},
       na_when="a GPU has ECC disabled (ecc.mode.current Disabled): that GPU has no counters")
def ecc_uncorrectable(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    limit_v, src_v = ctx.threshold("max_volatile")
    limit_a, src_a = ctx.threshold("max_aggregate")
    if not node.gpus:
        yield ctx.unknown(node, "no GPUs reported: ECC cannot be judged")
        return
    for g in node.gpus:
        vol, agg = g.ecc_uncorrected_volatile, g.ecc_uncorrected_aggregate
        if vol is None and agg is None:
            if g.ecc_mode is False:
                yield ctx.na(node, f"{g.ref} has ECC disabled (ecc.mode.current): no ECC counters to read",
                             subject=g.ref, evidence=(g.raw_line,))
            else:
                yield ctx.unknown(node, f"{g.ref} ECC counters not in the collected outputs "
                                        "(nvidia-smi --query-gpu, the table's Uncorr. ECC column, -q or NVML)", subject=g.ref)
            continue
        if (vol or 0) > limit_v or (agg or 0) > limit_a:
            yield ctx.fail(node, subject=g.ref,
                           observed=f"volatile {vol}, aggregate {agg}", expected=f"volatile <= {limit_v}, aggregate <= {limit_a}",
                           expected_source=src_v if (vol or 0) > limit_v else src_a,
                           msg=f"{g.ref} has uncorrectable ECC errors", evidence=(g.raw_line,) + g.evidence,
                           hint=ctx.spec.remediation)
        else:
            yield ctx.ok(node, subject=g.ref,
                         observed=f"volatile {vol}, aggregate {agg}", expected=f"<= {limit_v}", expected_source=src_v)


@check(id="gpu.persistence_mode", group="gpu", needs=("gpus",),
       summary="Persistence mode is on for every GPU (off: the driver tears down between jobs, first CUDA call is slow, settings are lost)",
       remediation="Enable the nvidia-persistenced service (or `nvidia-smi -pm 1`).")
def persistence_mode(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    off = [g for g in node.gpus or () if g.persistence_mode is False]
    unknown = all(g.persistence_mode is None for g in node.gpus or ())
    if unknown:
        yield ctx.unknown(node, "persistence mode not reported by any collected output")
    elif off:
        yield ctx.warn(node, subject=",".join(g.ref for g in off),
                       observed="Off", expected="On", msg=f"persistence mode off on {len(off)} GPU(s)",
                       evidence=tuple(g.raw_line for g in off[:8]), hint=ctx.spec.remediation)
    else:
        yield ctx.ok(node, observed="On", msg="persistence mode on")


@check(id="gpu.mig", group="gpu", needs=("gpus",),
       summary="MIG is not enabled on a GPU unless the inventory expects it (MIG slices cannot join NCCL jobs across the full GPU)",
       remediation="Disable MIG (`nvidia-smi -mig 0` and a GPU reset) or move the node to a MIG inventory group.",
       na_when="no GPU on the node supports MIG (mig.mode.current N/A)")
def mig_mode(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    expected, source = ctx.expected(node, "x_mig")
    want = str(expected).lower() in ("enabled", "true", "1") if expected is not None else False
    known = [g for g in node.gpus or () if g.mig_mode is not None]
    for g in node.gpus or ():
        if g.mig_mode is None:
            yield ctx.unknown(node, f"{g.ref} MIG mode not reported by any collected output", subject=g.ref)
    known = [g for g in known if g.mig_mode is not None and g.mig_mode.strip().upper() not in ("N/A", "[N/A]")]  # GPUs without MIG support
    if not known:
        if node.gpus and all(g.mig_mode is not None for g in node.gpus):
            yield ctx.na(node, "no GPU on this node supports MIG (mig.mode.current N/A)")
        return
    bad = [g for g in known if g.mig_mode is not None and (g.mig_mode.strip().lower() == "enabled") != want]
    if not bad:
        yield ctx.ok(node, observed="Enabled" if want else "Disabled",
                     msg=f"MIG {'enabled' if want else 'disabled'} on all {len(known)} GPUs")
    for g in bad:
        if True:
            yield ctx.fail(node, subject=g.ref, observed=g.mig_mode,
                           expected="Enabled" if want else "Disabled", expected_source=source or "default: full GPUs",
                           msg=f"{g.ref} MIG {g.mig_mode}", evidence=(g.raw_line,), hint=ctx.spec.remediation)


_HW_REASONS = ("HW Slowdown", "HW Thermal Slowdown", "HW Power Brake Slowdown")
_SW_THERMAL = ("SW Thermal Slowdown",)


@check(id="gpu.clocks.throttle", group="gpu", needs=("gpus",),
       summary="No GPU is slowed by hardware (HW Slowdown, HW Thermal, HW Power Brake: fail) or by software thermal capping (warn); Idle / application-clock / SW power cap reasons are normal",
       remediation="HW Power Brake means the board's power-brake signal is asserted (PSU or chassis fault); HW/SW thermal means cooling: "
                   "check fans, inlet temperature and airflow, then `nvidia-smi -q -d PERFORMANCE,TEMPERATURE`. A slowed GPU drags every NCCL collective.")
def clocks_throttle(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    gpus = node.gpus or ()
    if not gpus:
        yield ctx.unknown(node, "no GPUs reported: clock event reasons cannot be judged")
    for g in gpus:
        if g.clock_event_reasons is None:
            yield ctx.unknown(node, f"{g.ref} clock event reasons not in the collected outputs "
                                    "(nvidia-smi -q -d PERFORMANCE)", subject=g.ref)
            continue
        hw = [r for r in g.clock_event_reasons if r in _HW_REASONS]
        sw = [r for r in g.clock_event_reasons if r in _SW_THERMAL]
        if hw or sw:
            yield ctx.finding(node, Status.FAIL if hw else Status.WARN, subject=g.ref,
                              observed=", ".join(hw + sw), expected="no HW/thermal slowdown active",
                              expected_source="nvidia-smi clocks event reasons (NVML nvmlClocksEventReasons)",
                              msg=f"{g.ref} clocks slowed: {', '.join(hw + sw)}", evidence=g.evidence, hint=ctx.spec.remediation)
        else:
            yield ctx.ok(node, subject=g.ref,
                         observed=", ".join(g.clock_event_reasons) or "none")


@check(id="gpu.memory.in_use", group="gpu", needs=("gpus",),
       summary="GPUs are free before a deployment: no process holds GPU memory and used memory stays under a small floor (an idle GPU shows a few MiB)",
       remediation="Find the process (`nvidia-smi --query-compute-apps=pid,process_name,used_memory --format=csv`) and stop it, "
                   "or the new job will OOM or run slowly next to it.",
       thresholds={"max_used_mib": 1024},
       threshold_sources={"max_used_mib": "preflight default: idle GPUs report 0-5 MiB used in the recorded outputs (corpus smi/)"})
def gpu_memory_in_use(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    limit, source = ctx.threshold("max_used_mib")
    procs = list(node.gpu_processes or ())
    busy = [g for g in node.gpus or () if g.memory_used_mib is not None and g.memory_used_mib > int(limit)]
    if all(g.memory_used_mib is None for g in node.gpus or ()) and node.gpu_processes is None:
        yield ctx.unknown(node, "GPU memory use not reported by any collected output")
        return
    if busy or procs:
        names = ", ".join(sorted({f"{p.name} (pid {p.pid}, GPU{p.gpu})" for p in procs})) or "unknown processes"
        yield ctx.warn(node, subject=",".join(g.ref for g in busy) or None,
                       observed=", ".join(f"{g.ref} {g.memory_used_mib} MiB" for g in busy) or f"{len(procs)} processes",
                       expected=f"<= {limit} MiB used, no processes", expected_source=source,
                       msg=f"GPUs in use by {names}", evidence=tuple(p.raw_line for p in procs[:8]), hint=ctx.spec.remediation)
    else:
        yield ctx.ok(node, observed="no processes, memory free")


@check(id="gpu.row_remap", group="gpu", needs=("gpus",),
       summary="HBM row remapping: no remapping failure (fail), none pending a GPU reset (warn), uncorrectable remaps under the threshold (`nvidia-smi -q` Remapped Rows)",
       remediation="Pending remaps apply at the next GPU reset: drain and reset the GPU. A remapping failure, or uncorrectable remaps above the "
                   "threshold, means the GPU has run out of spare rows: RMA.",
       thresholds={"max_uncorrectable": 512},
       threshold_sources={"max_uncorrectable": "Azure azurehpc-health-checks azure_gpu_ecc.nhc (remap uncorrectable >512 fails), via shared/reference/thresholds.md"},
       na_when="a GPU's nvidia-smi -q block has no Remapped Rows section (GPUs before Ampere)")
def row_remap(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    gpus = [g for g in node.gpus or () if g.remap_pending is not None]
    for g in node.gpus or ():
        if g.remap_pending is None and g.q_sections is not None and "Remapped Rows" not in g.q_sections:
            yield ctx.na(node, f"{g.ref}: its nvidia-smi -q block has no Remapped Rows section (no row remapper)",
                         subject=g.ref)
        elif g.remap_pending is None:
            yield ctx.unknown(node, f"{g.ref} row-remapper state not in the collected outputs (nvidia-smi -q)",
                              subject=g.ref)
    if not node.gpus:
        yield ctx.unknown(node, "no GPUs reported: row remapping cannot be judged")
    limit, source = ctx.threshold("max_uncorrectable")
    for g in gpus:
        observed = f"pending {'yes' if g.remap_pending else 'no'}, failure {'yes' if g.remap_failure else 'no'}, uncorrectable {g.remap_uncorrectable}"
        evidence = tuple(e for e in g.evidence if "Remapped Rows" in e)
        if g.remap_failure or (g.remap_uncorrectable or 0) > int(limit):
            yield ctx.fail(node, subject=g.ref, observed=observed,
                           expected=f"no failure, uncorrectable <= {limit}", expected_source=source,
                           msg=f"{g.ref} row remapping exhausted or failed", evidence=evidence, hint=ctx.spec.remediation)
        elif g.remap_pending:
            yield ctx.warn(node, subject=g.ref, observed=observed,
                           expected="nothing pending", msg=f"{g.ref} has row remaps pending a GPU reset", evidence=evidence,
                           hint=ctx.spec.remediation)
        else:
            yield ctx.ok(node, subject=g.ref, observed=observed)


@check(id="gpu.temperature", group="gpu", needs=("gpus",),
       summary="Every GPU keeps a margin to its slowdown temperature (`GPU T.Limit Temp` in nvidia-smi -q: degrees left before the driver slows it)",
       remediation="Check cooling: fans, inlet air, blanking panels, a failed chassis fan; a GPU at its limit throttles and slows every collective.",
       thresholds={"min_margin_c": 5},
       threshold_sources={"min_margin_c": "preflight default: a few degrees of headroom before thermal slowdown"})
def temperature(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    gpus = [g for g in node.gpus or () if g.temp_limit_margin_c is not None]
    for g in node.gpus or ():
        if g.temp_limit_margin_c is None:
            yield ctx.unknown(node, f"{g.ref} temperature limit margin (GPU T.Limit Temp) not in the collected "
                                    "outputs (nvidia-smi -q)", subject=g.ref)
    if not node.gpus:
        yield ctx.unknown(node, "no GPUs reported: temperature margin cannot be judged")
    limit, source = ctx.threshold("min_margin_c")
    for g in gpus:
        assert g.temp_limit_margin_c is not None  # `gpus` keeps only these
        observed = f"{g.temperature_c:g} C, {g.temp_limit_margin_c:g} C below the slowdown limit" if g.temperature_c is not None \
            else f"{g.temp_limit_margin_c:g} C below the slowdown limit"
        if g.temp_limit_margin_c < float(limit):
            yield ctx.warn(node, subject=g.ref, observed=observed,
                           expected=f">= {limit} C margin", expected_source=source, msg=f"{g.ref} is close to thermal slowdown",
                           evidence=tuple(e for e in g.evidence if "Temperature" in e), hint=ctx.spec.remediation)
        else:
            yield ctx.ok(node, subject=g.ref, observed=observed)
