"""NCCL RAS reports (`ncclras`, NCCL >= 2.24): parsed into communicators, lagging ranks and unreachable processes,
and named by the hang verdict; truncated and degraded copies never read healthy."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hang_corpus import CORPUS, body

from preflight.hang.causes.ras import ras_causes
from preflight.hang.ncclras import RasReport, parse_ras
from preflight.hang.sniff import parse_text
from preflight.hang.verdict import analyze
from preflight.parse.common import Unparseable

HEALTHY = "nccl_logs/ncclras-2.30.7-8rank-2node-healthy-baseline.txt"
STRAGGLER = "nccl_logs/ncclras-2.30.7-8rank-mismatch-straggler-rank7.txt"
INCOMPLETE = "nccl_logs/ncclras-2.30.7-8rank-incomplete-rank7-exited.txt"
DEAD = "nccl_logs/ncclras-2.30.7-dead-process-no-communicator-data.txt"
DOCS_MISMATCH = "nccl_logs/ncclras-docs-32rank-mismatch-6-ranks-behind.txt"
DOCS_INCOMPLETE = "nccl_logs/ncclras-docs-32rank-incomplete-missing-rank-21-timeout.txt"
DOCS_STATUS = "nccl_logs/ncclras-docs-status-mismatch-finalize-transition.txt"
WATCHDOG = "nccl_logs/ncclras-256rank-running-ok-while-pytorch-watchdog-timeout.txt"
ALL = sorted(CORPUS.glob("nccl_logs/ncclras-*.txt"))


def ras(rel: str, text: str | None = None) -> RasReport:
    r = parse_ras(body(rel) if text is None else text, Path(rel).name)
    assert isinstance(r, RasReport), r
    return r


def test_healthy_report_is_complete_and_healthy() -> None:
    r = ras(HEALTHY)
    assert r.nccl_version == "2.30.7" and r.complete and r.healthy
    (g,) = r.groups
    assert (g.group, g.comms, g.nodes, g.ranks_per_node, g.ranks_per_comm, g.ranks_in_group, g.status, g.errors) == \
        (0, 1, 2, "4", 8, 8, "RUNNING", "OK")


def test_straggler_single_rank_form() -> None:
    r = ras(STRAGGLER)
    assert not r.healthy and r.groups[0].errors == "MISMATCH"
    (m,) = r.mismatches
    assert (m.comm, m.comm_hash, m.what, m.top) == ("0-0", "78db921d1c117b4a", "AllReduce operation counts", 64)
    (lag,) = m.lagging
    assert (lag.size, lag.operation) == (1, 60)
    (rk,) = lag.ranks
    assert (rk.rank, rk.gpu, rk.pid, rk.node) == (7, "3", 1650386, "node1")


def test_docs_group_form_lists_the_lagging_ranks_under_their_count() -> None:
    (m,) = ras(DOCS_MISMATCH).mismatches
    assert [(g.size, g.operation, len(g.ranks)) for g in m.groups] == [(26, 6650, 0), (6, 6649, 6)]
    (lag,) = m.lagging
    assert [r.rank for r in lag.ranks] == [0, 2, 3, 4, 5, 7]
    assert {r.node for r in lag.ranks} == {"172.16.64.210"} and lag.ranks[0].pid == 483072


def test_status_mismatch_three_groups_and_ranges() -> None:
    r = ras(DOCS_STATUS)
    assert [(g.group, g.ranks_per_node, g.status, g.errors) for g in r.groups] == [
        (0, "1-2", "FINALIZE", "MISMATCH"), (1, "1", "RUNNING", "OK"), (2, "1", "INIT", "OK")]
    (m,) = r.mismatches
    assert m.what == "status" and not m.lagging
    assert [(g.size, g.status, [x.rank for x in g.ranks]) for g in m.groups] == [
        (26, "UNKNOWN", []), (4, "RUNNING", [0, 8, 16, 24]), (2, "FINALIZE", [4, 20])]


def test_incomplete_and_dead_processes() -> None:
    inc = ras(INCOMPLETE)
    (p,) = inc.processes
    assert (p.state, p.pid, p.node, p.gpus) == ("incomplete", 3748990, "node1", "3")
    (c,) = inc.incomplete
    assert c.missing == 1 and [(x.rank, x.pid) for x in c.ranks] == [(7, 3748990)]
    dead = ras(DEAD)
    assert dead.no_communicators and [(d.pid, d.node) for d in dead.dead] == [(3748990, "node1")]
    old = ras(DOCS_INCOMPLETE)
    assert old.incomplete[0].rank_numbers == (21,) and old.timeouts == 2 and old.processes[0].node == "172.16.64.213"


def test_verdict_names_the_lagging_ranks_and_their_nodes() -> None:
    v = analyze([CORPUS / STRAGGLER])
    c = v.culprit
    assert c is not None and c.kind == "ras_mismatch" and c.rank == 7 and c.node == "node1" and c.ranks == (7,)
    assert c.title.startswith("ncclras: rank 7 on node1 launched up to operation 60 while 7 rank(s) reached "
                              "operation 64")
    assert c.evidence[0] == (Path(STRAGGLER).name + ":20: Rank 7 has launched up to operation 60 -- GPU 3 managed "
                             "by process 1650386 on node node1")
    assert "py-spy dump --pid 1650386" in c.next_command and "repeat `ncclras -v`" in c.next_command
    docs = analyze([CORPUS / DOCS_MISMATCH]).culprit
    assert docs is not None and docs.ranks == (0, 2, 3, 4, 5, 7) and "on 172.16.64.210" in docs.title
    assert "launched up to operation 6649 while 26 rank(s) reached operation 6650" in docs.title


def test_verdict_puts_a_dead_process_first() -> None:
    v = analyze([CORPUS / DEAD, CORPUS / STRAGGLER])
    assert v.culprit is not None and v.culprit.kind == "ras_dead" and v.culprit.node == "node1"
    inc = analyze([CORPUS / INCOMPLETE]).culprit
    assert inc is not None and inc.kind == "ras_incomplete" and inc.rank == 7 and "process 3748990" in inc.title


def test_running_ok_report_is_no_cause_and_says_what_it_cannot_see() -> None:
    v = analyze([CORPUS / WATCHDOG])
    assert not [c for c in v.causes if c.kind.startswith("ras_")]
    assert "ncclras" in v.files[0].kinds and "launched operations" in v.files[0].note


def test_unlisted_lagging_group_is_said_so() -> None:
    # derived in the test from the docs sample: RAS lists no member of the lagging group (a large group)
    text = "\n".join(line for line in body(DOCS_MISMATCH).split("\n") if "-- GPU" not in line)
    r = ras(DOCS_MISMATCH, text)
    assert any("did not list the lagging ranks" in n for n in r.notes)
    c = next(c for c in ras_causes([r]) if c.kind == "ras_mismatch")
    assert c.rank is None and "6 rank(s) (RAS did not list them)" in c.title and c.score < 0.7


@pytest.mark.parametrize("rel", [HEALTHY, STRAGGLER, DOCS_MISMATCH])
def test_truncated_copies_are_never_healthy(rel: str) -> None:
    text = body(rel)
    lines = text.split("\n")
    cut_at = next(i for i, line in enumerate(lines) if line.startswith("Warnings"))
    for cut in ("\n".join(lines[:cut_at]), text[: text.index("Warnings") + 3], text[: len(text) - 20]):
        r = parse_ras(cut)
        if isinstance(r, Unparseable):
            continue
        assert not r.healthy
    r = ras(rel, "\n".join(lines[:cut_at]))
    assert any("incomplete" in n or "missing" in n for n in r.notes)


def test_truncated_mismatch_says_the_detail_is_missing() -> None:
    text = body(STRAGGLER)
    r = ras(STRAGGLER, text[: text.index("#0-0")])
    assert not r.mismatches and not r.healthy
    assert "the table flags MISMATCH but its detail" in " ".join(r.notes)


@pytest.mark.parametrize("mangle", [
    lambda t: re.sub(r" +", " ", t),  # runs of spaces collapsed (a web page's copy of a report)
    lambda t: t.replace("\n", "\r\n"),
    lambda t: "\n".join("\t" + line for line in t.split("\n")),
    lambda t: "\n".join("[1,0]<stdout>:" + line for line in t.split("\n")),  # mpirun --tag-output
], ids=["collapsed-spaces", "crlf", "tab-indented", "launcher-tags"])
def test_degraded_copies_give_the_same_lagging_ranks(mangle) -> None:
    for rel, ranks in ((STRAGGLER, [7]), (DOCS_MISMATCH, [0, 2, 3, 4, 5, 7])):
        (m,) = ras(rel, mangle(body(rel))).mismatches
        assert [r.rank for g in m.lagging for r in g.ranks] == ranks


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_every_ras_corpus_file_is_routed_and_typed(path: Path) -> None:
    f = parse_text(path.read_text(), path.name)
    assert not isinstance(f, Unparseable) and f.ras is not None and "ncclras" in f.kinds


def test_not_ras() -> None:
    assert isinstance(parse_ras(""), Unparseable)
    assert isinstance(parse_ras("hello\nworld\n"), Unparseable)
    assert parse_text(body("nccl_logs/nccl-2.4.7-socket-and-ib-horovod.txt")).ras is None  # type: ignore[union-attr]
