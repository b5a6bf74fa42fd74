"""Why a layout is illegal or unsafe on this fleet: vLLM's hard checks plus fleet facts.

Rules and their sources are in planner-notes.md §2. Each Reason names the measured fact or
config field it came from, so the table can say "gpu-04: nvlink domain 7 (topology)".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..reference import gpu_spec_for, gpu_specs
from .dtypes import DEFAULT_QUANT_BLOCK, MIN_COMPUTE_CAPABILITY
from .fabric import fabric_evidence, shared_domain
from .models import ModelSpec
from .shapes import FleetShape, NodeShape, NvlinkDomain, PlanOptions

SEVERITIES = ("unsafe", "risky", "info")
MIN_FABRIC_GBITS = 100.0  # inter-node fabric below this makes PP/DP/EP across nodes risky
PCIE_TP_LIMIT = 2  # TP above this over PCIe only: all-reduce busbw ~28-35 GB/s (planner-notes §5)


@dataclass(frozen=True)
class Reason:
    severity: str  # unsafe | risky | info
    code: str
    text: str
    fact_source: str


def _node_fact(node: NodeShape, what: str) -> str:
    return f"{node.name}: {what} ({node.facts_source})" if node.facts_source else f"{node.name}: {what}"


def quant_block(model: ModelSpec, opts: PlanOptions) -> tuple[int | None, str]:
    """The quantization block per-rank widths must respect, and where that number came from."""
    if opts.quant_block:
        return opts.quant_block, f"option quant_block={opts.quant_block}"
    if model.quant_block:
        return model.quant_block, model.fact("quantization_config.weight_block_size", model.quant_block)
    block = DEFAULT_QUANT_BLOCK.get(opts.weight_dtype.lower())
    if block:
        return block, f"weight_dtype {opts.weight_dtype}: block-quantized checkpoint assumed, block {block} (planner-notes §2.3)"
    return None, ""


def model_reasons(model: ModelSpec, *, tp: int, pp: int, dp: int, ep: int, opts: PlanOptions,
                  memo: dict[tuple[object, ...], list[Reason]] | None = None) -> list[Reason]:
    """Checks that depend only on the model and the layout (vLLM raises on the unsafe ones).

    `memo` (one per model and options): each part is worked out once per the layout numbers it reads
    (the heads per TP size, the MLP split per shard count, ...), not once per layout.
    """
    if memo is None:
        memo = {}
    out = list(_part(memo, ("tp", tp), _tp_reasons, model, tp))
    shards = 1 if ep > 1 else tp * dp
    out += _part(memo, ("mlp", tp, shards, ep == 1), _mlp_width_reasons, model, tp, dp, ep, opts)
    if pp > model.layers:
        out.append(Reason("unsafe", "pp.layers", f"PP={pp} exceeds the {model.layers} layers",
                          model.fact("num_hidden_layers", model.layers)))
    if ep > 1:
        out += _part(memo, ("ep", ep, tp * dp), _ep_reasons, model, tp, dp, ep)
    out += _part(memo, ("context",), _context_reasons, model, opts)
    return out


def _part(memo: dict[tuple[object, ...], list[Reason]], key: tuple[object, ...], make: Callable[..., list[Reason]],
          *args: Any) -> list[Reason]:
    got = memo.get(key)
    if got is None:
        got = memo[key] = make(*args)
    return got


def _tp_reasons(model: ModelSpec, tp: int) -> list[Reason]:
    out: list[Reason] = []
    if model.heads % tp:
        out.append(Reason("unsafe", "tp.heads", f"TP={tp} does not divide the {model.heads} attention heads "
                          "(vLLM: 'Total number of attention heads must be divisible by tensor parallel size')",
                          model.fact("num_attention_heads", model.heads)))
    if model.is_mla:
        if tp > 1:
            out.append(Reason("info", "kv.mla_replicated", f"MLA latent cache is not sharded by TP: each of the {tp} "
                              "TP ranks holds the full cache for its layers; DP (+EP) splits sequences instead",
                              model.fact("kv_lora_rank", model.kv_lora_rank)))
    elif tp >= model.kv_heads:
        if tp % model.kv_heads:
            out.append(Reason("unsafe", "tp.kv_heads", f"TP={tp} is not a multiple of the {model.kv_heads} KV heads",
                              model.fact("num_key_value_heads", model.kv_heads)))
        elif tp > model.kv_heads:
            out.append(Reason("info", "kv.replicated", f"TP={tp} > {model.kv_heads} KV heads: each KV head is replicated "
                              f"{tp // model.kv_heads}x, so KV per GPU stops shrinking with TP",
                              model.fact("num_key_value_heads", model.kv_heads)))
    elif model.kv_heads % tp:
        out.append(Reason("unsafe", "tp.kv_heads", f"TP={tp} does not divide the {model.kv_heads} KV heads",
                          model.fact("num_key_value_heads", model.kv_heads)))
    return out


def _ep_reasons(model: ModelSpec, tp: int, dp: int, ep: int) -> list[Reason]:
    if not model.is_moe:
        return [Reason("unsafe", "ep.dense", f"EP={ep} requested but {model.id} is dense (no routed experts)",
                       model.fact("n_routed_experts", 0))]
    out: list[Reason] = []
    if ep != tp * dp:
        out.append(Reason("unsafe", "ep.size", f"vLLM sets EP = TP × DP = {tp * dp} with "
                          f"--enable-expert-parallel; EP={ep} is not expressible", "planner-notes §2.5"))
    if model.n_routed_experts % ep:
        out.append(Reason("unsafe", "ep.experts", f"{model.n_routed_experts} experts do not split evenly over "
                          f"EP={ep} (uneven placement not verified)",
                          model.fact("n_routed_experts", model.n_routed_experts)))
    return out


def _context_reasons(model: ModelSpec, opts: PlanOptions) -> list[Reason]:
    out: list[Reason] = []
    mpe = model.max_position_embeddings
    if mpe and opts.context > mpe:
        out.append(Reason("unsafe", "context.max", f"context {opts.context} exceeds the model's "
                          f"max_position_embeddings {mpe}", model.fact("max_position_embeddings", mpe)))
    if model.attention in ("gqa_with_sliding_window", "gqa_chunked"):
        out.append(Reason("info", "kv.windowed", f"{model.attention} layers budgeted as full attention "
                          "(conservative bound, planner-notes §1.2)", model.fact("attention", model.attention)))
    return out


def _mlp_width_reasons(model: ModelSpec, tp: int, dp: int, ep: int, opts: PlanOptions) -> list[Reason]:
    """Per-rank MLP widths divide evenly, and by the quantization block when there is one."""
    block, block_src = quant_block(model, opts)
    widths: list[tuple[str, int, int]] = []
    if model.dense_layers:
        key = "intermediate_size_mlp" if model.dense_intermediate else "intermediate_size"
        widths.append((key, model.dense_mlp_width, tp))
    if model.is_moe:
        key = "moe_intermediate_size" if model.moe_intermediate else "intermediate_size"
        # Without EP, vLLM TP-shards every expert over TP x DP; with EP each expert stays whole.
        widths.append((key, model.expert_width, 1 if ep > 1 else tp * dp))
    out: list[Reason] = []
    for key, width, shards in widths:
        if width % shards:
            out.append(Reason("unsafe", "tp.mlp_width", f"{key} {width} does not split over {shards} ranks",
                              model.fact(key, width)))
        elif block and (width // shards) % block:
            out.append(Reason("unsafe", "quant.block", f"{key} {width} / {shards} = {width // shards} per rank is not a "
                              f"multiple of the quantization block {block} (vLLM: 'not divisible by weight "
                              f"quantization block_n'); use a smaller TP{' or EP' if model.is_moe and ep == 1 else ''}",
                              f"{model.fact(key, width)}; {block_src}"))
    return out


def fleet_reasons(
    model: ModelSpec, *, tp: int, pp: int, dp: int, ep: int, nodes: Sequence[NodeShape], fleet: FleetShape,
    opts: PlanOptions, names: Sequence[str] | None = None, memo: dict[tuple[object, ...], list[Reason]] | None = None,
) -> list[Reason]:
    """Checks against the fleet: NVLink domain, fabric, version and GPU consistency.

    `nodes` may be one representative per kind of node (the planner dedupes a 1,000-node fleet);
    `names` are then every node the layout uses (the multi-node NVLink domain must hold them all).
    `memo`: the parts that depend only on these nodes (and TP, the precision, what crosses nodes) are
    kept there by the nodes' identity; the caller keeps the nodes alive while it keeps the memo.
    """
    names = tuple(names) if names is not None else tuple(n.name for n in nodes)
    out: list[Reason] = []
    narrow = min(nodes, key=lambda n: (n.gpus, n.nvlink_domain))
    domain = shared_domain(fleet, names) if len(names) > 1 else None
    ids = tuple(map(id, nodes))
    if tp > narrow.gpus:
        out.append(_cross_node_tp(tp, narrow, domain, nodes))
    else:
        out += _memo(memo, ("intra", ids, tp), lambda: _intra_node_tp(tp, nodes))
    out += _memo(memo, ("dtype", ids, opts.weight_dtype), lambda: _dtype_reasons(nodes, opts))
    if len(names) > 1:
        out += _multinode_reasons(nodes, fleet, tp=tp, pp=pp, dp=dp, ep=ep, moe=model.is_moe, domain=domain,
                                  memo=memo, ids=ids)
    return out


def _memo(memo: dict[tuple[object, ...], list[Reason]] | None, key: tuple[object, ...],
          make: Callable[[], list[Reason]]) -> list[Reason]:
    if memo is None:
        return make()
    got = memo.get(key)
    if got is None:
        got = memo[key] = make()
    return got


def _cross_node_tp(tp: int, narrow: NodeShape, domain: NvlinkDomain | None, nodes: Sequence[NodeShape]) -> Reason:
    """TP across nodes: fine inside one healthy multi-node NVLink domain (NVL72), unsafe over IB."""
    if domain is not None and domain.healthy and tp <= domain.gpus and all(n.nvlink_domain >= n.gpus for n in nodes):
        return Reason("info", "tp.nvlink_domain", f"TP={tp} spans nodes inside one healthy {domain.gpus}-GPU NVLink "
                      f"domain ({len(domain.nodes)} nodes)", _domain_fact(domain, narrow))
    if domain is not None and not domain.healthy:
        return Reason("unsafe", "tp.cross_node", f"TP={tp} spans nodes of an NVLink domain broken by "
                      f"{', '.join(domain.broken_by) or 'an unhealthy member'} (its fabric is not healthy: "
                      "each node keeps only its own NVLink)", _domain_fact(domain, narrow))
    return Reason("unsafe", "tp.cross_node", f"TP={tp} spans nodes ({narrow.gpus} GPUs per node) off an NVLink "
                  "domain; vLLM advises TP = GPUs per node and PP = nodes", _node_fact(narrow, f"{narrow.gpus} GPUs"))


def _domain_fact(domain: NvlinkDomain, node: NodeShape) -> str:
    if node.described:
        return f"described fleet, not measured (nvl={domain.gpus})"
    return (f"nvidia-smi -q Fabric: ClusterUUID {domain.cluster_uuid or '?'}, CliqueId {domain.clique_id or '?'} "
            f"on {len(domain.nodes)} nodes")


def _intra_node_tp(tp: int, nodes: Sequence[NodeShape]) -> list[Reason]:
    node = min(nodes, key=lambda n: n.nvlink_domain)
    dom = node.nvlink_domain
    if dom <= 1:
        if tp > PCIE_TP_LIMIT:
            return [Reason("risky", "tp.pcie", f"TP={tp} over PCIe only: all-reduce runs at PCIe/host speed; "
                           "prefer PP or DP", _node_fact(node, "nvlink domain 1 (topology: PCIe only)"))]
        if tp == 2:
            return [Reason("info", "tp.pcie", "TP=2 over PCIe (no NVLink)",
                           _node_fact(node, "nvlink domain 1 (topology: PCIe only)"))]
    elif tp > dom:
        return [Reason("unsafe", "tp.nvlink", f"TP={tp} exceeds the {dom}-GPU NVLink domain of {node.name} "
                       f"({node.gpus} GPUs; a link down or a partial clique)",
                       _node_fact(node, f"nvlink domain {dom} (topology)"))]
    return []


@functools.lru_cache(maxsize=256)
def spec_for(gpu_model: str) -> dict[str, Any] | None:
    """gpus.yaml entry for a GPU name, cached: a 1,000-node plan asks the same name thousands of times."""
    found = gpu_spec_for(gpu_model)
    if found is None:  # a described fleet names a GPU by its gpus.yaml name when it has no nvidia-smi hint
        found = next((s for s in gpu_specs() if gpu_model in (s.get("name"), s.get("id"))), None)
    return found


def _dtype_reasons(nodes: Sequence[NodeShape], opts: PlanOptions) -> list[Reason]:
    need = MIN_COMPUTE_CAPABILITY.get(opts.weight_dtype.lower())
    if need is None:
        return []
    for node in nodes:
        spec = spec_for(node.gpu_model)
        if not spec:
            continue
        cc = spec.get("compute_capability")
        if cc is not None and float(cc) < need:
            return [Reason("unsafe", "gpu.dtype", f"{opts.weight_dtype} needs compute capability ≥ {need}; "
                           f"{node.gpu_model} is {cc}", f"gpus.yaml {spec['id']}: compute_capability={cc}")]
    return []


def _consistency_reasons(nodes: Sequence[NodeShape]) -> list[Reason]:
    """One GPU model and memory, one driver / CUDA / NCCL across the nodes of a multi-node layout."""
    out: list[Reason] = []
    for attr, label in (("gpu_model", "GPU model"), ("gpu_memory_mib", "GPU memory")):
        values = {getattr(n, attr) for n in nodes}
        if len(values) > 1:
            facts = "; ".join(_node_fact(n, f"{label} {getattr(n, attr)}") for n in nodes)
            out.append(Reason("unsafe", "fleet.gpu_mix", f"mixed {label} across the nodes of this config "
                              f"({', '.join(map(str, sorted(values)))})", facts))
    if all(n.described for n in nodes):
        out.append(Reason("info", "fleet.described", "described fleet, not measured: one driver / CUDA / NCCL "
                          "version assumed on every node", "--fleet"))
        return out
    for attr in ("driver", "cuda", "nccl"):
        values = {getattr(n, attr) for n in nodes}
        if None in values or len(values) > 1:
            facts = "; ".join(_node_fact(n, f"{attr} {getattr(n, attr) or 'unknown'}") for n in nodes)
            if None in values:
                out.append(Reason("risky", f"fleet.{attr}", f"{attr} version not collected on every node", facts))
            else:
                out.append(Reason("unsafe", f"fleet.{attr}", f"{attr} differs across nodes "
                                  f"({', '.join(sorted(values))}); a multi-node job needs one version", facts))
    return out


def _multinode_reasons(
    nodes: Sequence[NodeShape], fleet: FleetShape, *, tp: int, pp: int, dp: int, ep: int, moe: bool = False,
    domain: NvlinkDomain | None = None, memo: dict[tuple[object, ...], list[Reason]] | None = None,
    ids: tuple[int, ...] = (),
) -> list[Reason]:
    out = list(_memo(memo, ("consistency", ids), lambda: _consistency_reasons(nodes)))
    # dense DP replicas inside one node each are separate servers; MoE expert layers span TP x DP
    # ranks even without EP (planner-notes §1.1), so their traffic crosses nodes
    if not moe and tp * pp <= min(n.gpus for n in nodes):
        out.append(Reason("info", "fabric.independent", f"DP {dp} replicas each inside one node (TP×PP = {tp * pp}): "
                          "no collective crosses nodes, the fabric is not on the serving path", "placement"))
        return out
    uses = [w for w, n in (("PP", pp), ("DP", dp), ("EP", ep)) if n > 1]
    what = "/".join(uses) or "traffic"
    if domain is not None and domain.healthy:
        out.append(Reason("info", "fabric.nvlink", f"{what} across nodes inside one healthy {domain.gpus}-GPU NVLink "
                          "domain: the traffic stays on NVLink", _domain_fact(domain, nodes[0])))
        return out
    return out + _memo(memo, ("fabric", ids, id(fleet), what, ep), lambda: _fabric_reasons(nodes, fleet, what=what, ep=ep))


def _fabric_reasons(nodes: Sequence[NodeShape], fleet: FleetShape, *, what: str, ep: int) -> list[Reason]:
    """Fabric evidence: measured > estimated from healthy ports (labelled) > none (risky)."""
    out: list[Reason] = []
    slow = min(nodes, key=lambda n: n.ib_gbps or 0.0)
    if not slow.ib_gbps or slow.ib_gbps <= 0:
        out.append(Reason("risky", "fabric.none", f"{what} across nodes but no active IB/RoCE port on {slow.name}",
                          _node_fact(slow, "IB/RoCE active rate unknown or 0")))
    elif slow.ib_gbps < MIN_FABRIC_GBITS:
        out.append(Reason("risky", "fabric.slow", f"{what} across nodes over {slow.ib_gbps:g} Gb/s "
                          f"(< {MIN_FABRIC_GBITS:g} Gb/s)", _node_fact(slow, f"IB/RoCE {slow.ib_gbps:g} Gb/s")))
    ev = fabric_evidence(fleet, nodes)
    if ev.level == "measured":
        out.append(Reason("info", "fabric.measured", f"inter-node all-reduce busbw {ev.busbw_gbps:g} GB/s", ev.source))
    elif ev.level == "estimated":
        out.append(Reason("info", "fabric.estimated", f"{what} across nodes: inter-node all-reduce busbw estimated "
                          f"{ev.formula} (not measured: `preflight nccl-multinode` measures it)", ev.source))
    else:
        out.append(Reason("risky", "fabric.unmeasured", f"{what} across nodes but the multi-node all-reduce "
                          "bandwidth was not measured", "no multi-node nccl-tests result"))
    if ep > 1 and ev.level != "measured":
        out.append(Reason("risky", "ep.cross_node", f"EP={ep} all-to-all across nodes off an NVLink domain: the "
                          "link-rate estimate covers all-reduce, not all-to-all; measure the fabric first",
                          ev.source))
    return out
