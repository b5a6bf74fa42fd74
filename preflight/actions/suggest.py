"""A suggested action class per finding that fails, and per node (the strongest of its findings).

Classes, weakest first: none < drain < reset_gpu < reboot < rma. Every class above `none` means the node
is drained first (no job lands on it while a person acts). Xid findings take their class from the Xid
catalogue (`suggest` / `suggest_source` in preflight/data/xid_catalog.yaml: NVIDIA's resolution buckets, AWS's
list of fatal codes); every other check from CHECK_ACTIONS below, one row per check with its source.

Only `fail` and `error` findings get a class: a warning leaves the node usable (the planner plans on it),
and a check that could not judge keeps the node off jobs until it can (`drain`, ours).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from preflight.facts import describe_xid
from preflight.results import Finding, NodeReport, Status

NONE, DRAIN, RESET_GPU, REBOOT, RMA = "none", "drain", "reset_gpu", "reboot", "rma"
ACTIONS = (NONE, DRAIN, RESET_GPU, REBOOT, RMA)  # weakest first
ACTION_TEXT = {NONE: "none", DRAIN: "drain", RESET_GPU: "drain, reset GPU", REBOOT: "drain, reboot",
               RMA: "drain, RMA"}
_RANK = {a: i for i, a in enumerate(ACTIONS)}
ACTIONABLE = (Status.FAIL, Status.ERROR)

_NVLINK_ERR = "NVIDIA WORKFLOW_NVLINK_ERR (Xid 74): reset the GPU or reboot (AWS eks-node-monitoring-agent notes)"
# check id -> (class, source). "ours" marks preflight's own choice; a check not listed is `drain`, ours.
CHECK_ACTIONS: dict[str, tuple[str, str]] = {
    "gpu.count": (REBOOT, "NVIDIA RESTART_BM for a GPU off the bus (Xid 79); AWS NvidiaDeviceCountMismatch is fatal"),
    "gpu.driver.responsive": (REBOOT, "ours: a driver that does not answer is reset by a reboot (GSP/Xid 79 cases)"),
    "gpu.ecc.uncorrectable": (RESET_GPU, "NVIDIA WORKFLOW_XID_48: reset the GPU, then check the DBE threshold"),
    "gpu.row_remap": (RMA, "ours, after [M] ml-engineering: row remapping failed or exhausted means replace the GPU"),
    "gpu.dcgm.diag": (DRAIN, "ours: rerun at --level deep before a reset or RMA (AWS DCGMDiagnosticFailure: repair None)"),
    "gpu.memory.in_use": (NONE, "ours: another job's memory, not a fault"),
    "gpu.persistence_mode": (DRAIN, "ours: configuration (nvidia-persistenced), fix then resume"),
    "gpu.mig": (DRAIN, "ours: configuration, fix then resume"),
    "gpu.temperature": (DRAIN, "ours: cooling, a person looks"),
    "gpu.clocks.throttle": (DRAIN, "ours: cooling or power, a person looks"),
    "nvlink.links.active": (RESET_GPU, _NVLINK_ERR),
    "nvlink.errors": (RESET_GPU, _NVLINK_ERR),
    "nvlink.fabric_state": (REBOOT, "ours: fabric registration redone at boot (AWS NvidiaFabricError: replace if it persists)"),
    "nvlink.fabricmanager": (DRAIN, "ours: restart nvidia-fabricmanager, then resume (AWS FabricManagerNotRunning: fatal)"),
    "nccl.allreduce.correct": (DRAIN, "ours, the check's remediation: drain, run dcgmi diag -r 3"),
}
_XID = re.compile(r"^Xid (\d+)$")
_KERNEL = {"fallen_off_bus": (REBOOT, "as Xid 79: NVIDIA RESTART_BM"), "gsp_timeout": (RESET_GPU, "as Xid 119: NVIDIA RESET_GPU")}


def rank(action: str) -> int:
    return _RANK.get(action, 0)


def strongest(actions: Iterable[str]) -> str:
    return max(actions, key=rank, default=NONE)


def suggestion(finding: Finding) -> tuple[str, str]:
    """(class, source) for one finding; (none, why) for one that does not fail."""
    if finding.status not in ACTIONABLE:
        return NONE, f"{finding.status.value}: nothing to do"
    if finding.status == Status.ERROR:
        return DRAIN, "ours: could not judge, kept off jobs until it can"
    if finding.check == "gpu.xid":
        return _xid_suggestion(finding.subject or "")
    return CHECK_ACTIONS.get(finding.check, (DRAIN, "ours: a failed check keeps the node off jobs until fixed"))


def _xid_suggestion(subject: str) -> tuple[str, str]:
    m = _XID.match(subject)
    if m:
        info = describe_xid(int(m.group(1))) or {}
        if info.get("suggest") in ACTIONS:
            return str(info["suggest"]), f"Xid catalogue: {info.get('suggest_source', '')}".strip()
        return DRAIN, "ours: an Xid the catalogue does not list"
    if subject.startswith("SXid"):
        return REBOOT, "ours: a fatal SXid needs the NVSwitch tray/baseboard reset"
    return _KERNEL.get(subject, (DRAIN, "ours"))


def finding_action(finding: Finding) -> str:
    return suggestion(finding)[0]


def node_action(node: NodeReport) -> str:
    """The strongest class over the node's findings; an unreachable node is `drain` (ours: nothing was judged)."""
    if node.outcome != "ok":
        return DRAIN
    return strongest(finding_action(f) for f in node.findings)
