"""gpus.yaml's GB200/GB300 entries carry what the planner needs for NVL72 racks, each with its source."""

from __future__ import annotations

import pytest

from preflight.reference import gpu_spec_for, gpu_specs

PLANNER_FIELDS = ("memory_gb", "hbm_bw_tbps", "bf16_tflops", "fp8_tflops", "fp4_tflops", "nvlink_gen",
                  "nvlink_bw_gbps_unidir", "nvlink_domain_gpus", "gpus_per_node", "compute_capability")


def test_every_entry_names_its_source_and_how_it_was_verified() -> None:
    for spec in gpu_specs():
        assert spec.get("id") and spec.get("source") and spec.get("verified"), spec.get("id")


@pytest.mark.parametrize("gpu_id,name", [("gb200", "NVIDIA GB200"), ("gb300", "NVIDIA GB300")])
def test_nvl72_entries_have_the_planner_fields(gpu_id: str, name: str) -> None:
    spec = gpu_spec_for(name)  # the name nvidia-smi prints (sglang#11208 for GB200)
    assert spec is not None and spec["id"] == gpu_id
    assert all(spec.get(f) is not None for f in PLANNER_FIELDS), [f for f in PLANNER_FIELDS if spec.get(f) is None]
    assert spec["nvlink_domain_gpus"] == 72 and spec["gpus_per_node"] * spec["nvlink_domain_nodes"] == 72
    assert spec["bf16_tflops"] < spec["fp8_tflops"] < spec["fp4_tflops"]


def test_nvl72_hints_do_not_capture_other_gpus() -> None:
    assert gpu_spec_for("NVIDIA B200") is None or gpu_spec_for("NVIDIA B200")["id"] == "b200"  # type: ignore[index]
    assert gpu_spec_for("NVIDIA GH200 480GB") is None or gpu_spec_for("NVIDIA GH200 480GB")["id"] not in {"gb200", "gb300", "h200-sxm"}  # type: ignore[index]
