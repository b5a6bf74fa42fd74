"""Facts from the active tests (`--level`): DCGM diagnostics, nvbandwidth copies, ib_write_bw loopback.

Which probes the collector was given says which level ran, so absence has two meanings: a probe that
was never asked for does not apply (`skip`), one that was asked for and gave nothing (absent tool,
timeout, "not run" because the GPUs were busy or the budget was spent) is a gap (`error`). The one
exception is DCGM at `--level quick`, which runs only where DCGM is installed.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from preflight.parse.common import Unparseable
from preflight.parse.dcgm_diag import DcgmDiag, parse_dcgm_diag
from preflight.parse.nvbandwidth import NvbTest, parse_nvbandwidth
from preflight.parse.perftest import BwRow, PerftestRun, parse_perftest

DCGM_PROBES = ("dcgm_r1", "dcgm_r2", "dcgm_r3")
NVBANDWIDTH_TESTS = {"nvbandwidth_h2d": "host_to_device_memcpy_ce", "nvbandwidth_d2h": "device_to_host_memcpy_ce",
                     "nvbandwidth_d2d": "device_to_device_memcpy_read_ce"}

T = TypeVar("T")


class _Facts(Protocol):  # parse.node._Ctx, without importing it (node imports this module)
    raw: Any
    missing: dict[str, str]
    unparseable: set[str]
    probe_gaps: dict[str, str]

    def na(self, key: str, why: str) -> None: ...
    def text(self, probe_id: str) -> tuple[str | None, str]: ...
    def parsed(self, key: str, probe_id: str, parser: Callable[[str], T | Unparseable]) -> T | None: ...


@dataclass(frozen=True)
class LoopbackResult:
    """One HCA's ib_write_bw loopback: the client's bandwidth at its largest message, or why there is none."""

    hca: str
    gbps: float | None
    size_bytes: int | None
    gpudirect: bool
    evidence: tuple[str, ...] = ()
    problem: str | None = None  # why gbps is None or cannot be trusted (tool error, cut-off table)


def dcgm_facts(c: _Facts) -> DcgmDiag | None:
    asked = [pid for pid in DCGM_PROBES if c.raw.probe(pid) is not None]
    if not asked:
        c.na("dcgm", "this level runs no DCGM diagnostic (--level quick runs -r 1 where DCGM is installed)")
        return None
    pid = asked[-1]  # the deepest level asked
    probe = c.raw.probe(pid) or {}
    if pid == "dcgm_r1" and probe.get("error") == "absent":
        c.na("dcgm", "DCGM (dcgmi) is not installed; --level quick runs it only where it is")
        return None
    result = c.parsed("dcgm", pid, parse_dcgm_diag)
    if result is None and probe.get("rc") not in (0, None) and (probe.get("stdout") or "").strip():
        # dcgmi exits non-zero when a test fails: its table is still the evidence
        parsed = parse_dcgm_diag(probe.get("stdout") or "")
        if not isinstance(parsed, Unparseable):
            c.missing.pop("dcgm", None)
            c.probe_gaps.pop(pid, None)
            result = parsed
    if isinstance(result, DcgmDiag) and result.run_level is None:  # the level asked, when the output omits it
        result = dataclasses.replace(result, run_level=pid[-1])
    return result


def copy_bw_facts(c: _Facts) -> dict[str, NvbTest] | None:
    asked = [pid for pid in NVBANDWIDTH_TESTS if c.raw.probe(pid) is not None]
    if not asked:
        c.na("copy_bw", "this level runs no copy-bandwidth test (nvbandwidth: --level standard or deep)")
        return None
    out: dict[str, NvbTest] = {}
    for pid in asked:
        run = c.parsed("copy_bw", pid, parse_nvbandwidth)
        if run is None:
            return None  # the reason is in missing
        block = run.test(NVBANDWIDTH_TESTS[pid])
        if block is None or not block.rows:
            c.missing["copy_bw"] = f"{pid}: nvbandwidth printed no {NVBANDWIDTH_TESTS[pid]} matrix" + (
                f" ({'; '.join(run.errors)})" if run.errors else "")
            c.unparseable.add("copy_bw")
            return None
        if block.partial or block.error:
            c.missing["copy_bw"] = f"{pid}: {block.error or block.partial}"
            c.unparseable.add("copy_bw")
            return None
        out[NVBANDWIDTH_TESTS[pid]] = block
    return out


def _client_bw(text: str, hca: str, gdr: bool) -> LoopbackResult:
    run = parse_perftest(text)
    if isinstance(run, Unparseable):
        return LoopbackResult(hca, None, None, gdr, (), f"ib_write_bw output not readable: {run.reason}")
    assert isinstance(run, PerftestRun)
    block = run.main
    row = block.largest
    if not isinstance(row, BwRow):
        return LoopbackResult(hca, None, None, gdr, (), "ib_write_bw printed no bandwidth row")
    gbps = block.bw_gbps(row)
    evidence = tuple(x for x in (row.raw,) if x)
    if block.partial:
        return LoopbackResult(hca, None, row.bytes, gdr, evidence, f"ib_write_bw output cut short: {block.partial}")
    return LoopbackResult(hca, gbps, row.bytes, gdr, evidence,
                          None if gbps is not None else f"bandwidth unit {block.unit!r} not understood")


def ib_loopback_facts(c: _Facts) -> dict[str, LoopbackResult] | None:
    probe = c.raw.probe("ib_loopback")
    if probe is None:
        c.na("ib_loopback", "this level runs no IB loopback test (ib_write_bw: --level standard or deep)")
        return None
    if probe.get("error") == "absent" and "infiniband" in str(probe.get("note") or ""):
        c.na("ib_loopback", "no IB/RoCE HCA on the node (/sys/class/infiniband is absent)")
        return None
    text, why = c.text("ib_loopback")
    if text is None:
        c.missing["ib_loopback"] = why  # the collector names ib_write_bw as the absent tool (argv)
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        c.missing["ib_loopback"] = "ib_loopback: unreadable collector document (cut short?)"
        c.unparseable.add("ib_loopback")
        return None
    out: dict[str, LoopbackResult] = {}
    for hca, one in sorted(doc.items()) if isinstance(doc, dict) else ():
        gdr = bool(one.get("gpudirect"))
        if one.get("error") or one.get("rc") not in (0, None):
            tail = (one.get("client") or "").strip().splitlines()[-1:] or [""]
            why_not = f"ib_write_bw {one.get('error') or 'exited ' + str(one.get('rc'))}" + (
                f": {tail[0][:160]}" if tail[0] else "")
            out[hca] = LoopbackResult(hca, None, None, gdr, tuple(tail), why_not)
            continue
        # the client's table is closed by a line some builds print only after the server's part (see the real
        # concatenated log in the corpus): both, client first, are read as one output and the client's block kept
        out[hca] = _client_bw(str(one.get("client") or "") + "\n" + str(one.get("server") or ""), hca, gdr)
    if not out:
        c.missing["ib_loopback"] = "ib_loopback: no HCA was tested"
        return None
    return out
