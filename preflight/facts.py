"""Parsed facts of a node and of the fleet: typed values, or None plus the reason why.

The end of this module holds what fact values *mean* (the Xid catalogue, the fabric Health verdict, the P2P
legend): parsers and checks both need it, and both may import this module.
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class GpuFacts:
    index: int
    name: str | None = None
    uuid: str | None = None
    bus_id: str | None = None
    serial: str | None = None
    driver_version: str | None = None
    vbios_version: str | None = None
    memory_total_mib: int | None = None
    memory_used_mib: int | None = None
    persistence_mode: bool | None = None
    mig_mode: str | None = None
    ecc_mode: bool | None = None
    ecc_uncorrected_volatile: int | None = None
    ecc_uncorrected_aggregate: int | None = None
    pcie_gen_current: int | None = None
    pcie_gen_max: int | None = None
    pcie_width_current: int | None = None
    pcie_width_max: int | None = None
    temperature_c: float | None = None
    clock_event_reasons: tuple[str, ...] | None = None  # active reasons from `nvidia-smi -q -d PERFORMANCE`
    remap_pending: bool | None = None  # row remapping pending (applied at the next GPU reset)
    remap_failure: bool | None = None  # row remapping failed: the GPU ran out of spare rows
    remap_uncorrectable: int | None = None  # rows remapped for uncorrectable errors
    temp_limit_margin_c: float | None = None  # `GPU T.Limit Temp`: degrees left before slowdown
    fabric_state: str | None = None  # `Fabric > State / Status` (NVSwitch systems), e.g. "Completed / Success"
    fabric_health: str | None = None  # `Fabric > Health > Summary` as printed (Healthy / Unhealthy / N/A), if any
    fabric_health_fields: tuple[tuple[str, str], ...] = ()  # every `Fabric > Health` row: Bandwidth, Route Unhealthy...
    # `Fabric > ClusterUUID / CliqueId`: GPUs sharing both are in one multi-node NVLink domain (GB200/GB300 NVL72);
    # None when N/A or unassigned (all-zero UUID, as single-node NVSwitch systems print)
    fabric_cluster_uuid: str | None = None
    fabric_clique_id: str | None = None
    q_sections: frozenset[str] | None = None  # top-level sections of this GPU's full `nvidia-smi -q` block, if read
    raw_line: str = ""
    evidence: tuple[str, ...] = ()  # extra raw lines (e.g. the -q sections that were judged)

    @property
    def ref(self) -> str:
        return f"GPU{self.index}"


@dataclass(frozen=True)
class NvLinkFacts:
    """NVLink state of one GPU from `nvidia-smi nvlink -s` (or NVML)."""

    gpu_index: int
    active: int
    total: int
    inactive_links: tuple[int, ...] = ()
    speed_gbps: float | None = None  # per link, GB/s as printed
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class IbPortFacts:
    ca: str
    port: int
    state: str | None
    phys_state: str | None
    rate_gbps: float | None
    link_layer: str | None
    firmware: str | None = None
    evidence: tuple[str, ...] = ()
    counters: dict[str, int] = field(default_factory=dict)  # sysfs ports/N/counters (since boot or last reset)
    pcie: dict[str, str] = field(default_factory=dict)  # the HCA's PCIe link from sysfs device/{current,max}_link_*

    @property
    def ref(self) -> str:
        return f"{self.ca}/{self.port}"


@dataclass(frozen=True)
class Versions:
    driver: str | None = None
    driver_source: str | None = None  # which probe gave it
    cuda: str | None = None
    nccl: str | None = None
    ofed: str | None = None
    kernel: str | None = None
    os: str | None = None
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class TopologyFacts:
    """What judges need from `nvidia-smi topo -m`; the parsed matrix stays in `matrix`."""

    gpu_count: int
    links: dict[tuple[int, int], str]  # (i, j) i<j -> "NV18" / "PIX" / "SYS" ...
    nvlink_domain: int  # size of the largest set of GPUs all joined by NVLink
    signature: str  # stable text summary used to compare nodes
    nic_affinity: dict[int, tuple[str, str]] = field(default_factory=dict)
    fragment: bool = False
    evidence: tuple[str, ...] = ()
    matrix: Any = None
    partial: str | None = None  # what `topo -m` did not show (rows cut off, no header): pairs not in `links` are unknown


@dataclass(frozen=True)
class MemoryFacts:
    mem_total_kib: int | None
    hugepages_total: int | None = None
    hugepages_free: int | None = None
    hugepage_size_kib: int | None = None
    shm_size_bytes: int | None = None
    shm_absent: bool = False  # the collector found no /dev/shm at all (a container started without one)
    memlock_unlimited: bool | None = None
    memlock_bytes: int | None = None


@dataclass(frozen=True)
class NodeFacts:
    name: str
    address: str
    outcome: str
    message: str = ""
    groups: tuple[str, ...] = ()
    expect: dict[str, Any] = field(default_factory=dict)
    expect_sources: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, Any] = field(default_factory=dict)
    versions: Versions | None = None
    gpus: tuple[GpuFacts, ...] | None = None
    nvlink: tuple[NvLinkFacts, ...] | None = None
    topology: TopologyFacts | None = None
    ib: tuple[IbPortFacts, ...] | None = None
    memory: MemoryFacts | None = None
    xid: tuple[Any, ...] | None = None
    kernel_events: tuple[Any, ...] = ()  # fatal GPU messages without an Xid (fallen off the bus, GSP timeouts)
    peermem: bool | None = None  # nvidia_peermem module loaded (GPUDirect RDMA)
    nccl_tests: tuple[Any, ...] | None = None
    # active tests (--level standard/deep; see docs/levels.md)
    dcgm: Any = None  # DcgmDiag from `dcgmi diag -r N` (parse/dcgm_diag.py)
    copy_bw: dict[str, Any] | None = None  # nvbandwidth test name -> NvbTest (h2d, d2h, d2d read CE)
    ib_loopback: dict[str, Any] | None = None  # HCA -> LoopbackResult (ib_write_bw server+client on the node)
    link_quality: dict[str, Any] | None = None  # 'mlx5_0/1' -> MlxlinkPort, or why it was not read (run --mlxlink)
    nvlink_errors: dict[int, dict[int, dict[str, int]]] | None = None  # GPU -> link -> counter -> value (nvlink -e)
    fabricmanager: tuple[str, tuple[str, ...]] | None = None  # (systemctl is-active word, journal lines that matter)
    resolved: dict[str, Any] | None = None  # peer host name -> sorted addresses, or {"error": why}
    netifs: dict[str, dict[str, Any]] | None = None  # /sys/class/net: name -> {mtu, operstate, type}
    acs: tuple[Any, ...] | None = None  # AcsEntry per PCIe bridge with an ACS capability (`lspci -vvv`)
    p2p: Any = None  # P2PMatrix from `nvidia-smi topo -p2p r`
    gpu_processes: tuple[Any, ...] | None = None  # processes holding GPU memory (nvidia-smi table), None if unknown
    clock_offset_s: float | None = None  # node clock minus controller clock at collection start (upper-bounded by latency)
    collect_latency_s: float | None = None  # how long the round trip took: the uncertainty of clock_offset_s  # parsed all_reduce_perf runs (NcclTestResult), first run first
    missing: dict[str, str] = field(default_factory=dict)  # fact key -> why it is None
    unparseable: frozenset[str] = frozenset()  # fact keys whose tool output could not be parsed
    # fact keys that are None because they provably do not apply here (the reason is in `missing`): a check
    # needing one is `skip`; any other None fact is a gap in the evidence and the check is `error`
    not_applicable: frozenset[str] = frozenset()
    probe_gaps: dict[str, str] = field(default_factory=dict)  # probe id -> why it gave no output (absent/timeout/exit)
    collector_mode: str | None = None

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass(frozen=True)
class FleetFacts:
    nodes: tuple[NodeFacts, ...]
    expect: dict[str, Any] = field(default_factory=dict)  # fleet-level pinned values (inventory `expect`)

    @property
    def reachable(self) -> tuple[NodeFacts, ...]:
        return tuple(n for n in self.nodes if n.ok)


def majority(values: dict[str, Any]) -> tuple[Any, int] | None:
    """The most common non-None value among nodes and how many share it (ties: first seen)."""
    counted = Counter(v for v in values.values() if v is not None)
    if not counted:
        return None
    return counted.most_common(1)[0]


# What fact values mean, shared by the parsers and the checks

# `Fabric > Health` (driver 550+ on NVLink-fabric GPUs; GB200/GB300 fill it in). NVML's health summary is
# Not Supported / Healthy / Unhealthy / Limited Capacity; nvidia-smi prints N/A when nothing was reported.
_NOT_REPORTED = {"", "n/a", "not supported", "[n/a]", "[not supported]"}
_CONDITION_OK = {"false", "none", "no", "full"} | _NOT_REPORTED
_CONDITION_BAD = {"true", "yes", "degraded"}
_INFO_ONLY = {"summary", "partition assigned"}


def health_verdict(health: dict[str, str]) -> tuple[str, tuple[str, ...]]:
    """What a Health block proves: (`healthy` | `unhealthy` | `unknown` | `not_reported`, the rows that say so).

    `unhealthy` when the Summary says so or a condition row is set (Route Unhealthy: True, Bandwidth: Degraded);
    `unknown` for a Summary or condition value not listed here (e.g. Limited Capacity): never read as healthy.
    """
    summary = (health.get("Summary") or "").strip()
    bad = tuple(f"{k}: {v}" for k, v in health.items()
                if k.lower() not in _INFO_ONLY and v.strip().lower() in _CONDITION_BAD)
    odd = tuple(f"{k}: {v}" for k, v in health.items()
                if k.lower() not in _INFO_ONLY and v.strip().lower() not in _CONDITION_OK | _CONDITION_BAD)
    if summary.lower() == "unhealthy" or bad:
        return "unhealthy", ((f"Summary: {summary}",) if summary.lower() == "unhealthy" else ()) + bad
    if odd or summary.lower() not in {"healthy"} | _NOT_REPORTED:
        return "unknown", ((f"Summary: {summary}",) if summary.lower() not in {"healthy"} | _NOT_REPORTED else ()) + odd
    if summary.lower() == "healthy":
        return "healthy", (f"Summary: {summary}",)
    return "not_reported", ()


# The `nvidia-smi topo -p2p` legend: status code -> meaning.
P2P_STATUS = {"OK": "ok", "CNS": "chipset not supported", "GNS": "GPU not supported", "TNS": "topology not supported",
              "NS": "not supported", "DR": "disabled by regkey", "U": "unknown", "X": "self"}


@functools.lru_cache(maxsize=1)
def load_xid_catalog() -> dict[int, dict[str, Any]]:
    """preflight/data/xid_catalog.yaml by code; each entry also gets `name`, `description`, `severity` aliases."""
    import yaml  # (only when a catalogue entry is asked for)

    text = resources.files("preflight.data").joinpath("xid_catalog.yaml").read_text()
    out: dict[int, dict[str, Any]] = {}
    for r in (yaml.safe_load(text) or {}).get("xids", []):
        entry = dict(r)
        entry.setdefault("name", entry.get("mnemonic"))
        entry.setdefault("description", entry.get("meaning"))
        entry.setdefault("severity", "fatal" if entry.get("fatal") else "nonfatal")
        out[int(entry["code"])] = entry
    return out


def describe_xid(code: int) -> dict[str, Any] | None:
    """The catalogue entry of an Xid code (mnemonic, meaning, action, fatal...), None if not catalogued."""
    try:
        return load_xid_catalog().get(int(code))
    except (TypeError, ValueError):
        return None
