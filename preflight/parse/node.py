"""NodeRaw (what the collector sent) -> NodeFacts (typed facts + why anything is missing).

Each fact has an order of sources, best first (e.g. the driver version from nvidia-smi's CSV,
else its table, else /proc/driver/nvidia/version, else NVML). A source that is absent or
unparseable leaves a reason in `missing`, so a check can say *why* it could not judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, TypeVar

from preflight.collect.bundle import NodeRaw
from preflight.facts import GpuFacts, IbPortFacts, MemoryFacts, NodeFacts, NvLinkFacts, TopologyFacts, Versions
from preflight.parse.active import copy_bw_facts, dcgm_facts, ib_loopback_facts
from preflight.parse.common import Unparseable, to_int
from preflight.parse.ib_sysfs import merge_ibstat_sysfs, sysfs_doc, sysfs_ports
from preflight.parse.ibstat import IbStat, parse_ibstat
from preflight.parse.misc_tools import QuerySections, parse_acsctl, parse_fabric, parse_query_sections
from preflight.parse.mlxlink import link_quality_facts
from preflight.parse.nccl_tests import parse_nccl_tests
from preflight.parse.nvidia_smi import (
    GpuRow,
    SmiTable,
    gpus_from_rows,
    gpus_from_table,
    merge_q_sections,
    parse_query_csv,
    parse_table,
    parse_version,
)
from preflight.parse.nvlink import nvlink_facts, parse_nvlink_errors, parse_nvlink_status
from preflight.parse.topo import TopoMatrix, parse_p2p_matrix, parse_topo_matrix, topology_facts
from preflight.parse.versions import (
    MemInfo,
    cuda_from_nvml,
    parse_driver_version_file,
    parse_meminfo,
    parse_nccl_version_from_libs,
    parse_ofed_info,
    parse_os_release,
)
from preflight.parse.xid import parse_kernel_log

T = TypeVar("T")


class _Ctx:
    """Collects `missing` reasons and `unparseable` keys while facts are built."""

    def __init__(self, raw: NodeRaw, memo: dict[Any, Any] | None = None) -> None:
        self.raw = raw
        self.memo = memo  # one judge's: (parser, text) -> what it returned, for texts other nodes print too
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
            return None, f"{tool} timed out" + (f" ({p['note']})" if p.get("note") else "")
        if err == "not run":  # an active test the collector did not start: busy GPUs, no room in the budget
            return None, f"{tool} not run: {p.get('note') or 'no reason given'}"
        if err:
            return None, f"{probe_id}: {err}"
        out = p.get("stdout") or ""
        if p.get("rc") not in (0, None):
            detail = (p.get("stderr") or out).strip().splitlines()
            return None, f"{tool} exited {p.get('rc')}" + (f": {detail[-1][:200]}" if detail else "")
        return out, ""

    def parsed(self, key: str, probe_id: str, parser: Callable[[str], T | Unparseable]) -> T | None:
        text, why = self.text(probe_id)
        if text is None:
            self.missing.setdefault(key, why)
            return None
        result = self.parse(parser, text)
        if isinstance(result, Unparseable):
            self.missing[key] = f"unparseable {probe_id} output: {result.reason}"
            self.unparseable.add(key)
            return None
        return result


    def parse(self, parser: Callable[[str], T], text: str) -> T:
        """`parser(text)`, once per judge for a text any node printed before (a parser is a pure function of the
        text, and what it returns is never changed afterwards). Texts past `_MEMO_MAX_CHARS` (nvidia-smi -q, unique
        per node) are parsed without being kept."""
        memo = self.memo
        if memo is None or len(text) > _MEMO_MAX_CHARS:
            return parser(text)
        key = (_TEXT_KEY, parser, text)
        hit = memo.get(key, _MISS)
        if hit is _MISS:
            hit = memo[key] = parser(text)
        return hit  # type: ignore[no-any-return]


_MEMO_MAX_CHARS = 16_384
_MISS = object()
_TEXT_KEY = "p"


def is_text_key(key: Any) -> bool:
    """True for a memo entry of one probe text's parse (`_Ctx.parse`), False for a whole document's
    (`build_node_facts`): a bounded memo evicts the two kinds apart (session.RunFacts)."""
    return type(key) is tuple and len(key) == 3 and key[0] == _TEXT_KEY


def _gpus(c: _Ctx, rows: list[GpuRow] | None, table: SmiTable | None) -> tuple[GpuFacts, ...] | None:
    """The GPUs from `--query-gpu`, else from the table (which then also answers the `gpus` reason)."""
    if rows is not None:
        return gpus_from_rows(rows)
    if table is not None and table.gpus:
        c.missing.pop("gpus", None)
        c.unparseable.discard("gpus")
        return gpus_from_table(table)
    return None


def _enrich_from_q(c: _Ctx, gpus: tuple[GpuFacts, ...] | None) -> tuple[GpuFacts, ...] | None:
    """Merge `nvidia-smi -q` (full, `-d ECC`, `-d PERFORMANCE`) into the GPUs, matched by PCI bus id."""
    full: QuerySections | None = c.parsed("smi_q", "smi_q", parse_query_sections)
    ecc: QuerySections | None = c.parsed("ecc", "smi_q_ecc", parse_query_sections)
    perf: QuerySections | None = c.parsed("clocks", "smi_q_perf", parse_query_sections)
    if gpus is None or (ecc is None and perf is None and full is None):
        return gpus
    return merge_q_sections(gpus, full, ecc, perf)


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
            cuda = cuda_from_nvml(nvml.get("cuda_driver_version"))
    nccl_text = "\n".join(t for t in (c.text("ldconfig")[0], c.text("nccl_libs")[0]) if t)
    nccl_found = c.parse(parse_nccl_version_from_libs, nccl_text)
    nccl: str | None = None
    if isinstance(nccl_found, Unparseable):
        c.missing["nccl"] = "no libnccl.so in ldconfig or the usual library paths (NCCL may ship inside containers)"
    else:
        nccl = nccl_found
        ev["nccl"] = next((ln.strip() for ln in nccl_text.splitlines() if "libnccl" in ln), "")
    ofed = c.parsed("ofed", "ofed_info", parse_ofed_info)
    kernel_text, _ = c.text("uname")
    osr_text, _ = c.text("os_release")
    osr = c.parse(parse_os_release, osr_text) if osr_text else {}
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


def _nvlink_from_text(text: str) -> tuple[NvLinkFacts, ...] | Unparseable:
    parsed = parse_nvlink_status(text)
    return parsed if isinstance(parsed, Unparseable) else nvlink_facts(parsed)


def _topology_from_text(text: str) -> TopologyFacts | Unparseable:
    m: TopoMatrix | Unparseable = parse_topo_matrix(text)
    return m if isinstance(m, Unparseable) else topology_facts(m)


def _nvlink(c: _Ctx) -> tuple[NvLinkFacts, ...] | None:
    return c.parsed("nvlink", "nvlink_status", _nvlink_from_text)


def _topology(c: _Ctx) -> TopologyFacts | None:
    return c.parsed("topology", "topo", _topology_from_text)


def _ib(c: _Ctx) -> tuple[IbPortFacts, ...] | None:
    """ibstat's ports, plus any port sysfs lists that ibstat did not print (an ibstat cut short is not
    "fewer ports"); sysfs alone when ibstat is absent. No devices only when /sys/class/infiniband is absent."""
    stat: IbStat | None = c.parsed("ib", "ibstat", parse_ibstat)
    sysfs = sysfs_doc(c.text("ib_sysfs")[0])
    if stat is not None:
        ports = merge_ibstat_sysfs(stat, sysfs)
        if not ports and c.raw.probe("ib_sysfs") and (c.raw.probe("ib_sysfs") or {}).get("error") != "absent":
            c.missing["ib"] = "ibstat printed no ports and /sys/class/infiniband was not read"
            return None
        return tuple(ports)
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
    return tuple(sysfs_ports(devices if isinstance(devices, dict) else {}))


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
    fabric = c.parse(parse_fabric, journal) if journal else None
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
        out[name] = {"mtu": to_int(mtu, whole=True), "operstate": attrs.get("operstate"),
                     "type": attrs.get("type")}
    return out


def _acs(c: _Ctx) -> tuple[Any, ...] | None:
    text, why = c.text("lspci_acs")
    if text is None:
        c.missing["acs"] = why
        return None
    entries = c.parse(parse_acsctl, text)
    if isinstance(entries, Unparseable):
        if "<access denied>" in text:  # lspci without root hides every capability
            c.missing["acs"] = "lspci -vvv ran without root: capabilities show <access denied>"
        elif re.search(r"^[0-9a-fA-F]{2,4}:", text, re.M):
            c.na("acs", "lspci -vvv lists the PCIe devices and none has an ACS capability (no ACSCtl lines)")
        else:
            c.missing["acs"] = "lspci -vvv printed no devices"
        return None
    return tuple(entries)


def build_node_facts(raw: NodeRaw, memo: dict[Any, Any] | None = None) -> NodeFacts:
    """Pure: the same NodeRaw always gives the same NodeFacts (replays depend on it).

    `memo` (one judge's): nodes whose collector documents are equal (every probe field but its duration, the
    mode) and whose `gpus_per_node` expectation is the same are parsed once; each gets its own NodeFacts.
    """
    base = dict(name=raw.name, address=raw.address, outcome=raw.outcome, message=raw.message,
                groups=tuple(raw.groups), expect=dict(raw.expect), expect_sources=dict(raw.expect_sources),
                thresholds=dict(raw.thresholds))
    if raw.outcome != "ok" or not raw.collector:
        return NodeFacts(**base)  # type: ignore[arg-type]
    key = _doc_key(raw) if memo is not None else None
    parsed = memo.get(key) if memo is not None and key is not None else None
    if parsed is None:
        parsed = _parse_document(raw, memo)
        if memo is not None and key is not None:
            memo[key] = parsed
    facts, missing, unparseable, not_applicable, probe_gaps = parsed
    return NodeFacts(**base, **facts, missing=dict(missing), unparseable=unparseable,  # type: ignore[arg-type]
                     not_applicable=not_applicable, probe_gaps=dict(probe_gaps),
                     clock_offset_s=(round(float(raw.collector["started"]) - raw.started, 3)
                                     if isinstance(raw.collector.get("started"), (int, float)) and raw.started
                                     else None),
                     collect_latency_s=raw.duration_s)


def _frozen(value: Any) -> Any:
    """A hashable stand-in of a JSON-like value, equal only when the values are equal, of the same types and (dicts)
    in the same order: a stricter key than equality never shares a parse that should not be shared."""
    kind = type(value)
    if kind is str:
        return value
    if kind is dict:
        return ("d", tuple((k, _frozen(v)) for k, v in value.items()))
    if kind is list or kind is tuple:
        return ("l", tuple(_frozen(v) for v in value))
    if value is None or kind in (int, float, bool):
        return (kind, value)  # 1 == 1.0 == True as dict keys; a parser may tell them apart
    return ("r", kind, repr(value))


def _doc_key(raw: NodeRaw) -> Any:
    """What `_parse_document` reads: the probes (but their durations), the collector mode, gpus_per_node."""
    doc = raw.collector or {}
    probes = doc.get("probes")
    if type(probes) is not dict:
        return None
    frozen = tuple((pid, ("d", tuple((k, _frozen(v)) for k, v in p.items() if k != "duration_s"))
                    if type(p) is dict else _frozen(p)) for pid, p in probes.items())
    return (frozen, _frozen(doc.get("mode")), _frozen(raw.expect.get("gpus_per_node")),
            _frozen(raw.expect_sources.get("gpus_per_node")))


def _parse_document(raw: NodeRaw, memo: dict[Any, Any] | None = None) -> tuple[dict[str, Any], dict[str, str], frozenset[str], frozenset[str],
                                           dict[str, str]]:
    """The facts of an ok node's collector document, with why any is missing (see `build_node_facts`)."""
    assert raw.collector is not None
    c = _Ctx(raw, memo)
    rows = c.parsed("gpus", "smi_query", parse_query_csv)
    table = c.parsed("smi_table", "smi_table", parse_table)
    gpus = _enrich_from_q(c, _gpus(c, rows, table))
    if gpus is None and table is not None and not table.gpus:
        c.missing["gpus"] = "nvidia-smi lists no GPUs"
    versions = _versions(c, rows, table)
    kernel_text, why = c.text("kernel_log")
    events = c.parse(parse_kernel_log, kernel_text) if kernel_text is not None else None
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
        dcgm=dcgm_facts(c),
        copy_bw=copy_bw_facts(c),
        ib_loopback=ib_loopback_facts(c),
        link_quality=link_quality_facts(c),
        p2p=c.parsed("p2p", "p2p_read", parse_p2p_matrix),
        acs=_acs(c),
        netifs=_netifs(c),
        resolved=_json_probe(c, "resolved", "resolve"),
        fabricmanager=_fabricmanager(c),
        nvlink_errors=c.parsed("nvlink_errors", "nvlink_errors", parse_nvlink_errors),
        gpu_processes=table.processes if table is not None else None,
        collector_mode=raw.collector.get("mode"),
    )
    if gpus is None and _no_gpus_expected(raw):
        why = f"the inventory says this node has no GPUs (gpus_per_node: 0, {raw.expect_sources.get('gpus_per_node', 'inventory')})"
        for key in GPU_FACTS:
            if facts.get(key) is None:
                c.na(key, why)
        c.unparseable.difference_update(GPU_FACTS)
    return facts, c.missing, frozenset(c.unparseable), frozenset(c.not_applicable), c.probe_gaps


# Facts that exist only where there are NVIDIA GPUs: on a node the inventory declares GPU-less they do not apply.
# (acs and peermem: PCIe peer-to-peer and GPUDirect RDMA need a GPU at one end)
GPU_FACTS = ("gpus", "topology", "nvlink", "nvlink_errors", "p2p", "fabricmanager", "gpu_processes", "nccl_tests", "xid",
             "acs", "peermem", "dcgm", "copy_bw")


def _no_gpus_expected(raw: NodeRaw) -> bool:
    value = raw.expect.get("gpus_per_node")
    return value is not None and str(value).strip() == "0"
