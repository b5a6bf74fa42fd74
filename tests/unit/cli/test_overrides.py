"""`--expect KEY=VALUE` and `--accept CHECK_OR_FACT=WHY`: what an inventory can say, said on the command line.

Run through `preflight.cli.main` on the recorded demo bundle (real outputs, see preflight/sim/profiles):
the value is validated like an inventory's, it changes the verdict, and every report names the command
line as its source. Bad command-line input of any kind is exit 3 with one line, never exit 2 (findings).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from preflight.cli import main
from preflight.collect.bundle import load_bundle, save_bundle
from preflight.engine import judge
from preflight.overrides import SOURCE_ACCEPT, SOURCE_EXPECT, parse_overrides
from preflight.results import Status

DEMO = Path(__file__).resolve().parents[3] / "preflight" / "data" / "demo" / "bundle.json"
SMI_PROBES = ("smi_query", "smi_table", "smi_version", "smi_q", "smi_q_ecc", "smi_q_perf", "topo", "nvlink_status",
              "p2p_read", "nvlink_errors", "driver_version_file")


def _json_run(argv: list[str], tmp_path: Path) -> tuple[int, dict]:
    out = tmp_path / "r.json"
    code = main([*argv, "--json", str(out), "-q"])
    return code, json.loads(out.read_text())


def _no_driver_bundle(tmp_path: Path) -> Path:
    """The demo's first healthy node with nvidia-smi and the driver absent (a CPU host, as it would collect)."""
    bundle = load_bundle(DEMO)
    raw = bundle.nodes[0]
    bundle.nodes = [raw]
    for pid in SMI_PROBES:
        raw.collector["probes"][pid].update(stdout="", rc=None, error="absent")
    raw.expect = {k: v for k, v in raw.expect.items() if k != "gpus_per_node"}
    save_bundle(bundle, tmp_path / "cpu")
    return tmp_path / "cpu"


def test_expect_changes_the_verdict_and_names_the_command_line(tmp_path) -> None:
    code, doc = _json_run(["replay", str(DEMO), "--expect", "ib_ports=4"], tmp_path)
    assert code == 2
    bad = [f for n in doc["nodes"] for f in n["findings"] if f["check"] == "ib.port.count"]
    assert bad and all(f["status"] == "fail" and f["expected_source"] == SOURCE_EXPECT for f in bad)


def test_gpus_per_node_0_on_the_command_line_makes_a_gpu_less_host_not_a_driver_failure(tmp_path) -> None:
    path = _no_driver_bundle(tmp_path)
    code, doc = _json_run(["replay", str(path)], tmp_path)
    assert code == 2 and doc["nodes"][0]["reason"].startswith("gpu.driver.responsive: no NVIDIA driver")
    code, doc = _json_run(["replay", str(path), "--expect", "gpus_per_node=0"], tmp_path)
    node = doc["nodes"][0]
    gpu = [f for f in node["findings"] if f["check"].startswith(("gpu.", "nvlink.", "topology."))]
    assert gpu and not [f for f in gpu if f["status"] in ("pass", "fail", "error")], gpu
    assert any("gpus_per_node: 0, --expect (command line)" in f["msg"] for f in gpu)
    assert load_bundle(path).nodes[0].expect.get("gpus_per_node") is None  # the file on disk is unchanged


def test_accept_turns_a_named_gap_into_accepted_with_who_said_so(tmp_path) -> None:
    # the demo's own inventory accepts the xid gap: the command line's reason replaces it
    code, doc = _json_run(["replay", str(DEMO), "--checks", "gpu.xid", "--accept", "xid=no root for dmesg here"],
                          tmp_path)
    xid = [f for n in doc["nodes"] for f in n["findings"] if f["check"] == "gpu.xid"]
    assert xid and all(f["status"] == "accepted" and f["expected_source"] == SOURCE_ACCEPT
                       and "no root for dmesg here" in f["msg"] for f in xid)


def test_accept_never_turns_a_failure_into_accepted() -> None:
    bundle = load_bundle(DEMO)
    before = {(f.node, f.check, f.subject, f.status) for n in judge(bundle)[0].nodes for f in n.findings if f.status == Status.FAIL}
    parse_overrides(accept_items=["*=accept everything"]).apply_to_bundle(bundle)
    after = {(f.node, f.check, f.subject, f.status) for n in judge(bundle)[0].nodes for f in n.findings if f.status == Status.FAIL}
    assert before and before == after


@pytest.mark.parametrize("argv, says", [
    (["demo", "--accept", "xdi=no root"], "did you mean 'xid'"),
    (["demo", "--accept", "xid"], "write --accept CHECK_OR_FACT=WHY"),
    (["demo", "--accept", "xid="], "write --accept CHECK_OR_FACT=WHY"),
    (["demo", "--expect", "gpus_per_nod=8"], "did you mean 'gpus_per_node'"),
    (["demo", "--expect", "gpus_per_node=eight"], "gpus_per_node"),
    (["demo", "--expect", "accept=xid"], "use --accept"),
    (["demo", "--fail-on", "never"], "invalid choice"),
    (["run", "--bogus"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
    (["run", "-H", "-oProxyCommand=touch /tmp/x"], "-H: bad host"),
    (["run", "-H=-oProxyCommand=x"], "-H: bad host name"),
    (["run", "-H", "gpu-01:0"], "-H: bad port"),
    (["run", "-H", "local", "--level", "thorough"], "invalid choice"),
    (["run", "--ansible-inventory", "/nonexistent/inventory"], "ansible-inventory"),  # reaches the live path
    (["hang", "--ansible-inventory", "/nonexistent/inventory"], "ansible-inventory"),
    (["run", "-H", "local", "--budget", "-5"], "--budget -5: give seconds > 0"),
])
def test_bad_command_line_input_is_exit_3_with_one_line(argv, says, capsys) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors leave through exit()
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 3, (code, err)
    assert says in err and len(err.splitlines()) == 1, err
