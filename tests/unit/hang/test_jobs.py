"""Jobs kept apart: `analyze` splits its inputs by job and judges each on its own (preflight/hang/jobs.py)."""

from __future__ import annotations

import shutil
from pathlib import Path

from preflight.hang import scenarios
from preflight.hang.verdict import analyze

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "corpus" / "nccl_logs"
SHARED = Path(__file__).resolve().parents[3] / "shared" / "corpus" / "nccl_logs"


def _two_jobs(tmp_path: Path, *, same_hosts: bool = False) -> tuple[scenarios.Scenario, scenarios.Scenario]:
    a = scenarios.build("xid")
    b = scenarios.build("version_mismatch", host_prefix="gpu" if same_hosts else "node", comm_id=0x1234ABCD5678EF90)
    a.write(tmp_path / "job-a")
    b.write(tmp_path / "job-b")
    return a, b


def test_two_unrelated_jobs_give_two_verdicts_each_right(tmp_path) -> None:
    a, b = _two_jobs(tmp_path)
    v = analyze([tmp_path])
    assert len(v.jobs) == 2
    by_dir = {Path(j.files[0]).parent.parent.name: j for j in v.jobs}
    ja, jb = by_dir["job-a"], by_dir["job-b"]
    assert all("/job-a/" in f for f in ja.files) and len(ja.files) == 9  # 8 logs + the dmesg with the Xid
    assert all("/job-b/" in f for f in jb.files) and len(jb.files) == 8
    assert ja.verdict.culprit.node == a.culprit_node and ja.verdict.culprit.rank == a.culprit_rank
    assert "Xid 79" in ja.verdict.culprit.title
    assert jb.verdict.culprit.node == b.culprit_node and jb.verdict.culprit.kind == "version"
    assert "install NCCL 2.21.5" in jb.verdict.culprit.next_command and "7 of 8 node(s)" in jb.verdict.culprit.next_command
    assert not any(c.kind == "version" for c in ja.verdict.causes)  # job B's 2.18.5 is not job A's problem
    d = v.to_dict()
    assert [j["job"] for j in d["jobs"]] == [1, 2] and all(c["job"] in (1, 2) for c in d["causes"])
    assert {f["job"] for f in d["files"] if f["kinds"]} == {1, 2}


def test_same_hosts_other_communicator_is_another_job(tmp_path) -> None:
    """The same nodes, a later job (another commId): still two jobs."""
    _two_jobs(tmp_path, same_hosts=True)
    v = analyze([tmp_path])
    assert len(v.jobs) == 2


def test_a_single_job_keeps_its_top_level_verdict(tmp_path) -> None:
    sc = scenarios.build("rank_stopped")
    sc.write(tmp_path)
    v = analyze([tmp_path])
    assert len(v.jobs) == 1 and v.causes == v.jobs[0].verdict.causes and v.causes[0].job is None
    assert v.causes[0].rank == sc.culprit_rank
    assert all(f.job == 1 for f in v.files if f.kinds)


def test_version_split_target_is_majority_not_oldest(tmp_path) -> None:
    sc = scenarios.build("version_mismatch")
    sc.write(tmp_path)
    c = analyze([tmp_path]).causes[0]
    assert c.node == sc.culprit_node and "install NCCL 2.21.5 there" in c.next_command


def test_real_logs_of_unrelated_jobs_are_not_one_version_split(tmp_path) -> None:
    """The corpus' NCCL logs come from unrelated public reports: no 'install NCCL 2.3.7' (the oldest) anywhere, and
    the files that name NCCL versions land in jobs of their own."""
    paths = [FIXTURES] + ([SHARED] if SHARED.is_dir() else [])
    v = analyze(paths)
    assert len(v.jobs) > 20
    assert not any("install NCCL 2.3.7" in c.next_command for c in v.causes)
    assert not any(c.kind == "version" for c in v.causes)
    versions = {f: job.index for job in v.jobs for f in job.files if "nccl-2." in f}
    old, newer = ("nccl-2.3.7-very-old-init-format.txt", "nccl-2.4.7-socket-and-ib-horovod.txt")
    assert {versions[f] for f in versions if f.endswith(old)}.isdisjoint(
        {versions[f] for f in versions if f.endswith(newer)})
    master = [j for j in v.jobs if "master_node" in j.description]  # two posters' hosts are both 'master_node'
    assert len(master) >= 2  # NCCL 2.4.7 and 2.5.6: different jobs


def test_real_log_with_its_kernel_log_and_watchdog_stays_one_job(tmp_path) -> None:
    """Real files of one job (a node's NCCL log, dmesg without a host, a watchdog file) given together: one job."""
    for name in ("nccl-2.4.8-2node-ibverbs-missing-socket-legacy-ring.txt",
                 "pytorch-watchdog-timeout-legacy-no-numel-1800s.txt"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    v = analyze([tmp_path])
    assert len(v.jobs) == 1 and len(v.jobs[0].files) == 2


def test_a_live_gather_is_never_split(tmp_path) -> None:
    _two_jobs(tmp_path)
    v = analyze([tmp_path], split_jobs=False)
    assert v.jobs == ()
