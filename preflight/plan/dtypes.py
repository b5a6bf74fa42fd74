"""Bytes per parameter / per KV element for the precisions the planner accepts.

Values from planner-notes.md §1.1: fp8 block-128 checkpoints carry ~0.4% of scales,
AWQ/GPTQ int4 g128 carry an fp16 scale and a 4-bit zero per 128 weights, MXFP4 is 4.25 bits.
"""

from __future__ import annotations

from .errors import PlanError

WEIGHT_BYTES: dict[str, float] = {
    "bf16": 2.0,
    "fp16": 2.0,
    "fp8": 1.004,  # 1 B + ~0.4% block scales (planner-notes §1.1)
    "int4": 0.5 + 2 / 128 + 0.5 / 128,  # g128: fp16 scale + 4-bit zero per group
    "mxfp4": 4.25 / 8,
}

KV_BYTES: dict[str, float] = {"bf16": 2.0, "fp16": 2.0, "auto": 2.0, "fp8": 1.0}

# The precisions the CLI (--weights, --kv-dtype) and the TUI's plan screen offer: the one list of them.
WEIGHT_DTYPES: tuple[str, ...] = tuple(WEIGHT_BYTES)
KV_DTYPES: tuple[str, ...] = tuple(k for k in KV_BYTES if k != "auto")  # "auto" is the engine's alias of bf16

# Block/group size a quantized checkpoint imposes on per-rank linear widths when the
# checkpoint itself does not say (planner-notes §2.3: FP8 block 128x128, AWQ/GPTQ group 128).
DEFAULT_QUANT_BLOCK: dict[str, int] = {"fp8": 128, "int4": 128}

# Minimum compute capability per weight precision (planner-notes §2.7).
MIN_COMPUTE_CAPABILITY: dict[str, float] = {"bf16": 8.0, "fp8": 8.9}


def weight_bytes(dtype: str) -> float:
    try:
        return WEIGHT_BYTES[dtype.lower()]
    except KeyError:
        raise PlanError(f"unknown weight precision {dtype!r}; use one of {', '.join(WEIGHT_BYTES)}") from None


def kv_bytes(dtype: str) -> float:
    try:
        return KV_BYTES[dtype.lower()]
    except KeyError:
        raise PlanError(f"unknown KV cache precision {dtype!r}; use one of {', '.join(KV_BYTES)}") from None
