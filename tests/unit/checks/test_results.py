"""Status order and exit codes."""

from __future__ import annotations

from preflight.results import Finding, NodeReport, RunReport, Status, exit_code, worst


def _rep(statuses: list[Status], outcomes: tuple[str, ...] = ("ok",)) -> RunReport:
    nodes = []
    for i, o in enumerate(outcomes):
        fs = tuple(Finding(check="x.y", node=f"n{i}", status=s) for s in statuses) if o == "ok" else ()
        nodes.append(NodeReport(name=f"n{i}", address="a", outcome=o, message="", duration_s=0.1, findings=fs))
    return RunReport(nodes=tuple(nodes))


def test_rank_order() -> None:
    assert worst([Status.PASS, Status.SKIP]) == Status.SKIP
    assert worst([Status.WARN, Status.FAIL, Status.SKIP]) == Status.FAIL
    assert worst([Status.FAIL, Status.ERROR]) == Status.FAIL  # a proven failure outranks "could not judge"
    assert worst([Status.PASS, Status.ACCEPTED]) == Status.ACCEPTED
    assert worst([]) == Status.PASS


def test_exit_codes() -> None:
    assert exit_code(_rep([Status.PASS, Status.SKIP])) == 0
    assert exit_code(_rep([Status.PASS, Status.WARN])) == 0
    assert exit_code(_rep([Status.PASS, Status.WARN]), "warn") == 1
    assert exit_code(_rep([Status.FAIL])) == 2
    assert exit_code(_rep([Status.ERROR])) == 2
    assert exit_code(_rep([Status.PASS], ("ok", "timeout"))) == 2
    assert exit_code(_rep([], ("refused", "timeout"))) == 3
