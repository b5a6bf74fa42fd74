"""Model architecture facts the planner needs, from the built-in catalog or a HF config.json.

The catalog (preflight/data/reference/models.yaml) uses Hugging Face config.json key names,
so one parser serves both. Parameter counts are computed from the fields (the same formulas
as shared/reference/param_check.py) so the memory math and the published total cross-check.
"""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import PlanError


@dataclass(frozen=True)
class ParamBreakdown:
    """Parameter counts split by how parallelism shards them."""

    embedding: int  # input embedding + LM head (vocab-parallel, TP-sharded; kept in bf16 when quantized)
    attention: int  # attention projections + norms, all layers (TP-sharded)
    dense_mlp: int  # MLP of dense layers (TP-sharded)
    shared_experts: int  # shared experts + routers of MoE layers (TP-sharded, not split by EP)
    routed_experts: int  # routed experts (split over TP x DP, or EP = TP x DP, in vLLM)

    @property
    def total(self) -> int:
        return self.embedding + self.attention + self.dense_mlp + self.shared_experts + self.routed_experts


@dataclass(frozen=True)
class ModelSpec:  # frozen: the derived sizes below are cached properties (the planner asks per layout)
    """One model's config facts; field names are short forms of the HF config keys."""

    id: str
    arch: str
    attention: str  # gqa | mla | gqa_with_sliding_window | gqa_chunked
    layers: int
    hidden: int
    intermediate: int  # dense MLP width (per expert for Mixtral-style configs)
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tie_embeddings: bool = False
    max_position_embeddings: int | None = None
    qkv_bias: bool = False
    qk_norm: bool = False
    # MoE (n_routed_experts == 0 means dense)
    n_routed_experts: int = 0
    experts_per_token: int = 0
    moe_intermediate: int = 0
    n_shared_experts: int = 0
    first_k_dense: int = 0  # DeepSeek first_k_dense_replace
    moe_layer_step: int = 1  # Llama-4 interleave_moe_layer_step: every step-th layer is MoE
    dense_intermediate: int | None = None  # Llama-4 intermediate_size_mlp (dense layers)
    # MLA (DeepSeek-V2/V3)
    q_lora_rank: int | None = None
    kv_lora_rank: int | None = None
    qk_nope_head_dim: int | None = None
    qk_rope_head_dim: int | None = None
    v_head_dim: int | None = None
    # Local attention (sliding window, or Llama-4's chunked attention): the tokens a windowed layer
    # keeps, and which layers are windowed (True per layer; () = none). vLLM v1 frees the KV blocks
    # outside the window (vllm/v1/core/single_type_kv_cache_manager.py: SlidingWindowManager,
    # ChunkedLocalAttentionManager), so those layers hold at most the window per sequence.
    sliding_window: int | None = None
    windowed_layers: tuple[bool, ...] = ()
    # quantized checkpoint, when the config says so
    quant_method: str | None = None
    quant_block: int | None = None
    params_card: int | None = None
    params_active_card: int | None = None
    source: str = ""  # where the fields came from, short: "models.yaml <id>" or "config.json <path>"
    source_detail: str = ""  # the catalog's provenance text

    @property
    def is_moe(self) -> bool:
        return self.n_routed_experts > 0

    @property
    def is_mla(self) -> bool:
        return self.attention == "mla"

    @property
    def short_name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    def fact(self, key: str, value: object) -> str:
        """A fact_source string for one config field of this model."""
        return f"{self.source}: {key}={value}"

    def is_moe_layer(self, i: int) -> bool:
        return self.is_moe and i >= self.first_k_dense and (i + 1) % self.moe_layer_step == 0

    def layer_window(self, i: int) -> int | None:
        """Tokens layer i keeps in its KV cache when it is a windowed layer, else None (full context)."""
        if self.sliding_window and i < len(self.windowed_layers) and self.windowed_layers[i]:
            return self.sliding_window
        return None

    @functools.cached_property
    def windowed_layer_count(self) -> int:  # cached: the planner asks for it per layout (the spec is frozen)
        return sum(1 for i in range(self.layers) if self.layer_window(i))

    @functools.cached_property
    def stage_cache(self) -> dict[tuple[int, int], tuple[tuple[int, int, range, int, int, int, int, int], ...]]:
        """memory._stages' results for this model, by (PP, context): filled as plans ask."""
        return {}

    @functools.cached_property
    def moe_layers(self) -> int:
        return sum(1 for i in range(self.layers) if self.is_moe_layer(i))

    @functools.cached_property
    def dense_layers(self) -> int:
        return self.layers - self.moe_layers

    @functools.cached_property
    def dense_mlp_width(self) -> int:
        return self.dense_intermediate or self.intermediate

    @functools.cached_property
    def expert_width(self) -> int:
        return self.moe_intermediate or self.intermediate

    @functools.cached_property
    def kv_elems_per_token_per_layer(self) -> int:
        """Cached elements per token per layer: K and V heads, or MLA's one latent (no factor 2)."""
        if self.is_mla:
            return (self.kv_lora_rank or 0) + (self.qk_rope_head_dim or 0)
        return 2 * self.kv_heads * self.head_dim

    def _attention_params(self) -> int:
        d, h, hd, kv = self.hidden, self.heads, self.head_dim, self.kv_heads
        if self.is_mla:
            ql, kl = self.q_lora_rank or 0, self.kv_lora_rank or 0
            nope, rope, vd = self.qk_nope_head_dim or 0, self.qk_rope_head_dim or 0, self.v_head_dim or 0
            q = d * ql + ql + ql * h * (nope + rope) if ql else d * h * (nope + rope)
            kvp = d * (kl + rope) + kl + kl * h * (nope + vd)
            return q + kvp + h * vd * d
        p = d * h * hd + 2 * d * kv * hd + h * hd * d
        if self.qkv_bias:
            p += h * hd + 2 * kv * hd
        if self.qk_norm:
            p += 2 * hd
        if self.arch.startswith("GptOss"):
            p += h * hd + 2 * kv * hd + d + h  # qkv bias, o bias, attention sinks
        return p

    @functools.cached_property
    def attention_per_layer(self) -> int:
        """Attention projections plus the layer's two norms."""
        return self._attention_params() + 2 * self.hidden

    @functools.cached_property
    def dense_mlp_per_layer(self) -> int:
        return 3 * self.hidden * self.dense_mlp_width

    @functools.cached_property
    def moe_shared_per_layer(self) -> int:
        """Shared experts plus the router of one MoE layer (TP-sharded, never split by EP)."""
        if not self.is_moe:
            return 0
        d, fe, e = self.hidden, self.expert_width, self.n_routed_experts
        shared = 3 * d * fe * (1 if self.arch.startswith("Llama4") else self.n_shared_experts)
        return shared + d * e + (e if self.arch.startswith("GptOss") else 0)

    @functools.cached_property
    def expert_params(self) -> int:
        """One routed expert (gate, up, down; biases for gpt-oss)."""
        d, fe = self.hidden, self.expert_width
        return 3 * d * fe + ((2 * fe + d) if self.arch.startswith("GptOss") else 0)

    @functools.cached_property
    def embedding_params(self) -> int:
        return self.vocab * self.hidden * (1 if self.tie_embeddings else 2)

    @functools.cached_property
    def breakdown(self) -> ParamBreakdown:
        return ParamBreakdown(
            embedding=self.embedding_params,
            attention=self.layers * self.attention_per_layer + self.hidden,  # + final norm
            dense_mlp=self.dense_layers * self.dense_mlp_per_layer,
            shared_experts=self.moe_layers * self.moe_shared_per_layer,
            routed_experts=self.moe_layers * self.n_routed_experts * self.expert_params,
        )

    @functools.cached_property
    def params(self) -> int:
        return self.breakdown.total

    @functools.cached_property
    def active_params(self) -> int:
        b = self.breakdown
        if not self.is_moe:
            return b.total
        return b.total - b.routed_experts + b.routed_experts * self.experts_per_token // self.n_routed_experts


_WINDOWED_TYPES = ("sliding_attention", "chunked_attention")


def _window(cfg: dict[str, Any], arch: str, layers: int) -> tuple[int | None, tuple[bool, ...]]:
    """The local-attention window and which layers use it, from HF config keys.

    `layer_types` (gpt-oss, Gemma-3, newer configs) names each layer; Llama-4's `no_rope_layers`
    marks RoPE layers (chunked, 1) and NoPE global layers (0), or `no_rope_layer_interval` N makes
    every N-th layer global; `sliding_window_pattern` N (Gemma-3, this catalog) likewise makes every
    N-th layer global; Gemma-2 alternates (even layers windowed). Otherwise a window applies to every
    layer (Mistral-7B-v0.1). Qwen2/Qwen3 configs carry `sliding_window` with `use_sliding_window: false`.
    """
    if cfg.get("use_sliding_window") is False:
        return None, ()
    raw = cfg.get("sliding_window") or cfg.get("attention_chunk_size")
    if not raw:
        return None, ()
    window = int(raw)
    types = cfg.get("layer_types")
    if isinstance(types, list) and types:
        return window, tuple(str(t) in _WINDOWED_TYPES for t in types[:layers])
    nope = cfg.get("no_rope_layers")
    if isinstance(nope, list) and nope:
        return window, tuple(bool(x) for x in nope[:layers])
    step = cfg.get("sliding_window_pattern") or cfg.get("no_rope_layer_interval") or (2 if arch.startswith("Gemma2") else 0)
    if step:
        return window, tuple((i + 1) % int(step) != 0 for i in range(layers))
    return window, (True,) * layers


_REQUIRED = ("num_hidden_layers", "hidden_size", "num_attention_heads", "vocab_size")


def spec_from_config(cfg: dict[str, Any], *, model_id: str, source: str, source_detail: str = "") -> ModelSpec:
    """Build a ModelSpec from HF config.json keys (or a models.yaml entry, which uses them)."""
    if isinstance(cfg.get("text_config"), dict):  # Llama-4 / multimodal: text fields nested
        cfg = {**cfg["text_config"], **{k: v for k, v in cfg.items() if k in ("architectures", "quantization_config")}}
    missing = [k for k in _REQUIRED if cfg.get(k) in (None, "")]
    if missing:
        raise PlanError(f"{source}: config lacks {', '.join(repr(k) for k in missing)}")
    arch = str(cfg.get("arch") or (cfg.get("architectures") or [""])[0])
    heads = int(cfg["num_attention_heads"])
    hidden = int(cfg["hidden_size"])
    mla = cfg.get("attention") == "mla" or cfg.get("kv_lora_rank") is not None
    experts = int(cfg.get("n_routed_experts") or cfg.get("num_experts") or cfg.get("num_local_experts") or 0)
    intermediate = cfg.get("intermediate_size")
    if intermediate is None:
        raise PlanError(f"{source}: config lacks 'intermediate_size'")
    if experts and not cfg.get("num_experts_per_tok"):
        raise PlanError(f"{source}: MoE config ({experts} experts) lacks 'num_experts_per_tok'")
    if mla:
        for k in ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim"):
            if cfg.get(k) is None:
                raise PlanError(f"{source}: MLA config lacks {k!r}")
    qc = cfg.get("quantization_config") or {}
    block = qc.get("weight_block_size") or qc.get("group_size")
    if isinstance(block, (list, tuple)):
        block = block[0]
    step = int(cfg.get("interleave_moe_layer_step") or cfg.get("decoder_sparse_step") or 1)
    window, windowed = _window(cfg, arch, int(cfg["num_hidden_layers"]))
    return ModelSpec(
        id=model_id,
        arch=arch,
        attention=str(cfg.get("attention") or ("mla" if mla else "gqa")),
        layers=int(cfg["num_hidden_layers"]),
        hidden=hidden,
        intermediate=int(intermediate),
        heads=heads,
        kv_heads=int(cfg.get("num_key_value_heads") or heads),
        head_dim=int(cfg.get("head_dim") or hidden // heads),
        vocab=int(cfg["vocab_size"]),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)),
        max_position_embeddings=cfg.get("max_position_embeddings"),
        qkv_bias=bool(cfg.get("qkv_bias", arch.startswith("Qwen2"))),
        qk_norm=bool(cfg.get("qk_norm", arch.startswith("Qwen3"))),
        n_routed_experts=experts,
        experts_per_token=int(cfg.get("num_experts_per_tok") or 0),
        moe_intermediate=int(cfg.get("moe_intermediate_size") or 0),
        n_shared_experts=int(cfg.get("n_shared_experts") or cfg.get("shared_experts") or 0),
        first_k_dense=int(cfg.get("first_k_dense_replace") or 0),
        moe_layer_step=step,
        dense_intermediate=cfg.get("intermediate_size_mlp"),
        q_lora_rank=cfg.get("q_lora_rank"),
        kv_lora_rank=cfg.get("kv_lora_rank"),
        qk_nope_head_dim=cfg.get("qk_nope_head_dim"),
        qk_rope_head_dim=cfg.get("qk_rope_head_dim"),
        v_head_dim=cfg.get("v_head_dim"),
        sliding_window=window,
        windowed_layers=windowed,
        quant_method=qc.get("quant_method"),
        quant_block=int(block) if block else None,
        params_card=cfg.get("params_card"),
        params_active_card=cfg.get("params_active_card"),
        source=source,
        source_detail=source_detail,
    )


@functools.lru_cache(maxsize=1)
def catalog() -> tuple[ModelSpec, ...]:
    """Every model in preflight/data/reference/models.yaml."""
    text = resources.files("preflight.data.reference").joinpath("models.yaml").read_text()
    entries = (yaml.safe_load(text) or {}).get("models") or []
    return tuple(
        spec_from_config(
            e, model_id=e["id"], source=f"models.yaml {e['id']}", source_detail=" ".join(str(e.get("source", "")).split())
        )
        for e in entries
    )


def _from_catalog(name: str) -> ModelSpec:
    want = name.strip().lower()
    models = catalog()
    for pick in (
        lambda m: m.id.lower() == want,
        lambda m: m.short_name.lower() == want,
        lambda m: m.short_name.lower().startswith(want),
        lambda m: want in m.id.lower(),
    ):
        hits = [m for m in models if pick(m)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise PlanError(f"model name {name!r} is ambiguous: {', '.join(m.id for m in hits)}")
    by_name = {m.id.lower(): m.id for m in models} | {m.short_name.lower(): m.id for m in models}
    close = [by_name[n] for n in difflib.get_close_matches(want, list(by_name), n=8, cutoff=0.4)]
    hint = f"; close matches: {', '.join(list(dict.fromkeys(close))[:5])}" if close else ""
    raise PlanError(f"unknown model {name!r} (not in the catalog, not a config.json path){hint}")


def load_model(name_or_path: str | Path) -> ModelSpec:
    """A catalog model by id or unambiguous short name, or a HF config.json (file or its folder)."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        path = path / "config.json"
    if path.is_file() or text.endswith(".json"):
        try:
            cfg = json.loads(path.read_text())
        except FileNotFoundError:
            raise PlanError(f"{path}: no such config.json") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise PlanError(f"{path}: not a readable config.json ({exc})") from None
        if not isinstance(cfg, dict):
            raise PlanError(f"{path}: config.json is not a JSON object")
        model_id = str(cfg.get("_name_or_path") or path.parent.name or path.stem)
        return spec_from_config(cfg, model_id=model_id, source=f"config.json {path}")
    return _from_catalog(text)
