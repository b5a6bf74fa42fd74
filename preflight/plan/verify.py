"""`plan --verify`: communication tests shaped like a chosen layout, and their results fed back.

For a candidate layout it builds nccl-tests runs at the message sizes that layout produces:
  - an all-reduce inside every TP group, from the decode message (hidden × 2 B × sequences in a
    step) to the prefill message (hidden × 2 B × max_num_batched_tokens);
  - send/recv between adjacent pipeline stages at the same sizes (the activations PP hands on);
  - an all-to-all across the EP group (tokens × top-k × hidden × 2 B, the dispatch volume).
A group inside one node runs as one process (`-g N`, CUDA_VISIBLE_DEVICES pinned to its GPUs);
a group across nodes goes through mpirun or srun (preflight.multinode), never a home-made launcher.
Each run has its own deadline. Building, parsing and the feedback are pure; running is a callable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from preflight.multinode import LaunchSpec, build_command, shell_line
from preflight.parse.common import Unparseable
from preflight.parse.nccl_tests import NcclTestResult, parse_nccl_tests

from .models import ModelSpec
from .planner import Candidate, evaluate
from .shapes import FleetShape, PlanOptions

ACTIVATION_BYTES = 2  # bf16 activations on the wire, whatever the weight precision
Runner = Callable[[str, list[str]], tuple[int | None, str, str]]  # (node, argv) -> (rc, stdout, stderr)


@dataclass(frozen=True)
class VerifyTest:
    kind: str  # tp_allreduce | pp_sendrecv | ep_alltoall
    group: str  # which GPUs, e.g. "gpu-01 GPUs 0-7"
    node: str  # where the command runs (the launcher for multi-node groups)
    nodes: tuple[str, ...]  # every node the group touches
    argv: tuple[str, ...]
    decode_bytes: int
    prefill_bytes: int

    @property
    def command(self) -> str:
        return shell_line(self.argv)


@dataclass(frozen=True)
class VerifyResult:
    test: VerifyTest
    rc: int | None
    result: NcclTestResult | None
    error: str = ""

    @property
    def busbw_gbps(self) -> float | None:
        big = self.result.busbw_at_largest() if self.result else None
        return big[1] if big else None

    @property
    def small_time_us(self) -> float | None:
        """Out-of-place time of the smallest message measured (the decode-sized one)."""
        rows = [r for r in self.result.rows if r.oop_time_us is not None] if self.result else []
        return min(rows, key=lambda r: r.size_bytes).oop_time_us if rows else None

    @property
    def ok(self) -> bool:
        return self.result is not None and self.rc == 0 and not self.error


def _aligned(n: float) -> int:
    """nccl-tests sizes: at least 8 bytes, a multiple of 8 (counts of 4-byte floats over 2 ranks)."""
    return max(8, int(n) // 8 * 8)


def message_sizes(model: ModelSpec, c: Candidate, opts: PlanOptions) -> tuple[int, int]:
    """(decode, prefill) bytes of one TP all-reduce / PP activation hand-off for this layout."""
    seqs_per_step = max(1, -(-opts.seqs // c.dp))
    decode = _aligned(model.hidden * ACTIVATION_BYTES * seqs_per_step)
    prefill = _aligned(model.hidden * ACTIVATION_BYTES * opts.max_num_batched_tokens)
    return decode, max(decode, prefill)


def _groups(c: Candidate) -> list[list[tuple[str, int]]]:
    """TP groups in placement order: replica-major, so a replica's stages are consecutive groups."""
    flat = [(p.node, g) for p in c.placement for g in p.gpus]
    return [flat[i:i + c.tp] for i in range(0, c.tp * c.pp * c.dp, c.tp)]


def _label(members: Sequence[tuple[str, int]]) -> str:
    by: dict[str, list[int]] = {}
    for node, g in members:
        by.setdefault(node, []).append(g)
    return "; ".join(f"{n} GPUs {','.join(map(str, gs))}" for n, gs in by.items())


def _local(binary: str, node: str, gpus: Sequence[int], sizes: tuple[int, int]) -> tuple[str, ...]:
    return ("env", f"CUDA_VISIBLE_DEVICES={','.join(map(str, gpus))}", binary, "-b", str(sizes[0]),
            "-e", str(sizes[1]), "-f", "2", "-g", str(len(gpus)))


def _test(kind: str, binary: str, members: Sequence[tuple[str, int]], sizes: tuple[int, int], launcher: str) -> VerifyTest:
    nodes = tuple(dict.fromkeys(n for n, _ in members))
    if len(nodes) == 1:
        argv = _local(binary, nodes[0], [g for _, g in members], sizes)
    else:
        per_node = max(sum(1 for n, _ in members if n == node) for node in nodes)
        spec = LaunchSpec(hosts=nodes, gpus_per_node=per_node, launcher=launcher, binary=binary,
                          test_args=("-b", str(sizes[0]), "-e", str(sizes[1]), "-f", "2", "-g", "1"))
        argv = tuple(build_command(spec))
    return VerifyTest(kind, _label(members), nodes[0], nodes, argv, sizes[0], sizes[1])


def verify_tests(c: Candidate, model: ModelSpec, opts: PlanOptions, *, launcher: str = "mpirun") -> list[VerifyTest]:
    sizes = message_sizes(model, c, opts)
    groups = _groups(c)
    tests: list[VerifyTest] = []
    if c.tp > 1:
        tests += [_test("tp_allreduce", "all_reduce_perf", g, sizes, launcher) for g in groups]
    if c.pp > 1:
        for r in range(c.dp):
            stages = groups[r * c.pp:(r + 1) * c.pp]
            for a, b in zip(stages, stages[1:]):
                tests.append(_test("pp_sendrecv", "sendrecv_perf", [a[0], b[0]], sizes, launcher))
    if c.ep > 1:
        members = [m for g in groups for m in g][: c.ep]
        a2a = _aligned(sizes[0] * max(1, model.experts_per_token)), _aligned(sizes[1] * max(1, model.experts_per_token))
        tests.append(_test("ep_alltoall", "alltoall_perf", members, a2a, launcher))
    return tests


def run_tests(tests: Sequence[VerifyTest], runner: Runner) -> list[VerifyResult]:
    """Run one after another (they share GPUs and links); a failure is that test's result."""
    out = []
    for t in tests:
        try:
            rc, stdout, stderr = runner(t.node, list(t.argv))
        except Exception as exc:  # transport trouble is a result, not a crash
            out.append(VerifyResult(t, None, None, f"{type(exc).__name__}: {exc}"))
            continue
        parsed = parse_nccl_tests(stdout or "")
        if isinstance(parsed, Unparseable):
            why = (stderr or "").strip().splitlines()[-1:] or [parsed.reason]
            out.append(VerifyResult(t, rc, None, f"rc={rc}: {why[0]}"))
        else:
            bad = "" if rc == 0 else f"rc={rc}"
            out.append(VerifyResult(t, rc, parsed, bad))
    return out


def feed_back(fleet: FleetShape, model: ModelSpec, opts: PlanOptions, c: Candidate,
              results: Sequence[VerifyResult]) -> Candidate | None:
    """The candidate judged again with the bandwidth and decode-size latency its own tests measured."""
    shapes = {n.name: n for n in fleet.nodes}
    for r in results:
        if r.test.kind != "tp_allreduce" or not r.ok or len(r.test.nodes) != 1:
            continue
        node = shapes.get(r.test.node)
        if node is None:
            continue
        bw, small = r.busbw_gbps, r.small_time_us
        worse_bw = bw if node.intra_busbw_gbps is None or (bw is not None and bw < node.intra_busbw_gbps) else None
        source = (f"{node.name}: plan --verify all_reduce_perf on {r.test.group}, busbw {bw:g} GB/s at "
                  f"{r.test.prefill_bytes} B, {small:g} us at {r.test.decode_bytes} B") if bw and small else node.intra_busbw_source
        shapes[node.name] = replace(node, intra_busbw_gbps=worse_bw or node.intra_busbw_gbps,
                                    intra_busbw_source=source if worse_bw else node.intra_busbw_source,
                                    small_msg_latency_us=small if small is not None else node.small_msg_latency_us)
    measured = replace(fleet, nodes=tuple(shapes[n.name] for n in fleet.nodes))
    nodes = tuple(shapes[name] for name in dict.fromkeys(c.nodes_used) if name in shapes)
    return evaluate(measured, model, opts, tp=c.tp, pp=c.pp, dp=c.dp, ep=c.ep, nodes=nodes or None)


@dataclass(frozen=True)
class VerifyReport:
    candidate: Candidate
    results: tuple[VerifyResult, ...]
    again: Candidate | None  # re-judged with the measured numbers

    @property
    def passed(self) -> bool:
        return all(r.ok for r in self.results)

    def to_dict(self) -> dict[str, object]:
        return {
            "layout": self.candidate.label, "passed": self.passed,
            "tests": [{"kind": r.test.kind, "group": r.test.group, "node": r.test.node, "command": r.test.command,
                       "decode_bytes": r.test.decode_bytes, "prefill_bytes": r.test.prefill_bytes, "rc": r.rc,
                       "busbw_gbps": r.busbw_gbps, "small_time_us": r.small_time_us, "error": r.error} for r in self.results],
            "estimates_before": {e.name: e.value for e in self.candidate.estimates},
            "estimates_measured": {e.name: e.value for e in self.again.estimates} if self.again else None,
            "verdict_measured": self.again.verdict if self.again else None,
        }
