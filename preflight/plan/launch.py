"""Launch command lines for a planned layout: vLLM and SGLang, per node, always with a max length.

Every value that comes from an inventory, a node or the user (host names, model ids, paths) is
shell-quoted. Flags are the ones planner-notes.md §3 lists with their docs; multi-node layouts
use the engines' own launchers (Ray for vLLM TP/PP across nodes, vLLM's multi-node DP flags,
SGLang's --nnodes/--node-rank), never a home-made one.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from .planner import Candidate
from .shapes import PlanOptions

RAY_PORT = 6379
VLLM_DP_RPC_PORT = 13345
SGLANG_DIST_PORT = 5000


@dataclass(frozen=True)
class NodeCommand:
    node: str  # where to run it
    command: str


@dataclass(frozen=True)
class LaunchCommands:
    engine: str  # vllm | sglang
    steps: tuple[NodeCommand, ...]  # in order: Ray/secondary nodes first where the head must find them
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"engine": self.engine, "steps": [{"node": s.node, "command": s.command} for s in self.steps],
                "notes": list(self.notes)}


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _env(c: Candidate, node: str) -> str:
    for p in c.placement:
        if p.node == node:
            return f"CUDA_VISIBLE_DEVICES={p.cuda_visible_devices} "
    return ""


def _vllm_common(c: Candidate, model: str, opts: PlanOptions) -> list[str]:
    args = ["vllm", "serve", _q(model), "--tensor-parallel-size", str(c.tp), "--pipeline-parallel-size", str(c.pp)]
    if c.ep > 1:
        args.append("--enable-expert-parallel")
    args += ["--max-model-len", str(opts.context), "--max-num-seqs", str(max(1, opts.seqs // max(1, c.dp))),
             "--gpu-memory-utilization", f"{opts.gpu_memory_utilization:g}"]
    if opts.kv_dtype.startswith("fp8"):
        args += ["--kv-cache-dtype", "fp8"]
    return args


def vllm_commands(c: Candidate, model: str, opts: PlanOptions) -> LaunchCommands:
    nodes = list(dict.fromkeys(c.nodes_used))
    head = nodes[0]
    per_replica = c.tp * c.pp
    gpus_on_head = len(next(p.gpus for p in c.placement if p.node == head))
    base = _vllm_common(c, model, opts)
    if len(nodes) == 1:
        dp = ["--data-parallel-size", str(c.dp)] if c.dp > 1 else []
        return LaunchCommands("vllm", (NodeCommand(head, _env(c, head) + " ".join(base + dp)),))
    if per_replica <= gpus_on_head:
        # DP across nodes, each replica inside one node: vLLM's multi-node data parallel
        local = gpus_on_head // per_replica
        steps, start = [], 0
        for i, node in enumerate(nodes):
            n_local = len(next(p.gpus for p in c.placement if p.node == node)) // per_replica
            args = base + ["--data-parallel-size", str(c.dp), "--data-parallel-size-local", str(n_local),
                           "--data-parallel-address", _q(head), "--data-parallel-rpc-port", str(VLLM_DP_RPC_PORT)]
            if i:
                args += ["--headless", "--data-parallel-start-rank", str(start)]
            steps.append(NodeCommand(node, _env(c, node) + " ".join(args)))
            start += n_local
        return LaunchCommands("vllm", tuple(steps[1:] + steps[:1]),
                              (f"data parallel across {len(nodes)} nodes, {local} replica(s) on the head; "
                               "secondaries run --headless and join the head's RPC port",))
    # TP x PP spans nodes: a Ray cluster, then one `vllm serve` on the head
    steps = [NodeCommand(head, f"ray start --head --port {RAY_PORT}")]
    steps += [NodeCommand(n, f"{_env(c, n)}ray start --address {_q(head)}:{RAY_PORT}".strip()) for n in nodes[1:]]
    notes = ["TP x PP spans nodes: vLLM runs its workers on a Ray cluster"]
    if c.dp > 1:
        notes.append(f"DP {c.dp} over multi-node replicas: start one Ray cluster and server per replica "
                     "and put a router in front (vLLM cannot span DP replicas over one Ray cluster here)")
    steps.append(NodeCommand(head, _env(c, head) + " ".join(base + ["--distributed-executor-backend", "ray"])))
    return LaunchCommands("vllm", tuple(steps), tuple(notes))


def sglang_commands(c: Candidate, model: str, opts: PlanOptions, *, mla: bool = False) -> LaunchCommands:
    nodes = list(dict.fromkeys(c.nodes_used))
    head = nodes[0]
    args = ["python", "-m", "sglang.launch_server", "--model-path", _q(model), "--tp", str(c.tp * c.dp if mla and c.dp > 1 else c.tp)]
    notes = []
    if c.dp > 1:
        args += ["--dp", str(c.dp)]
        if mla:
            args.append("--enable-dp-attention")
            notes.append("MLA model: DP attention (--enable-dp-attention) keeps one latent KV cache per DP rank "
                         "instead of replicating it under TP; --tp is the whole group, attention TP is tp/dp")
    if c.pp > 1:
        args += ["--pp-size", str(c.pp)]
        notes.append("pipeline parallel in SGLang (--pp-size) is recent: check your version's server arguments")
    if c.ep > 1:
        args += ["--ep-size", str(c.ep)]
    args += ["--context-length", str(opts.context), "--mem-fraction-static", f"{opts.gpu_memory_utilization:g}"]
    if opts.kv_dtype.startswith("fp8"):
        args += ["--kv-cache-dtype", "fp8_e4m3"]
    if len(nodes) == 1:
        return LaunchCommands("sglang", (NodeCommand(head, _env(c, head) + " ".join(args)),), tuple(notes))
    steps = tuple(
        NodeCommand(n, _env(c, n) + " ".join(args + ["--nnodes", str(len(nodes)), "--node-rank", str(i),
                                                      "--dist-init-addr", f"{_q(head)}:{SGLANG_DIST_PORT}"]))
        for i, n in enumerate(nodes))
    return LaunchCommands("sglang", steps, tuple(notes))


def launch_commands(c: Candidate, model: str, opts: PlanOptions, *, mla: bool = False) -> tuple[LaunchCommands, ...]:
    return (vllm_commands(c, model, opts), sglang_commands(c, model, opts, mla=mla))
