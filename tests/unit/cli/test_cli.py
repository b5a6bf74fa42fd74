"""The command line on recorded bundles: exit codes 0/1/2/3, JSON to stdout, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from preflight.cli import demo_bundle_path, main
from preflight.collect.bundle import load_bundle, save_bundle

jsonschema = pytest.importorskip("jsonschema")
SCHEMA = json.loads((Path(__file__).resolve().parents[3] / "preflight" / "report" / "schema.json").read_text())


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *args], capture_output=True, text=True, timeout=120)


def test_demo_reports_the_recorded_faults() -> None:
    proc = run("demo", "--no-color")
    assert proc.returncode == 0, proc.stderr  # the demo ran; its recording's verdict is in the report
    assert run("demo", "--strict", "-q").returncode == 2
    assert "RECORDING" in proc.stdout
    assert "versions.driver.consistent · gpu-03" in proc.stdout
    assert "nvlink.links.active · gpu-04 · GPU5" in proc.stdout


def test_demo_json_to_stdout_validates() -> None:
    proc = run("demo", "--json", "-")
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["source"]["kind"] == "demo" and doc["summary"]["exit_code"] == 2
    fails = {(f["node"], f["check"]) for n in doc["nodes"] for f in n["findings"] if f["status"] == "fail"}
    # gpu-04's degraded NVLink also shows in its topology matrix (NV16 for GPU5), so its topology differs too
    assert fails == {("gpu-03", "versions.driver.consistent"), ("gpu-04", "nvlink.links.active"),
                     ("gpu-04", "topology.consistent")}


def test_exit_zero_when_only_healthy_nodes(tmp_path) -> None:
    bundle = load_bundle(demo_bundle_path())
    bundle.nodes = [n for n in bundle.nodes if n.name in ("gpu-01", "gpu-02")]
    save_bundle(bundle, tmp_path / "b")
    assert main(["replay", str(tmp_path / "b"), "-q"]) == 0


def test_fail_on_warn_and_check_selection(tmp_path) -> None:
    # selecting only the versions checks on the mismatched node's fleet still fails; skipping them passes
    assert main(["demo", "--strict", "-q", "--checks", "versions.*"]) == 2
    assert main(["demo", "--strict", "-q", "--skip", "versions.driver.*,nvlink,topology.consistent"]) == 0
    assert main(["demo", "--strict", "-q", "--skip", "versions.driver.*,nvlink,topology.consistent", "--fail-on", "warn"]) == 0


def test_bad_inputs_exit_3(tmp_path) -> None:
    bad = tmp_path / "inv.yaml"
    bad.write_text("groups:\n  a:\n    hosts:\n      n1: {porrt: 22}\n")
    proc = run("run", "-i", str(bad))
    assert proc.returncode == 3
    assert "inv.yaml:4" in proc.stderr and "porrt" in proc.stderr
    assert run("replay", str(tmp_path / "missing")).returncode == 3
    assert run("demo", "--checks", "nosuch.*").returncode == 3


def test_unreachable_only_fleet_exits_3(tmp_path) -> None:
    # nothing listens on port 1 of loopback: the node is refused, no node reachable -> could not run
    proc = run("run", "-H", "127.0.0.1:1", "--connect-timeout", "2", "--json", str(tmp_path / "r.json"))
    assert proc.returncode == 3, proc.stdout + proc.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["nodes"][0]["outcome"] == "refused"


def test_local_transport_runs_the_collector(tmp_path) -> None:
    proc = run("run", "-H", "local", "--json", str(tmp_path / "r.json"), "-q")
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["nodes"][0]["outcome"] == "ok", proc.stderr
    jsonschema.validate(doc, SCHEMA)


def test_plan_on_the_demo_prints_the_table_and_launch_lines() -> None:
    proc = run("plan", "--model", "llama-3.1-70b", "--context", "32768", "--seqs", "8", "--no-color")
    assert proc.returncode == 0, proc.stderr
    assert "RECORDING" in proc.stderr  # says it is not the user's fleet
    assert "TP8 PP1 DP1" in proc.stdout and "vllm serve meta-llama/Llama-3.1-70B --tensor-parallel-size 8" in proc.stdout
    assert "--max-model-len 32768" in proc.stdout  # launch lines are printed unwrapped, ready to copy
    what_if = proc.stdout[proc.stdout.index("what the excluded nodes would cost"):]
    assert "gpu-04" in what_if and "TP8 PP1 DP3" in what_if  # the layout the degraded node makes unsafe


def test_demo_model_puts_the_plan_in_the_json_report() -> None:
    proc = run("demo", "--model", "llama-3.1-8b", "--json", "-")
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert doc["plan"]["model"]["id"] == "meta-llama/Llama-3.1-8B"
    assert {e["node"] for e in doc["plan"]["excluded"]} == {"gpu-03", "gpu-04"}


def test_plan_refuses_bad_input_clearly(tmp_path) -> None:
    unknown = run("plan", "--model", "llama-9000")
    assert unknown.returncode == 3 and "llama-9000" in unknown.stderr
    bad = tmp_path / "mn.json"
    bad.write_text("{\"busbw\": null}")
    proc = run("plan", "--model", "llama-3.1-8b", "--multinode-result", str(bad))
    assert proc.returncode == 3 and "no positive 'busbw'" in proc.stderr
    cfg = tmp_path / "config.json"
    cfg.write_text('{"num_hidden_layers": 2}')
    proc = run("plan", "--model", str(cfg))
    assert proc.returncode == 3 and "config.json" in proc.stderr


def test_plan_from_a_config_json_path(tmp_path) -> None:
    cfg = {"architectures": ["LlamaForCausalLM"], "num_hidden_layers": 32, "hidden_size": 4096,
           "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256,
           "max_position_embeddings": 131072, "torch_dtype": "bfloat16"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    proc = run("plan", "--model", str(tmp_path / "config.json"), "--json", "-", "-q")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "preflight-plan" and "TP1 PP1 DP1" in doc["recommend_throughput"]
