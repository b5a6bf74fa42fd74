"""Reference facts shipped with preflight (GPU specs), looked up by the name nvidia-smi prints."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml


@functools.lru_cache(maxsize=1)
def gpu_specs() -> list[dict[str, Any]]:
    text = resources.files("preflight.data.reference").joinpath("gpus.yaml").read_text()
    data = yaml.safe_load(text) or {}
    return list(data.get("gpus") or [])


def gpu_spec_for(name: str | None) -> dict[str, Any] | None:
    """The spec whose `nvidia_smi_name_hint` matches the GPU name nvidia-smi printed."""
    if not name:
        return None
    lowered = name.lower()
    best: dict[str, Any] | None = None
    for spec in gpu_specs():
        hint = str(spec.get("nvidia_smi_name_hint") or "").lower()
        if hint and (hint == lowered or hint in lowered):
            if best is None or len(hint) > len(str(best.get("nvidia_smi_name_hint"))):
                best = spec
    return best
