"""NCCL RAS in `preflight hang`: the collector's RAS query (the client socket protocol of NCCL's src/ras/client.cc),
which node is asked, and the report joined to the gathered nodes, ranks and GPUs."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

from preflight.collect import collector
from preflight.collect.bundle import Bundle, NodeRaw
from preflight.hang.gather import judge_hang, ranks_of
from preflight.hang.ras_live import ras_target
from preflight.parse.common import strip_corpus_header

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "nccl_logs"
MISMATCH = strip_corpus_header((CORPUS / "ncclras-docs-32rank-mismatch-6-ranks-behind.txt").read_text())[1]
INCOMPLETE = strip_corpus_header((CORPUS / "ncclras-2.30.7-8rank-incomplete-rank7-exited.txt").read_text())[1]


def _serve(report: str, *, answer: bool = True) -> tuple[int, list[bytes]]:
    """A one-shot RAS client socket on 127.0.0.1 speaking NCCL's protocol; returns its port and what it was sent."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    seen: list[bytes] = []

    def run() -> None:
        conn, _ = srv.accept()
        with conn, conn.makefile("rwb") as fh:
            if not answer:
                time.sleep(3)
                return
            seen.append(fh.readline())
            fh.write(b"SERVER PROTOCOL 2\n")
            fh.flush()
            seen.append(fh.readline())
            fh.write(b"OK\n")
            fh.flush()
            seen.append(fh.readline())
            fh.write(report.encode())
            fh.flush()
        srv.close()

    threading.Thread(target=run, daemon=True).start()
    return srv.getsockname()[1], seen


def _probe(timeout_s: float = 10.0) -> dict:
    return {"id": "ncclras", "kind": "builtin", "timeout_s": timeout_s}


def test_the_collector_speaks_the_ras_client_protocol(monkeypatch) -> None:
    monkeypatch.setattr(collector.shutil, "which", lambda _name: None)  # no ncclras client: the socket
    port, seen = _serve(MISMATCH)
    res = collector.builtin_ncclras(_probe(), {"job": {"ras": {"addr": f"127.0.0.1:{port}", "timeout_s": 5}}})
    assert res["error"] is None and res["stdout"] == MISMATCH and f"127.0.0.1:{port}" in res["stderr"]
    assert seen == [b"CLIENT PROTOCOL 2\n", b"TIMEOUT 5\n", b"STATUS\n"]


def test_no_ras_service_is_an_error_not_a_hang(monkeypatch) -> None:
    monkeypatch.setattr(collector.shutil, "which", lambda _name: None)
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there
    res = collector.builtin_ncclras(_probe(), {"job": {"ras": {"addr": f"127.0.0.1:{port}"}}})
    assert res["stdout"] == "" and res["error"].startswith("error: RAS service on 127.0.0.1")
    port, _ = _serve(MISMATCH, answer=False)  # accepts, never answers: bounded by the probe's timeout
    t0 = time.monotonic()
    res = collector.builtin_ncclras(_probe(timeout_s=2.0), {"job": {"ras": {"addr": f"127.0.0.1:{port}"}}})
    assert res["error"] and time.monotonic() - t0 < 4


def _raw(name: str, address: str, procs: list[dict], ras: str | None = None) -> NodeRaw:
    probes = {"job_procs": {"rc": 0, "stdout": json.dumps({"processes": procs}), "stderr": "", "error": None}}
    if ras is not None:
        probes["ncclras"] = {"rc": 0, "stdout": ras, "stderr": "via ncclras localhost:28028", "error": None}
    return NodeRaw(name=name, address=address, port=22, user="root", groups=[], outcome="ok", message="",
                   started=0.0, duration_s=0.1, transport="ssh", collector={"mode": "python", "probes": probes})


def _proc(pid: int, rank: int, local: int, world: int = 32, **env: str) -> dict:
    return {"pid": pid, "cmdline": "python train.py", "state": "S (sleeping)",
            "env": {"RANK": str(rank), "LOCAL_RANK": str(local), "WORLD_SIZE": str(world), **env}}


def test_the_node_of_the_lowest_rank_is_asked_at_the_jobs_ras_address() -> None:
    a = _raw("gpu-a", "10.0.0.1", [_proc(11, 8, 0), _proc(12, 9, 1)])
    b = _raw("gpu-b", "10.0.0.2", [_proc(21, 0, 0, NCCL_RAS_ADDR="127.0.0.1:29999"), _proc(22, 1, 1)])
    bundle = Bundle(nodes=[a, b])
    node, cfg, why = ras_target(bundle, [r for raw in bundle.nodes for r in ranks_of(raw)])
    assert node == "gpu-b" and cfg["addr"] == "127.0.0.1:29999" and "rank 0" in why
    off = _raw("gpu-c", "10.0.0.3", [_proc(31, 0, 0, NCCL_RAS_ENABLE="0")])
    assert ras_target(Bundle(nodes=[off]), ranks_of(off))[0] is None
    old = _raw("gpu-d", "10.0.0.4", [{**_proc(41, 0, 0), "nccl_debug_file": {"tail": "gpu-d:41:41 [0] NCCL INFO NCCL version 2.21.5+cuda12.2\n"}}])
    node, _cfg, why = ras_target(Bundle(nodes=[old]), ranks_of(old))
    assert node is None and "2.21.5 has no RAS" in why


def test_ras_ranks_are_joined_to_the_gathered_node_and_gpu() -> None:
    """The guide's sample report names ranks 0, 2-5, 7 on 172.16.64.210 behind; the gather saw that node's pids
    (constructed for this test: the pids of the recorded report given to gathered ranks)."""
    procs = [_proc(483072, 0, 0), _proc(483075, 3, 3)]
    bundle = Bundle(nodes=[_raw("gpu-01", "10.1.1.1", procs, MISMATCH), _raw("gpu-02", "10.1.1.2", [_proc(9, 8, 0)])])
    result = judge_hang(bundle)
    ras = [c for c in result.verdict.causes if c.kind == "ras_mismatch"]
    assert ras and ras[0].node == "gpu-01" and "on gpu-01 (172.16.64.210)" in ras[0].title
    assert ras[0].ranks == (0, 2, 3, 4, 5, 7)
    assert any("gpu-01: pid 483072 RANK=0 GPU 0" in e for e in ras[0].evidence)
    assert "ssh gpu-01 " in ras[0].next_command


def test_a_ras_node_the_gather_does_not_know_is_said_so() -> None:
    bundle = Bundle(nodes=[_raw("r-01", "127.0.0.1", [_proc(5, 0, 0, world=8)], INCOMPLETE)])
    causes = [c for c in judge_hang(bundle).verdict.causes if c.kind.startswith("ras_")]
    assert causes and all("is not one of the gathered nodes' addresses" in c.title for c in causes)


def test_a_healthy_ras_report_is_a_note_not_a_cause() -> None:
    healthy = strip_corpus_header((CORPUS / "ncclras-2.30.7-8rank-2node-healthy-baseline.txt").read_text())[1]
    result = judge_hang(Bundle(nodes=[_raw("r-01", "127.0.0.1", [_proc(5, 0, 0, world=1)], healthy)]))
    assert not [c for c in result.verdict.causes if c.kind.startswith("ras_")]
    assert any("RUNNING / OK" in n for n in result.notes)


def test_nodes_sharing_an_address_are_joined_by_pid_not_by_address() -> None:
    """Nodes reached through one address (a bastion, the simulated fleet's 127.0.0.1) are told apart by pid."""
    a = _raw("gpu-01", "127.0.0.1", [_proc(483072, 0, 0)], MISMATCH)
    b = _raw("gpu-02", "127.0.0.1", [_proc(7, 8, 0)])
    ras = [c for c in judge_hang(Bundle(nodes=[a, b])).verdict.causes if c.kind == "ras_mismatch"]
    assert ras and ras[0].node == "gpu-01"
