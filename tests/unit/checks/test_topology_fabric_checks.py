"""topology.* on partial and degraded matrices, nvlink.fabric_state on the -q Fabric Health block.

Inputs are recorded outputs (corpus, simulated-fleet profiles) or rows of them changed as each test says.
"""

from __future__ import annotations

import re
from pathlib import Path

from preflight.collect.bundle import Bundle, NodeRaw
from preflight.engine import judge
from preflight.parse.common import strip_corpus_header
from preflight.registry import select_checks

ROOT = Path(__file__).resolve().parents[3]
CORPUS = ROOT / "tests" / "fixtures" / "corpus"
PROFILES = ROOT / "preflight" / "sim" / "profiles"
DERIVED = ROOT / "tests" / "unit" / "parse" / "fixtures"


def rec(path: Path) -> str:
    return strip_corpus_header(path.read_text())[1]


HEALTHY_TOPO = rec(CORPUS / "topo/dgx-h100-nv18-12nic-tabs.txt")
GPU3_NO_NVLINK = rec(DERIVED / "topo-dgx-h100-gpu3-nvlinks-gone-derived.txt")
TABLE = rec(PROFILES / "h100-healthy/smi-table.txt")
Q_HEALTHY = rec(PROFILES / "h100-healthy/smi-q.txt")


def node(name: str, probes: dict[str, str | None]) -> NodeRaw:
    doc = {"mode": "python", "probes": {}}
    for pid, out in probes.items():
        doc["probes"][pid] = ({"rc": 0, "stdout": out, "stderr": "", "error": None, "kind": "cmd"} if out is not None
                              else {"rc": None, "stdout": "", "stderr": "", "error": "absent", "kind": "cmd"})
    return NodeRaw(name=name, address="10.0.0.1", port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector=doc)


def findings(raws: list[NodeRaw], pattern: str):
    report, _ = judge(Bundle(nodes=raws), select_checks(pattern))
    return [f for n in report.nodes for f in n.findings]


def rows_only(text: str, keep: set[str]) -> str:
    """The header plus the named rows of a matrix (a cut recording, as a truncated capture would be)."""
    lines = text.split("\n")
    return "\n".join([lines[0]] + [line for line in lines[1:] if line.split("\t", 1)[0] in keep])


def test_a_gpu_whose_nvlinks_are_all_gone_is_named() -> None:
    # before: topology.read passed this matrix ("7 GPUs NVLink domain"), GPU3 named nowhere
    fs = findings([node("n1", {"topo": GPU3_NO_NVLINK}), node("n2", {"topo": HEALTHY_TOPO})], "topology.read")
    bad = [f for f in fs if f.node == "n1"]
    assert [(f.subject, f.status.value) for f in bad] == [("GPU3", "fail")]
    assert "SYS to 7 peer GPU(s)" in bad[0].msg and bad[0].evidence[0].startswith("GPU3")
    assert [f.status.value for f in fs if f.node == "n2"] == ["pass"]


def test_partial_topology_is_not_pass_and_names_what_it_could_not_see() -> None:
    fs = findings([node("n1", {"topo": rec(CORPUS / "topo/8xh100-nv18-6nic-fragment.txt")}),
                   node("n2", {"topo": rec(CORPUS / "topo/8xh100-nv18-tabs-fragment.txt")})], "topology.read")
    assert [f.status.value for f in fs] == ["error", "error"]  # before: warn / warn (a node with warnings is usable)
    assert "no rows for GPU3, GPU4, GPU5, GPU6, GPU7" in fs[0].msg
    assert "no header row: 8 GPUs and 12 NICs, from the X cell of NIC0" in fs[1].msg


def test_a_cut_matrix_still_fails_a_gpu_without_nvlink_among_the_rows_it_shows() -> None:
    cut = rows_only(GPU3_NO_NVLINK, {"GPU0", "GPU1", "GPU2", "GPU3"})
    fs = findings([node("n1", {"topo": cut})], "topology.read")
    assert [(f.subject, f.status.value) for f in fs] == [("GPU3", "fail"), (None, "error")]


def test_consistency_compares_a_partial_matrix_on_the_pairs_it_shows() -> None:
    healthy = [node(f"h{i}", {"topo": HEALTHY_TOPO}) for i in range(3)]
    same = node("cut-same", {"topo": rows_only(HEALTHY_TOPO, {"GPU0", "GPU1", "GPU2", "GPU3"})})
    differs = node("cut-differs", {"topo": rows_only(GPU3_NO_NVLINK, {"GPU0", "GPU1", "GPU2", "GPU3"})})
    fs = {f.node: f for f in findings(healthy + [same, differs], "topology.consistent")}
    assert {fs[f"h{i}"].status.value for i in range(3)} == {"pass"}
    assert fs["cut-same"].status.value == "error" and "match fleet majority" in fs["cut-same"].msg
    assert fs["cut-differs"].status.value == "fail" and "GPU0↔GPU3: SYS (expected NV18)" in fs["cut-differs"].msg


def test_nic_affinity_judges_what_the_partial_matrix_shows_and_errors_on_the_rest() -> None:
    six_nics = rec(CORPUS / "topo/8xh100-nv18-6nic-fragment.txt")
    fs = findings([node("n1", {"topo": six_nics})], "topology.gpu_nic_affinity")
    status = {f.subject: f.status.value for f in fs}
    assert status["GPU0"] == "pass" and status["GPU2"] == "pass"
    assert status["GPU1"] == "warn"  # its row is whole: NODE is its nearest NIC (the recording's note says so)
    assert {status[f"GPU{i}"] for i in range(3, 8)} == {"error"}
    gpu_rows = "\n".join(line for line in rec(CORPUS / "topo/8xh100-nv18-tabs-fragment.txt").splitlines()
                         if line.startswith("GPU"))
    fs = findings([node("n2", {"topo": gpu_rows})], "topology.gpu_nic_affinity")
    assert [f.status.value for f in fs] == ["error"] and "no NIC columns known" in fs[0].msg
    desktop = rec(CORPUS / "topo/2x1080ti-phb-numa-na-desktop.txt")
    fs = findings([node("n3", {"topo": desktop})], "topology.gpu_nic_affinity")
    assert [f.status.value for f in fs] == ["skip"] and "no NIC columns" in fs[0].msg


def fabric(probes: dict[str, str | None]):
    return findings([node("n1", {"smi_table": TABLE, **probes})], "nvlink.fabric_state")


def test_fabric_health_unhealthy_fails_even_when_registration_succeeded() -> None:
    # before: GPU0 passed ("Completed / Success"): the Health sub-block was dropped
    fs = fabric({"smi_q": rec(PROFILES / "fabric-unhealthy/smi-q.txt")})
    status = {f.subject: f.status.value for f in fs}
    assert status.pop("GPU0") == "fail" and set(status.values()) == {"pass"} and len(status) == 7
    bad = next(f for f in fs if f.subject == "GPU0")
    assert "unhealthy: Summary: Unhealthy" in bad.msg and any("Fabric Health" in e for e in bad.evidence)


def test_fabric_in_progress_from_a_recorded_block_fails() -> None:
    block = rec(CORPUS / "smi/q-fabric-in-progress-health-block-all-na-580.txt")
    q = re.sub(r"    Fabric\n(?:        .*\n)+?(?=    Processes)", block.rstrip("\n") + "\n", Q_HEALTHY, count=1)
    fs = fabric({"smi_q": q})
    gpu0 = next(f for f in fs if f.subject == "GPU0")
    assert gpu0.status.value == "fail" and gpu0.observed == "In Progress / N/A"


def test_an_unknown_health_summary_is_not_pass() -> None:
    summary = "            Summary                       : Limited Capacity\n"
    q = Q_HEALTHY.replace("        Health\n", "        Health\n" + summary, 1)
    gpu0 = next(f for f in fabric({"smi_q": q}) if f.subject == "GPU0")
    assert gpu0.status.value == "error" and "Limited Capacity" in gpu0.msg


def test_fabric_skip_only_when_the_q_shows_no_fabric_and_error_when_q_is_missing() -> None:
    # before: both were `skip` ("not an NVSwitch system, or no nvidia-smi -q")
    no_q = fabric({"smi_q": None})
    assert {f.status.value for f in no_q} == {"error"} and len(no_q) == 8 and "fabric state not read" in no_q[0].msg
    no_fabric = re.sub(r"    Fabric\n(?:        .*\n)+?(?=    Processes)", "", Q_HEALTHY)
    assert "Fabric" not in no_fabric
    fs = fabric({"smi_q": no_fabric})
    assert [f.status.value for f in fs] == ["skip"] and "no Fabric section" in fs[0].msg
    na = re.sub(r"(State\s+: )Completed\n(\s+Status\s+: )Success", r"\1N/A\n\2N/A", Q_HEALTHY)
    fs = fabric({"smi_q": na})
    assert [f.status.value for f in fs] == ["skip"] and "Fabric State N/A" in fs[0].msg


def test_consistency_fail_carries_only_the_differing_pairs() -> None:
    healthy = [node(f"h{i}", {"topo": HEALTHY_TOPO}) for i in range(3)]
    fs = {f.node: f for f in findings(healthy + [node("odd", {"topo": GPU3_NO_NVLINK})], "topology.consistent")}
    odd = fs["odd"]
    assert odd.status.value == "fail"
    pairs = dict(p.split(":") for p in str(odd.observed).split(";"))
    want = dict(p.split(":") for p in str(odd.expected).split(";"))
    assert set(pairs) == set(want) == {f"{min(i, 3)}-{max(i, 3)}" for i in range(8) if i != 3}  # GPU3's 7 pairs only
    assert all(pairs[p] != want[p] for p in pairs) and set(want.values()) == {"NV18"}
    assert "on 7 of 28 GPU pairs" in odd.msg
    assert {fs[f"h{i}"].status.value for i in range(3)} == {"pass"}  # the status logic is unchanged
