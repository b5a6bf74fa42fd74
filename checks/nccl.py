"""NCCL all-reduce on each node's GPUs (nccl-tests): data correctness and bus bandwidth against the platform.

A bandwidth verdict compares the busbw at the largest message size measured with the
inventory's `allreduce_busbw_gbps_min`, else a per-platform reference value with its source.
Two runs are made: both below the line fail, one below warns (run-to-run variance is the top
complaint against such checks), and the spread between the runs is reported.
"""

from __future__ import annotations

from collections.abc import Iterator

from preflight.facts import NodeFacts
from preflight.registry import CheckContext, check
from preflight.results import Finding, Status

# (nvidia-smi GPU name, GPUs in the run) -> (busbw GB/s, message size, source); from shared/reference/thresholds.md
REFERENCE_BUSBW: dict[tuple[str, int], tuple[float, str, str]] = {
    ("NVIDIA H100 80GB HBM3", 8): (460.0, "16G", "Azure/azurehpc-health-checks conf/nd96isr_h100_v5.conf (check_nccl_allreduce 460.0 1 16G)"),
    ("NVIDIA H200", 8): (431.0, "16G", "Azure/azurehpc-health-checks conf/nd96isr_h200_v5.conf"),
    ("NVIDIA A100-SXM4-80GB", 8): (228.0, "16G?", "Azure/azurehpc-health-checks conf/nd96amsr_a100_v4.conf"),
    ("NVIDIA A100-SXM4-40GB", 8): (228.0, "16G?", "Azure/azurehpc-health-checks conf/nd96asr_v4.conf"),
}

_HINT = ("Re-run to rule out a busy node; then compare `nvidia-smi topo -m` and NVLink state with a good node, "
         "check NCCL_P2P/NCCL_ALGO overrides and that no other process holds the GPUs.")


def _fmt_size(n: int) -> str:
    for unit, div in (("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return f"{n}B"


def _expected(node: NodeFacts, ctx: CheckContext, nranks: int) -> tuple[float | None, str | None]:
    pinned, source = ctx.expected(node, "allreduce_busbw_gbps_min")
    if pinned is not None:
        return float(pinned), source
    names = {g.name for g in node.gpus or () if g.name}
    for (name, n), (value, size, src) in REFERENCE_BUSBW.items():
        if n == nranks and any(name.lower() in (x or "").lower() for x in names):
            return value, f"{src} (reference measured at {size}; shared/reference/thresholds.md)"
    return None, None


@check(id="nccl.allreduce.correct", group="nccl", needs=("nccl_tests",),
       summary="nccl-tests all_reduce_perf reports no #wrong results and no out-of-bounds values (data corruption on the GPUs or links)",
       remediation="Wrong results mean corrupted data: drain the node, run `dcgmi diag -r 3`, check Xid/ECC and NVLink error counters.")
def allreduce_correct(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    for i, run in enumerate(node.nccl_tests or (), 1):
        wrong = [r for r in run.rows if (r.oop_wrong or 0) >= 1 or (r.ip_wrong or 0) >= 1]
        bad = bool(wrong) or (run.out_of_bounds or 0) > 0
        yield ctx.finding(node, Status.FAIL if bad else Status.PASS, subject=f"run {i}",
                          observed=f"{len(wrong)} rows with #wrong, out of bounds {run.out_of_bounds}",
                          expected="0 wrong", msg="all_reduce results wrong" if bad else "all_reduce results correct",
                          evidence=tuple(r.raw_line for r in wrong[:6]), hint=ctx.spec.remediation if bad else None)


@check(id="nccl.allreduce.busbw", group="nccl", needs=("nccl_tests",),
       summary="All-reduce bus bandwidth at the largest message size reaches the inventory's allreduce_busbw_gbps_min, else the platform's reference value (both runs below: fail; one: warn; spread reported)",
       remediation=_HINT)
def allreduce_busbw(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    independent = [r for r in node.nccl_tests or () if r.independent_note]
    if independent:  # N separate processes each measured alone: their busbw is not this run's
        yield ctx.error(node, msg=str(independent[0].independent_note),
                        evidence=independent[0].independent_evidence,
                        hint="Rebuild nccl-tests with `make MPI=1 MPI_HOME=...` (after `make clean`) and rerun.")
        return
    runs = [r for r in node.nccl_tests or () if r.busbw_at_largest() is not None]
    if not runs:
        yield ctx.error(node, msg="nccl-tests printed no result rows (hung, failed, or an unknown format)",
                        evidence=tuple(n for r in node.nccl_tests or () for n in r.notes))
        return
    measured = [r.busbw_at_largest() for r in runs]
    size = measured[0][0]
    values = [v for _, v in measured]
    nranks = max((r.ranks for r in runs), default=0) or len(node.gpus or ())
    expected, source = _expected(node, ctx, nranks)
    spread = (max(values) - min(values)) / max(values) * 100 if len(values) > 1 and max(values) else 0.0
    sizes = sorted({s for s, _ in measured})
    at = _fmt_size(size) if len(sizes) == 1 else "/".join(_fmt_size(s) for s, _ in measured)
    observed = " / ".join(f"{v:.1f}" for v in values) + f" GB/s at {at} (spread {spread:.1f}%)"
    evidence = tuple(next(row.raw_line for row in r.rows if row.size_bytes == s) for r, (s, _) in zip(runs, measured))
    if expected is None:
        yield ctx.ok(node, observed=observed,
                     msg=f"busbw {observed}; no expectation for this platform (set expect.allreduce_busbw_gbps_min)",
                     evidence=evidence)
        return
    below = [v for v in values if v < expected]
    status = Status.PASS if not below else (Status.FAIL if len(below) == len(values) else Status.WARN)
    msg = {Status.PASS: f"busbw {observed}",
           Status.WARN: f"one of {len(values)} runs below {expected:g} GB/s: {observed} (variance, not yet a failure)",
           Status.FAIL: f"busbw below {expected:g} GB/s in every run: {observed}"}[status]
    yield ctx.finding(node, status, observed=observed, expected=f">= {expected:g} GB/s",
                      expected_source=source, msg=msg, evidence=evidence, hint=None if status == Status.PASS else _HINT)


@check(id="nccl.allreduce.small_messages", group="nccl", needs=("nccl_tests",),
       summary="Reports all-reduce time for decode-sized messages (8 KB-4 MB), where inference latency lives; reported, not judged (no published reference threshold)",
       remediation="High small-message latency with good large-message bandwidth points at launch overhead or a missing NVLS/CUDA-graph path.")
def allreduce_small(node: NodeFacts, ctx: CheckContext) -> Iterator[Finding]:
    run = (node.nccl_tests or (None,))[0]
    rows = [r for r in (run.rows if run else ()) if 8 << 10 <= r.size_bytes <= 4 << 20 and r.oop_time_us is not None]
    if not rows:
        yield ctx.unknown(node, "the all_reduce_perf output has no rows between 8 KB and 4 MB (run with -b 8 -e 8G)")
        return
    text = ", ".join(f"{_fmt_size(r.size_bytes)}: {r.oop_time_us:g} us" for r in rows)
    yield ctx.ok(node, observed=text,
                 msg=f"all-reduce time for decode-sized messages: {text}", evidence=tuple(r.raw_line for r in rows))
