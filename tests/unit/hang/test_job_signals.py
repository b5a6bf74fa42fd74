"""Jobs kept apart by time and by PyTorch build (preflight/hang/job_signals.py), on real corpus logs."""

from __future__ import annotations

import shutil
from pathlib import Path

from preflight.hang.job_signals import builds_conflict, far_apart, scan
from preflight.hang.sniff import HangFile, parse_path
from preflight.hang.verdict import analyze

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
LOGS = CORPUS / "nccl_logs"


def _signals(rel: str):
    f = parse_path(CORPUS / rel)
    assert isinstance(f, HangFile)
    return f.signals


def test_each_timestamp_format_of_the_corpus_is_read() -> None:
    ctime = _signals("xid/xid13-xid109-dmesg-ctime-with-peermem.txt").times  # [Fri Aug 30 11:11:22 2024]
    assert ctime is not None and ctime.dated and ctime.first.isoformat() == "2024-08-30T11:11:22"
    syslog = _signals("xid/xid32-69-62-journal-with-kernel-ts-gist-table-artifact.txt").times  # Dec 23 23:28:17 rescue
    assert syslog is not None and not syslog.dated and syslog.first.strftime("%m-%d %H:%M:%S") == "12-23 23:28:17"
    talos = _signals("xid/xid154-gsp-timeout-talos-kern-prefix.txt").times  # [2026-04-22T21:30:51.52643656Z]
    assert talos is not None and talos.dated and talos.first.date().isoformat() == "2026-04-22"
    glog = _signals("nccl_logs/pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt").times  # [E816 01:45:40
    assert glog is not None and not glog.dated and glog.first.strftime("%m-%d %H:%M") == "08-16 01:45"


def test_uptime_seconds_are_not_wall_clock() -> None:
    assert scan("[  179.437927] NVRM: Xid (PCI:0000:01:00): 32, Channel ID 00000005").times is None


def test_torch_versions_need_three_numbers() -> None:
    real = ".conda/envs/pytorch-3.10/lib/python3.10/multiprocessing/spawn.py"  # flight_recorder corpus: an env name
    assert scan(real).torch_versions == frozenset()
    assert scan("PyTorch version: 2.1.0+cu121\n").torch_versions == {"2.1.0+cu121"}


def test_watchdog_source_lines_tell_pytorch_builds_apart() -> None:
    """The same watchdog message from ProcessGroupNCCL.cpp:737 and :607: two PyTorch builds; :607 twice: no say."""
    legacy = _signals("nccl_logs/pytorch-watchdog-timeout-legacy-no-numel-1800s.txt").builds
    numbered = _signals("nccl_logs/pytorch-watchdog-timeout-allreduce-line-numbered.txt").builds
    optype = _signals("nccl_logs/pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt").builds
    why = builds_conflict(legacy, numbered)
    assert why is not None and "737 vs 607" in why
    assert builds_conflict(numbered, optype) is None  # both 607 / 1664, prefix '[PG N Rank N]' with or without a name


def test_far_apart_is_more_than_a_day_and_says_so() -> None:
    a = _signals("nccl_logs/err-socketpollconnect-no-route-to-host.txt").times  # 2025-02-24
    b = _signals("nccl_logs/err-sglang-h100-socket-c-abort-then-python-traceback.txt").times  # 2025-04-21
    why = far_apart(a, b)
    assert why is not None and "56 day(s) apart" in why
    assert far_apart(a, a) is None and far_apart(a, None) is None


def _split_each_right(tmp_path: Path, names: tuple[str, str]) -> list:
    alone = {}
    for n in names:
        shutil.copy(LOGS / n, tmp_path / n)
        alone[n] = [c.title for c in analyze([LOGS / n]).causes]
    v = analyze([tmp_path])
    assert len(v.jobs) == 2
    for job in v.jobs:
        assert len(job.files) == 1
        assert [c.title for c in job.verdict.causes] == alone[Path(job.files[0]).name]
    return list(v.jobs)


def test_a_node_log_and_a_watchdog_file_weeks_apart_are_two_jobs(tmp_path) -> None:
    """node5's NCCL error (2025-02-24) and a watchdog file of 21 March with no host: two jobs."""
    _split_each_right(tmp_path, ("err-socketpollconnect-no-route-to-host.txt",
                                 "pytorch-watchdog-timeout-allreduce-line-numbered.txt"))


def test_two_real_jobs_one_folder_split_by_time_each_verdict_right(tmp_path) -> None:
    """An sglang node's NCCL error (h100-15, 2025-04-21) and a PyTorch watchdog file with no host (ranks 3 and 7
    disagree on #80078, Aug 16): before time ranges the watchdog file was put with the only job there was and one
    verdict mixed both; now two jobs, each with the causes it has alone."""
    names = ("err-sglang-h100-socket-c-abort-then-python-traceback.txt",
             "pytorch-watchdog-mismatched-optype-broadcast-vs-allreduce.txt")
    jobs = _split_each_right(tmp_path, names)
    sglang = next(j for j in jobs if j.files[0].endswith(names[0]))
    assert "h100-15" in sglang.verdict.culprit.title
    watchdog = next(j for j in jobs if j.files[0].endswith(names[1]))
    assert "#80078" in watchdog.verdict.culprit.title and watchdog.verdict.culprit.kind == "op_mismatch"


def test_corpus_job_count_and_the_known_wrong_merge() -> None:
    """The corpus' 42 NCCL logs: 41 jobs, as host/communicator/version grouping gave (its few timestamps are in
    files already apart). The one wrong merge stays: two 2018 reports sharing only host 'server1' print no
    timestamp, PyTorch line or version to tell them apart (docs/oncall.md quotes these numbers)."""
    v = analyze([LOGS])
    assert (len(v.files), len(v.jobs)) == (42, 41)
    server1 = [j for j in v.jobs if "server1" in j.description]
    assert len(server1) == 1 and server1[0].why == ("host server1",)
