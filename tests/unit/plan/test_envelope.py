"""The parallelism envelope (preflight/plan/envelope.py) over the demo recording and hand-built shapes."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from preflight.cli import demo_bundle_path
from preflight.collect.bundle import load_bundle
from preflight.engine import judge
from preflight.plan import envelope as env_mod
from preflight.plan.envelope import envelope
from preflight.plan.shapes import FleetShape, NodeShape


@pytest.fixture(scope="module")
def demo():
    return judge(load_bundle(str(demo_bundle_path())))


def test_demo_envelope_without_a_model(demo) -> None:
    report, facts = demo
    env = envelope(report, facts)
    assert (env.nodes, env.healthy_nodes, env.healthy_gpus) == (4, 2, 16)
    assert [n for n, _ in env.excluded] == ["gpu-03", "gpu-04"]
    assert env.tp_max == 8 and not env.tp_spans_nodes
    assert env.fabric == "estimated"  # healthy 400 Gb/s-class ports, no multi-node all-reduce measured
    assert {c.axis: c.verdict for c in env.crossings} == {"PP": "estimated", "DP": "estimated", "EP": "risky"}
    assert env.model is None and env.layouts == ()


def test_demo_envelope_with_a_model_lists_safe_layouts(demo) -> None:
    report, facts = demo
    env = envelope(report, facts, "meta-llama/Llama-3.1-70B")
    assert env.model == "meta-llama/Llama-3.1-70B" and 1 <= len(env.layouts) <= 3
    assert all(lay.verdict == "safe" for lay in env.layouts)
    assert len({lay.label for lay in env.layouts}) == len(env.layouts)
    assert env.layouts[0].label.startswith("TP8")


def test_measured_fabric_and_unknown_model(demo) -> None:
    report, facts = demo
    env = envelope(report, facts, "no-such-model", internode=(180.0, "nccl-multinode run"))
    assert env.fabric == "measured" and "180" in env.fabric_detail
    assert {c.axis: c.verdict for c in env.crossings} == {"PP": "yes", "DP": "yes", "EP": "yes"}
    assert env.layouts == () and env.model_note


def _node(name: str, dom: int = 8, ib: float | None = 3200.0) -> NodeShape:
    return NodeShape(name=name, gpus=4 if dom > 8 else 8, gpu_model="NVIDIA H100 80GB HBM3", gpu_memory_mib=81559,
                     nvlink_domain=min(dom, 8), ib_gbps=ib)


@dataclass(frozen=True)
class _Domain:  # what the planner's NvlinkDomain carries; read through getattr
    gpus: int
    nodes: tuple[str, ...]
    healthy: bool = True


def test_shape_reading_is_defensive() -> None:
    plain = FleetShape(nodes=(_node("a"), _node("b", dom=4)))
    assert env_mod._nvlink(plain)[0] == 8 and env_mod._nvlink(plain)[3] == 4
    assert env_mod._fabric(FleetShape(nodes=(_node("a"), _node("b", ib=None))))[0] == "none"
    assert env_mod._fabric(FleetShape(nodes=(_node("a"),)))[0] == "n/a"

    four = NodeShape(name="r1", gpus=4, gpu_model="NVIDIA GB200", gpu_memory_mib=189471, nvlink_domain=4, ib_gbps=1600.0)

    class Wide:  # a shape with multi-node NVLink domains (GB200 NVL72-like)
        nodes = (four, NodeShape(**{**four.__dict__, "name": "r2"}), NodeShape(**{**four.__dict__, "name": "r3"}))
        excluded = ()
        nvlink_domains = (_Domain(8, ("r1", "r2")), _Domain(12, ("r1", "r2", "r3", "gone"), healthy=False))
        internode_busbw_gbps = None

    best, where, spans, small = env_mod._nvlink(Wide())  # type: ignore[arg-type]
    assert (best, spans, small) == (8, True, 4)  # the broken domain does not count
    assert "r1" in where and "2 nodes" in where
    assert {c.axis: c.verdict for c in env_mod._crossings("estimated", True)}["EP"] == "yes"
