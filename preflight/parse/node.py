"""NodeRaw (what the collector sent) -> NodeFacts (typed facts + why anything is missing).

Each fact has an order of sources, best first (e.g. the driver version from nvidia-smi's CSV,
else its table, else /proc/driver/nvidia/version, else NVML). A source that is absent or
unparseable leaves a reason in `missing`, so a check can say *why* it could not judge.
"""

from __future__ import annotations

import json
import re
from typing import Any

from preflight.collect.bundle import NodeRaw
from preflight.facts import GpuFacts, IbPortFacts, MemoryFacts, NodeFacts, NvLinkFacts, TopologyFacts, Versions
from preflight.parse.common import Unparseable
from preflight.parse.ibstat import IbStat, parse_ibstat
from preflight.parse.misc_tools import QuerySections, parse_acsctl, parse_fabric, parse_query_sections
from preflight.parse.nccl_tests import parse_nccl_tests
from preflight.parse.nvidia_smi import GpuRow, SmiTable, normalize_bus_id, parse_query_csv, parse_table, parse_version
from preflight.parse.nvlink import parse_nvlink_errors, parse_nvlink_status
from preflight.parse.topo import TopoMatrix, parse_p2p_matrix, parse_topo_matrix
from preflight.parse.versions import (
    MemInfo,
    parse_driver_version_file,
    parse_meminfo,
    parse_nccl_version_from_libs,
    parse_ofed_info,
    parse_os_release,
)
from preflight.parse.xid import parse_kernel_log


class _Ctx:
    """Collects `missing` reasons and `unparseable` keys while facts are built."""

    def __init__(self, raw: NodeRaw) -> None:
        self.raw = raw
        self.missing: dict[str, str] = {}
        self.unparseable: set[str] = set()
        self.not_applicable: set[str] = set()
        self.probe_gaps: dict[str, str] = {}  # probe id -> why it gave no output ("absent", "timeout", "exit 9: ...")

    def na(self, key: str, why: str) -> None:
        """Fact `key` does not apply to this node, because `why` (evidence, not silence)."""
        self.missing[key] = why
        self.not_applicable.add(key)

    def text(self, probe_id: str) -> tuple[str | None, str]:
        """(stdout, "") when the probe produced output, else (None, why) (also kept in `probe_gaps`)."""
        text, why = self._text(probe_id)
        if text is None and self.raw.probe(probe_id) is not None:
            self.probe_gaps[probe_id] = why
        return text, why

    def _text(self, probe_id: str) -> tuple[str | None, str]:
        p = self.raw.probe(probe_id)
        if p is None:
            return None, f"{probe_id} not collected"
        err = p.get("error")
        argv = p.get("argv") or []
        tool = argv[0] if argv else probe_id
        if err == "absent":
            return None, f"{tool} not found on the node" if p.get("kind") in ("cmd", "") else f"{probe_id}: not present"
        if err == "timeout":
            return None, f"{tool} timed out"
        if err:
            return None, f"{probe_id}: {err}"
        out = p.get("stdout") or ""
        if p.get("rc") not in (0, None):
            detail = (p.get("stderr") or out).strip().splitlines()
            return None, f"{tool} exited {p.get('rc')}" + (f": {detail[-1][:200]}" if detail else "")
        return out, ""

    def parsed(self, key: str, probe_id: str, parser: Any) -> Any:
        text, why = self.text(probe_id)
        if text is None:
            self.missing.setdefault(key, why)
            return None
        result = parser(text)
        if isinstance(result, Unparseable):
            self.missing[key] = f"unparseable {probe_id} output: {result.reason}"
            self.unparseable.add(key)
            return None
        return result


def _cuda_from_nvml(value: Any) -> str | None:
    if isinstance(value, int) and value > 0:
        return f"{value // 1000}.{(value % 1000) // 10}"
    return None


def _gpus(c: _Ctx, rows: list[GpuRow] | None, table: SmiTable | None) -> tuple[GpuFacts, ...] | None:
    if rows is not None:
        return tuple(
            GpuFacts(index=r.index if r.index is not None else i, name=r.name, uuid=r.uuid, bus_id=r.pci_bus_id,
                     serial=r.serial, driver_version=r.driver_version, vbios_version=r.vbios_version,
                     memory_total_mib=r.memory_total_mib, memory_used_mib=r.memory_used_mib,
                     persistence_mode=r.persistence_mode, mig_mode=r.mig_mode, ecc_mode=r.ecc_mode,
                     ecc_uncorrected_volatile=r.ecc_uncorrected_volatile,
                     ecc_uncorrected_aggregate=r.ecc_uncorrected_aggregate, pcie_gen_current=r.pcie_gen_current,
                     pcie_gen_max=r.pcie_gen_max, pcie_width_current=r.pcie_width_current,
                     pcie_width_max=r.pcie_width_max, temperature_c=r.temperature_c, raw_line=r.raw_line)
            for i, r in enumerate(rows)
        )
    if table is not None and table.gpus:
        c.missing.pop("gpus", None)
        c.unparseable.discard("gpus")
        return tuple(
            GpuFacts(index=g.index, name=g.name, bus_id=normalize_bus_id(g.bus_id) if g.bus_id else None, memory_total_mib=g.memory_total_mib,
                     memory_used_mib=g.memory_used_mib, driver_version=table.driver_version,
                     persistence_mode=(g.persistence == "On") if g.persistence else None,
                     ecc_uncorrected_volatile=g.ecc_uncorrected_volatile, mig_mode=g.mig_mode,
                     temperature_c=float(g.temperature_c) if g.temperature_c is not None else None,
                     raw_line=g.raw_lines[0] if g.raw_lines else "")
            for g in table.gpus
        )
    return None


def _int(value: Any) -> int | None:
    m = re.match(r"\s*(-?\d+)", str(value or ""))
    return int(m.group(1)) if m else None


def _merge_full(g: GpuFacts, tree: dict[str, Any], changes: dict[str, Any], evidence: list[str]) -> None:
    """Facts only the full `nvidia-smi -q` has: PCIe link, row remapping, temperature margin, fabric state."""
    link = (tree.get("PCI") or {}).get("GPU Link Info") or {}
    gen, width = link.get("PCIe Generation") or {}, link.get("Link Width") or {}
    for field, value in (("pcie_gen_current", gen.get("Current")), ("pcie_gen_max", gen.get("Max")),
                         ("pcie_width_current", width.get("Current")), ("pcie_width_max", width.get("Max"))):
        if getattr(g, field) is None and _int(value) is not None:
            changes[field] = _int(value)
    if width:
        evidence.append(f"GPU {g.bus_id} PCIe: Gen {gen.get('Current')}/{gen.get('Max')}, width {width.get('Current')}/{width.get('Max')}")
    remap = tree.get("Remapped Rows")
    if isinstance(remap, dict) and remap:
        changes["remap_pending"] = str(remap.get("Pending", "")).strip().lower() == "yes"
        changes["remap_failure"] = str(remap.get("Remapping Failure Occurred", "")).strip().lower() == "yes"
        changes["remap_uncorrectable"] = _int(remap.get("Uncorrectable Error"))
        evidence.append(f"GPU {g.bus_id} Remapped Rows: pending {remap.get('Pending')}, failure {remap.get('Remapping Failure Occurred')}, "
                        f"uncorrectable {remap.get('Uncorrectable Error')}")
    temp = tree.get("Temperature") or {}
    if isinstance(temp, dict) and _int(temp.get("GPU T.Limit Temp")) is not None:
        changes["temp_limit_margin_c"] = float(_int(temp.get("GPU T.Limit Temp")) or 0)
        if g.temperature_c is None and _int(temp.get("GPU Current Temp")) is not None:
            changes["temperature_c"] = float(_int(temp.get("GPU Current Temp")) or 0)
        evidence.append(f"GPU {g.bus_id} Temperature: current {temp.get('GPU Current Temp')}, T.Limit {temp.get('GPU T.Limit Temp')}")
    fabric = tree.get("Fabric")
    if isinstance(fabric, dict) and fabric.get("State"):
        changes["fabric_state"] = f"{fabric.get('State')} / {fabric.get('Status')}"
        evidence.append(f"GPU {g.bus_id} Fabric: State {fabric.get('State')}, Status {fabric.get('Status')}")
        health = fabric.get("Health")
        if isinstance(health, dict) and health:  # GB200/GB300: Summary, Bandwidth, Route Recovery in progress...
            rows = tuple((str(k), str(v)) for k, v in health.items() if not isinstance(v, dict))
            changes["fabric_health"] = health.get("Summary") if isinstance(health.get("Summary"), str) else None
            changes["fabric_health_fields"] = rows
            evidence.append(f"GPU {g.bus_id} Fabric Health: " + ", ".join(f"{k} {v}" for k, v in rows))
    if g.vbios_version is None and tree.get("VBIOS Version"):
        changes["vbios_version"] = str(tree["VBIOS Version"])
    if g.persistence_mode is None and tree.get("Persistence Mode"):
        changes["persistence_mode"] = str(tree["Persistence Mode"]).lower() == "enabled"
    mig = tree.get("MIG Mode")
    if g.mig_mode is None and isinstance(mig, dict) and mig.get("Current"):
        changes["mig_mode"] = mig["Current"]


_UNCORRECTABLE = re.compile(r"uncorrectable|double bit", re.I)


def _sum_uncorrectable(section: Any) -> int | None:
    """Uncorrectable ECC counts in an `ECC Errors > Volatile|Aggregate` subtree (SRAM + DRAM, or old 'Double Bit')."""
    if not isinstance(section, dict):
        return None
    total, seen = 0, False
    for key, value in section.items():
        if isinstance(value, dict):
            sub = _sum_uncorrectable(value) if _UNCORRECTABLE.search(key) else None
            if sub is not None:
                total, seen = total + sub, True
            continue
        if (_UNCORRECTABLE.search(key) or key.strip().lower() == "total") and str(value).strip().isdigit():
            total, seen = total + int(value), True
    return total if seen else None


# Reasons that mean the GPU is being slowed by a fault or the environment, not by being idle or by settings
BAD_CLOCK_REASONS = ("HW Slowdown", "HW Thermal Slowdown", "HW Power Brake Slowdown", "SW Thermal Slowdown")


def _enrich_from_q(c: _Ctx, gpus: tuple[GpuFacts, ...] | None) -> tuple[GpuFacts, ...] | None:
    """Merge `nvidia-smi -q -d ECC` / `-d PERFORMANCE` sections into the GPUs, matched by PCI bus id."""
    import dataclasses

    full: QuerySections | None = c.parsed("smi_q", "smi_q", parse_query_sections)
    ecc: QuerySections | None = c.parsed("ecc", "smi_q_ecc", parse_query_sections)
    perf: QuerySections | None = c.parsed("clocks", "smi_q_perf", parse_query_sections)
    if gpus is None or (ecc is None and perf is None and full is None):
        return gpus
    out = []
    for g in gpus:
        changes: dict[str, Any] = {}
        evidence: list[str] = []
        done: set[str] = set()  # the full -q answers a section: the -d ECC/PERFORMANCE copies add nothing
        for sections, kind in ((full, "ecc"), (full, "perf"), (full, "full"), (ecc, "ecc"), (perf, "perf")):
            if sections is None or kind in done:
                continue
            tree = next((t for bus, t in sections.gpus.items() if g.bus_id and normalize_bus_id(bus) == normalize_bus_id(g.bus_id)), None)
            if tree is None:
                continue
            done.add(kind)
            if kind == "full":
                changes["q_sections"] = frozenset(k for k in tree if isinstance(k, str))
                _merge_full(g, tree, changes, evidence)
                continue
            if kind == "ecc":
                errors = tree.get("ECC Errors", {})
                vol = _sum_uncorrectable(errors.get("Volatile"))
                agg = _sum_uncorrectable(errors.get("Aggregate"))
                # sources disagreeing on an error counter: an error any source saw is real (the table's
                # "Volatile Uncorr. ECC" column can lag the -q section, or show only part of it)
                if vol is not None and (g.ecc_uncorrected_volatile is None or vol > g.ecc_uncorrected_volatile):
                    changes["ecc_uncorrected_volatile"] = vol
                if agg is not None and (g.ecc_uncorrected_aggregate is None or agg > g.ecc_uncorrected_aggregate):
                    changes["ecc_uncorrected_aggregate"] = agg
                mode = tree.get("ECC Mode", {})
                if g.ecc_mode is None and isinstance(mode, dict) and mode.get("Current"):
                    changes["ecc_mode"] = mode["Current"].lower() == "enabled"
                evidence.append(f"GPU {g.bus_id} ECC Errors: volatile uncorrectable {vol}, aggregate uncorrectable {agg}")
            else:
                reasons = tree.get("Clocks Event Reasons") or tree.get("Clocks Throttle Reasons") or {}
                if isinstance(reasons, dict):
                    active = tuple(k for k, v in reasons.items() if isinstance(v, str) and v.strip() == "Active")
                    changes["clock_event_reasons"] = active
                    evidence.append(f"GPU {g.bus_id} Clocks Event Reasons active: {', '.join(active) or 'none'}")
        if changes:
            changes["evidence"] = g.evidence + tuple(evidence)
            g = dataclasses.replace(g, **changes)
        out.append(g)
    return tuple(out)


def _versions(c: _Ctx, rows: list[GpuRow] | None, table: SmiTable | None) -> Versions:
    ev: dict[str, str] = {}
    driver = source = None
    row_drivers = sorted({r.driver_version for r in rows or () if r.driver_version})
    if row_drivers:
        driver, source = " + ".join(row_drivers), "nvidia-smi --query-gpu"
        ev["driver"] = next(r.raw_line for r in rows or () if r.driver_version)
    elif table is not None and table.driver_version:
        driver, source = table.driver_version, "nvidia-smi"
        ev["driver"] = table.header_line
    else:
        proc = c.parsed("driver_file", "driver_version_file", parse_driver_version_file)
        if proc:
            driver, source = proc, "/proc/driver/nvidia/version"
            ev["driver"] = (c.text("driver_version_file")[0] or "").strip().splitlines()[0]
    cuda = table.cuda_version if table is not None else None
    if cuda:
        ev["cuda"] = table.header_line if table else ""
    if cuda is None:
        ver = c.parsed("smi_version", "smi_version", parse_version)
        cuda = ver.cuda if ver else None
    nvml = _nvml_doc(c)
    if nvml:
        if driver is None and isinstance(nvml.get("driver_version"), str):
            driver, source = nvml["driver_version"], "NVML"
        if cuda is None:
            cuda = _cuda_from_nvml(nvml.get("cuda_driver_version"))
    nccl_text = "\n".join(t for t in (c.text("ldconfig")[0], c.text("nccl_libs")[0]) if t)
    nccl = parse_nccl_version_from_libs(nccl_text)
    if isinstance(nccl, Unparseable):
        c.missing["nccl"] = "no libnccl.so in ldconfig or the usual library paths (NCCL may ship inside containers)"
        nccl = None
    else:
        ev["nccl"] = next((ln.strip() for ln in nccl_text.splitlines() if "libnccl" in ln), "")
    ofed = c.parsed("ofed", "ofed_info", parse_ofed_info)
    kernel_text, _ = c.text("uname")
    osr_text, _ = c.text("os_release")
    osr = parse_os_release(osr_text) if osr_text else {}
    if driver is None:
        c.missing["driver"] = c.missing.get("gpus") or "no driver version from nvidia-smi, /proc or NVML"
    return Versions(driver=driver, driver_source=source, cuda=cuda, nccl=nccl, ofed=ofed,
                    kernel=kernel_text.strip() if kernel_text else None,
                    os=osr.get("PRETTY_NAME") or None, evidence=ev)


def _nvml_doc(c: _Ctx) -> dict[str, Any] | None:
    text, _ = c.text("nvml")
    if not text:
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) and "nvml_error" not in doc else None


def _nvlink(c: _Ctx) -> tuple[NvLinkFacts, ...] | None:
    parsed = c.parsed("nvlink", "nvlink_status", parse_nvlink_status)
    if parsed is None:
        return None
    out = []
    for g in parsed:
        inactive = tuple(l.link for l in g.links if not l.active)
        speeds = {l.speed_gbps for l in g.links if l.speed_gbps}
        evidence = tuple(l.raw_line for l in g.links if not l.active) or g.raw_lines[:1]
        if g.note:
            evidence = (g.raw_lines[0], g.note) if g.raw_lines else (g.note,)
        out.append(NvLinkFacts(gpu_index=g.index, active=g.active, total=len(g.links), inactive_links=inactive,
                               speed_gbps=min(speeds) if speeds else None,
                               evidence=((g.raw_lines[0],) if g.raw_lines and inactive else ()) + evidence))
    return tuple(out)


def _topology(c: _Ctx) -> TopologyFacts | None:
    m: TopoMatrix | None = c.parsed("topology", "topo", parse_topo_matrix)
    if m is None:
        return None
    pairs = m.gpu_pairs()
    signature = ";".join(f"{i}-{j}:{k}" for (i, j), k in sorted(pairs.items()))
    aff = {int(g[3:]): v for g, v in m.gpu_nic_affinity().items()}
    evidence = tuple(m.raw_rows[g] for g in m.gpus if g in m.raw_rows)
    return TopologyFacts(gpu_count=len(m.gpus), links=pairs, nvlink_domain=m.nvlink_domain_size(),
                         signature=signature, nic_affinity=aff, fragment=m.fragment, evidence=evidence, matrix=m,
                         partial=m.partial)


_SYSFS_STATE = {"1": "Down", "2": "Initializing", "3": "Armed", "4": "Active", "5": "Active Defer"}
_SYSFS_PHYS = {"1": "Sleep", "2": "Polling", "3": "Disabled", "4": "PortConfigurationTraining", "5": "LinkUp",
               "6": "LinkErrorRecovery", "7": "Phy Test"}


def _ib(c: _Ctx) -> tuple[IbPortFacts, ...] | None:
    """ibstat's ports, plus any port sysfs lists that ibstat did not print (an ibstat cut short is not
    "fewer ports"); sysfs alone when ibstat is absent. No devices only when /sys/class/infiniband is absent."""
    stat: IbStat | None = c.parsed("ib", "ibstat", parse_ibstat)
    sysfs = _ib_sysfs_doc(c)
    if stat is not None:
        ports = [IbPortFacts(ca=ca.name, port=p.number, state=p.state, phys_state=p.phys_state, rate_gbps=p.rate_gbps,
                             link_layer=p.link_layer, firmware=ca.firmware, evidence=p.raw_lines,
                             counters=_counters(sysfs, ca.name, p.number),
                             pcie=dict((sysfs.get(ca.name) or {}).get("pcie") or {}))
                 for ca in stat.cas for p in ca.ports]
        seen = {(p.ca, p.port) for p in ports}
        extra = [p for p in _sysfs_ports(sysfs) if (p.ca, p.port) not in seen]
        if not ports and not extra and c.raw.probe("ib_sysfs") and (c.raw.probe("ib_sysfs") or {}).get("error") != "absent":
            c.missing["ib"] = "ibstat printed no ports and /sys/class/infiniband was not read"
            return None
        return tuple(ports + extra)
    if "ib" in c.unparseable:
        return None
    text, why = c.text("ib_sysfs")
    probe = c.raw.probe("ib_sysfs") or {}
    if text is None and probe.get("error") == "absent":
        # no ibstat ports and no /sys/class/infiniband at all: this node has no IB/RoCE devices
        c.missing.pop("ib", None)
        return ()
    if text is None:  # the listing timed out or failed: that is not "no ports"
        c.missing["ib"] = f"{c.missing.get('ib', 'ibstat not read')}; /sys/class/infiniband: {why}"
        return None
    try:
        devices = json.loads(text)
    except ValueError:
        c.missing["ib"] = "unparseable /sys/class/infiniband listing"
        c.unparseable.add("ib")
        return None
    c.missing.pop("ib", None)
    return tuple(_sysfs_ports(devices if isinstance(devices, dict) else {}))


def _sysfs_ports(devices: dict[str, Any]) -> list[IbPortFacts]:
    ports = []
    for dev, entry in sorted(devices.items()):
        if not isinstance(entry, dict):
            continue
        for port, attrs in sorted((entry.get("ports") or {}).items()):
            if not isinstance(attrs, dict):
                continue
            state = str(attrs.get("state") or "")
            phys = str(attrs.get("phys_state") or "")
            rate = re.match(r"\s*([\d.]+)", str(attrs.get("rate") or ""))
            ports.append(IbPortFacts(
                ca=dev, port=int(port) if str(port).isdigit() else 0,
                state=_SYSFS_STATE.get(state.split(":")[0].strip(), state or None),
                phys_state=_SYSFS_PHYS.get(phys.split(":")[0].strip(), phys or None),
                rate_gbps=float(rate.group(1)) if rate else None, link_layer=attrs.get("link_layer"),
                firmware=entry.get("fw_ver"), counters=_counters(devices, dev, int(port) if str(port).isdigit() else 0),
                pcie=dict(entry.get("pcie") or {}),
                evidence=(f"/sys/class/infiniband/{dev}/ports/{port}: state={state} phys_state={phys} rate={attrs.get('rate')}",),
            ))
    return ports


def _ib_sysfs_doc(c: _Ctx) -> dict[str, Any]:
    text, _ = c.text("ib_sysfs")
    try:
        doc = json.loads(text) if text else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _counters(doc: dict[str, Any], ca: str, port: int) -> dict[str, int]:
    raw = ((doc.get(ca) or {}).get("ports") or {}).get(str(port), {}).get("counters") or {}
    return {k: int(v) for k, v in raw.items() if str(v).strip().isdigit()}


def _memory(c: _Ctx) -> MemoryFacts | None:
    mem: MemInfo | None = c.parsed("memory", "meminfo", parse_meminfo)
    shm_text, _ = c.text("shm")
    lock_text, _ = c.text("memlock")
    shm, lock = _json_object(c, "shm", shm_text), _json_object(c, "memlock", lock_text)
    shm_probe = c.raw.probe("shm") or {}
    shm_absent = "No such file" in str(shm_probe.get("error") or "") or "Errno 2]" in str(shm_probe.get("error") or "")
    if mem is None and not shm and not lock and not shm_absent:
        return None
    return MemoryFacts(mem_total_kib=mem.mem_total_kib if mem else None,
                       hugepages_total=mem.hugepages_total if mem else None,
                       hugepages_free=mem.hugepages_free if mem else None,
                       hugepage_size_kib=mem.hugepage_size_kib if mem else None,
                       shm_size_bytes=shm.get("size_bytes"), shm_absent=shm_absent,
                       memlock_unlimited=lock.get("unlimited_soft"),
                       memlock_bytes=lock.get("soft"))


def _json_object(c: _Ctx, probe_id: str, text: str | None) -> dict[str, Any]:
    """A builtin probe's JSON object; {} (and the reason kept) when it is missing or cut short."""
    if not text:
        return {}
    try:
        doc = json.loads(text)
    except ValueError:
        c.probe_gaps[probe_id] = f"unparseable {probe_id} output (cut short?)"
        return {}
    return doc if isinstance(doc, dict) else {}


def _nccl(c: _Ctx) -> tuple[Any, ...] | None:
    runs = []
    for pid in ("nccl_allreduce", "nccl_allreduce_repeat"):
        if c.raw.probe(pid) is None:
            continue
        result = c.parsed("nccl_tests", pid, parse_nccl_tests)
        if result is None:
            return None  # missing/unparseable reason recorded by c.parsed
        runs.append(result)
    if not runs:
        c.na("nccl_tests", "nccl-tests not run (pass --nccl to measure all-reduce bandwidth)")
        return None
    return tuple(runs)


def _fabricmanager(c: _Ctx) -> tuple[str, tuple[str, ...]] | None:
    """`systemctl is-active` exits non-zero for inactive/failed units but still prints the state word."""
    p = c.raw.probe("fm_active")
    if p is None or p.get("error"):
        c.missing["fabricmanager"] = "systemctl not available" if p else "fm_active not collected"
        return None
    state = (p.get("stdout") or "").strip().splitlines()
    journal, _ = c.text("fm_journal")
    fabric = parse_fabric(journal) if journal else None
    lines = fabric.messages if fabric is not None and not isinstance(fabric, Unparseable) else ()
    return (state[0] if state else "unknown", tuple(lines))


def _json_probe(c: _Ctx, key: str, probe_id: str) -> Any:
    text, why = c.text(probe_id)
    if text is None:
        if "not present" in why:
            c.na(key, "no peer host names to resolve (the inventory uses addresses)")
        else:
            c.missing[key] = why
        return None
    try:
        return json.loads(text)
    except ValueError:
        c.missing[key] = f"unparseable {probe_id} output"
        c.unparseable.add(key)
        return None


def _netifs(c: _Ctx) -> dict[str, dict[str, Any]] | None:
    text, why = c.text("netifs")
    if text is None:
        c.missing["netifs"] = why
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        c.missing["netifs"] = "unparseable /sys/class/net listing"
        c.unparseable.add("netifs")
        return None
    out: dict[str, dict[str, Any]] = {}
    for name, attrs in doc.items():
        mtu = str(attrs.get("mtu") or "")
        out[name] = {"mtu": int(mtu) if mtu.isdigit() else None, "operstate": attrs.get("operstate"),
                     "type": attrs.get("type")}
    return out


def _acs(c: _Ctx) -> tuple[Any, ...] | None:
    text, why = c.text("lspci_acs")
    if text is None:
        c.missing["acs"] = why
        return None
    entries = parse_acsctl(text)
    if isinstance(entries, Unparseable):
        if "<access denied>" in text:  # lspci without root hides every capability
            c.missing["acs"] = "lspci -vvv ran without root: capabilities show <access denied>"
        elif re.search(r"^[0-9a-fA-F]{2,4}:", text, re.M):
            c.na("acs", "lspci -vvv lists the PCIe devices and none has an ACS capability (no ACSCtl lines)")
        else:
            c.missing["acs"] = "lspci -vvv printed no devices"
        return None
    return tuple(entries)


def build_node_facts(raw: NodeRaw) -> NodeFacts:
    """Pure: the same NodeRaw always gives the same NodeFacts (replays depend on it)."""
    base = dict(name=raw.name, address=raw.address, outcome=raw.outcome, message=raw.message,
                groups=tuple(raw.groups), expect=dict(raw.expect), expect_sources=dict(raw.expect_sources),
                thresholds=dict(raw.thresholds))
    if raw.outcome != "ok" or not raw.collector:
        return NodeFacts(**base)  # type: ignore[arg-type]
    c = _Ctx(raw)
    rows = c.parsed("gpus", "smi_query", parse_query_csv)
    table = c.parsed("smi_table", "smi_table", parse_table)
    gpus = _enrich_from_q(c, _gpus(c, rows, table))
    if gpus is None and table is not None and not table.gpus:
        c.missing["gpus"] = "nvidia-smi lists no GPUs"
    versions = _versions(c, rows, table)
    kernel_text, why = c.text("kernel_log")
    events = parse_kernel_log(kernel_text) if kernel_text is not None else None
    if events is None:
        c.missing["xid"] = why
    peer = raw.probe("peermem")
    peermem = None if peer is None else (peer.get("error") is None and bool((peer.get("stdout") or "").strip()))
    facts = dict(
        versions=versions,
        gpus=gpus,
        nvlink=_nvlink(c),
        topology=_topology(c),
        ib=_ib(c),
        memory=_memory(c),
        xid=events.xids if events is not None else None,
        kernel_events=events.others if events is not None else (),
        peermem=peermem,
        nccl_tests=_nccl(c),
        p2p=c.parsed("p2p", "p2p_read", parse_p2p_matrix),
        acs=_acs(c),
        netifs=_netifs(c),
        resolved=_json_probe(c, "resolved", "resolve"),
        fabricmanager=_fabricmanager(c),
        nvlink_errors=c.parsed("nvlink_errors", "nvlink_errors", parse_nvlink_errors),
        gpu_processes=table.processes if table is not None else None,
        clock_offset_s=(round(float(raw.collector["started"]) - raw.started, 3)
                        if isinstance(raw.collector.get("started"), (int, float)) and raw.started else None),
        collect_latency_s=raw.duration_s,
        collector_mode=raw.collector.get("mode"),
    )
    if gpus is None and _no_gpus_expected(raw):
        why = f"the inventory says this node has no GPUs (gpus_per_node: 0, {raw.expect_sources.get('gpus_per_node', 'inventory')})"
        for key in GPU_FACTS:
            if facts.get(key) is None:
                c.na(key, why)
        c.unparseable.difference_update(GPU_FACTS)
    return NodeFacts(**base, **facts, missing=dict(c.missing), unparseable=frozenset(c.unparseable),  # type: ignore[arg-type]
                     not_applicable=frozenset(c.not_applicable), probe_gaps=dict(c.probe_gaps))


# Facts that exist only where there are NVIDIA GPUs: on a node the inventory declares GPU-less they do not apply.
# (acs and peermem: PCIe peer-to-peer and GPUDirect RDMA need a GPU at one end)
GPU_FACTS = ("gpus", "topology", "nvlink", "nvlink_errors", "p2p", "fabricmanager", "gpu_processes", "nccl_tests", "xid",
             "acs", "peermem")


def _no_gpus_expected(raw: NodeRaw) -> bool:
    value = raw.expect.get("gpus_per_node")
    return value is not None and str(value).strip() == "0"
