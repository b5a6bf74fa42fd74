"""The probes the collector runs on a node: ids, argv or paths, and per-probe timeouts.

This module is the contract between the node side (collector.py, which embeds a JSON copy
of PROBES so it stays stdlib-only and self-contained) and the controller side (parse/),
and the simulated fleet (sim/), whose stand-in tools answer exactly these argv.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Fields asked of `nvidia-smi --query-gpu`. Parsers read the CSV by its header, so a
# recording with fewer (or differently ordered) columns still parses.
SMI_QUERY_FIELDS: tuple[str, ...] = (
    "index",
    "name",
    "uuid",
    "serial",
    "pci.bus_id",
    "driver_version",
    "vbios_version",
    "memory.total",
    "memory.used",
    "persistence_mode",
    "mig.mode.current",
    "ecc.mode.current",
    "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.uncorrected.aggregate.total",
    "retired_pages.pending",
    "pcie.link.gen.current",
    "pcie.link.gen.max",
    "pcie.link.width.current",
    "pcie.link.width.max",
    "clocks_throttle_reasons.active",
    "temperature.gpu",
    "power.draw",
)


@dataclass(frozen=True)
class Probe:
    """One thing to gather on a node.

    kind "cmd" runs argv (no shell); "file" reads path (under PREFLIGHT_HOST_ROOT when set);
    "glob" lists paths matching a pattern; "builtin" is computed by the collector itself.
    `grep` (a regex) keeps only matching stdout lines, to bound what large logs send back.
    `fallback` are argv tried in order when argv's program is absent.
    """

    id: str
    kind: str
    argv: tuple[str, ...] = ()
    path: str = ""
    timeout_s: float = 10.0
    grep: str = ""
    tail_lines: int = 0
    fallback: tuple[tuple[str, ...], ...] = field(default_factory=tuple)
    optional: bool = False  # only run when asked (e.g. nccl-tests, which takes the GPUs)
    serial: bool = False  # run alone, after the parallel probes, in declared order (benchmarks)
    active: bool = False  # takes the GPUs/HCAs: not started while GPUs run compute processes (unless --force)
    est_s: float = 0.0  # typical duration, for the level's budget (0: its timeout)


KERNEL_LOG_GREP = r"NVRM|Xid|nvidia|fallen off the bus|mlx5|GPU has fallen"

PROBES: tuple[Probe, ...] = (
    Probe("smi_query", "cmd", ("nvidia-smi", "--query-gpu=" + ",".join(SMI_QUERY_FIELDS), "--format=csv")),
    Probe("smi_table", "cmd", ("nvidia-smi",)),
    Probe("smi_version", "cmd", ("nvidia-smi", "--version")),
    Probe("smi_q", "cmd", ("nvidia-smi", "-q"), timeout_s=30.0),
    Probe("smi_q_ecc", "cmd", ("nvidia-smi", "-q", "-d", "ECC")),
    Probe("smi_q_perf", "cmd", ("nvidia-smi", "-q", "-d", "PERFORMANCE")),
    Probe("topo", "cmd", ("nvidia-smi", "topo", "-m")),
    Probe("nvlink_status", "cmd", ("nvidia-smi", "nvlink", "-s")),
    Probe("p2p_read", "cmd", ("nvidia-smi", "topo", "-p2p", "r")),
    Probe("nvlink_errors", "cmd", ("nvidia-smi", "nvlink", "-e")),
    Probe("ibstat", "cmd", ("ibstat",)),
    Probe("fm_active", "cmd", ("systemctl", "is-active", "nvidia-fabricmanager")),
    Probe("fm_journal", "cmd", ("journalctl", "-u", "nvidia-fabricmanager", "-n", "30", "--no-pager", "-q")),
    Probe("ofed_info", "cmd", ("ofed_info", "-s")),
    Probe(
        "kernel_log",
        "cmd",
        ("dmesg", "--ctime"),
        grep=KERNEL_LOG_GREP,
        tail_lines=2000,
        fallback=(("journalctl", "-k", "-b", "--no-pager", "-q"),),
    ),
    Probe("ldconfig", "cmd", ("ldconfig", "-p"), grep=r"nccl|libcuda\.|libnvidia-ml"),
    Probe("lspci_acs", "cmd", ("lspci", "-vvv"), grep=r"^[0-9a-fA-F]{2,4}:|ACSCtl:|access denied", timeout_s=20.0),
    Probe("uname", "cmd", ("uname", "-r")),
    Probe("driver_version_file", "file", path="/proc/driver/nvidia/version"),
    Probe("os_release", "file", path="/etc/os-release"),
    Probe("meminfo", "file", path="/proc/meminfo"),
    Probe("ib_sysfs", "builtin", path="/sys/class/infiniband"),
    Probe("peermem", "glob", path="/sys/module/nvidia_peermem"),
    Probe("nccl_libs", "glob", path="/usr/lib/x86_64-linux-gnu/libnccl.so.*:/usr/lib64/libnccl.so.*:/usr/local/lib/libnccl.so.*:/usr/local/cuda/lib64/libnccl.so.*"),
    Probe("shm", "builtin", path="/dev/shm"),
    Probe("netifs", "builtin", path="/sys/class/net"),
    Probe("resolve", "builtin", timeout_s=5.0),
    Probe("memlock", "builtin"),
    Probe("nvml", "builtin", timeout_s=20.0),
    Probe("job_procs", "builtin", timeout_s=60.0, optional=True),
    Probe("ib_traffic", "builtin", timeout_s=20.0, optional=True),
    # per IB port: `mlxlink -d DEV -p PORT -m -c --json` (module temperature, BER, link-down counters), where installed
    Probe("mlxlink", "builtin", path="/sys/class/infiniband", timeout_s=90.0, optional=True),
    # `preflight hang`, on one node of the job: its NCCL RAS status (ncclras, else the RAS client socket)
    Probe("ncclras", "builtin", timeout_s=30.0, optional=True),
    # `preflight hang --dump-fr`: each rank's PyTorch flight-recorder dump, triggered through its debug-info pipe
    Probe("fr_dump", "builtin", timeout_s=40.0, optional=True),
    # Two identical runs: a bandwidth verdict needs a repeat before it calls a node slow.
    Probe("nccl_allreduce", "cmd", ("all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "{ngpus}"),
          timeout_s=300.0, optional=True, serial=True, active=True, est_s=60.0),
    Probe("nccl_allreduce_repeat", "cmd", ("all_reduce_perf", "-b", "8", "-e", "8G", "-f", "2", "-g", "{ngpus}"),
          timeout_s=300.0, optional=True, serial=True, active=True, est_s=60.0),
)
NCCL_PROBES = ("nccl_allreduce", "nccl_allreduce_repeat")
ACTIVE_PROBES: tuple[Probe, ...] = (
    # DCGM diagnostics (NVIDIA DCGM `dcgmi diag`; levels as DCGM defines them): r1 deployment checks, r2 adds
    # PCIe/memory/short stress, r3 adds targeted stress/power (~10-20 min on 8 GPUs). The text table (what
    # published runs show; parse/dcgm_diag.py reads -j JSON too).
    Probe("dcgm_r1", "cmd", ("dcgmi", "diag", "-r", "1"), timeout_s=120.0, optional=True, serial=True,
          est_s=15.0),
    Probe("dcgm_r2", "cmd", ("dcgmi", "diag", "-r", "2"), timeout_s=300.0, optional=True, serial=True,
          active=True, est_s=150.0),
    Probe("dcgm_r3", "cmd", ("dcgmi", "diag", "-r", "3"), timeout_s=1500.0, optional=True, serial=True,
          active=True, est_s=900.0),
    # NVIDIA nvbandwidth, one test per run (as published runs do, so each answer is one recording): copy-engine
    # host->device, device->host per GPU, and device->device read per GPU pair
    Probe("nvbandwidth_h2d", "cmd", ("nvbandwidth", "-t", "host_to_device_memcpy_ce"), timeout_s=120.0,
          optional=True, serial=True, active=True, est_s=15.0),
    Probe("nvbandwidth_d2h", "cmd", ("nvbandwidth", "-t", "device_to_host_memcpy_ce"), timeout_s=120.0,
          optional=True, serial=True, active=True, est_s=15.0),
    Probe("nvbandwidth_d2d", "cmd", ("nvbandwidth", "-t", "device_to_device_memcpy_read_ce"), timeout_s=180.0,
          optional=True, serial=True, active=True, est_s=30.0),
    # perftest ib_write_bw server + client on the node per HCA (GPUDirect when nvidia_peermem is loaded)
    Probe("ib_loopback", "builtin", timeout_s=120.0, optional=True, serial=True, active=True, est_s=30.0),
)
NVBANDWIDTH_PROBES = ("nvbandwidth_h2d", "nvbandwidth_d2h", "nvbandwidth_d2d")
# What each --level runs on top of the state probes, and its documented per-node budget (docs/levels.md)
LEVELS: dict[str, tuple[str, ...]] = {
    "quick": ("dcgm_r1",),
    "standard": ("dcgm_r2", *NVBANDWIDTH_PROBES, *NCCL_PROBES, "ib_loopback"),
    "deep": ("dcgm_r3", *NVBANDWIDTH_PROBES, *NCCL_PROBES, "ib_loopback"),
}
LEVEL_BUDGET_S: dict[str, float] = {"quick": 60.0, "standard": 300.0, "deep": 1800.0}
# `preflight hang`: the job's processes and the fabric's counters, only when asked
HANG_PROBES = ("job_procs", "ib_traffic", "mlxlink")
HANG_BASE = ("smi_table", "kernel_log", "uname")  # what a hang gather also needs: GPU use per process, Xid lines
FR_PROBE = "fr_dump"  # only with --dump-fr: it writes to the job's pipes, so never by default

PROBES = PROBES + ACTIVE_PROBES
PROBES_BY_ID = {p.id: p for p in PROBES}
