"""`preflight analyze` on two unrelated jobs: two verdicts, which file went where, the files table, --json jobs."""

from __future__ import annotations

import json
import subprocess
import sys

from preflight.hang import scenarios


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "preflight", *args], capture_output=True, text=True, timeout=120)


def test_two_jobs_in_one_directory(tmp_path) -> None:
    a = scenarios.build("xid")
    b = scenarios.build("socket_fallback", host_prefix="node", comm_id=0x5EED5EED5EED5EED)
    a.write(tmp_path / "a")
    b.write(tmp_path / "b")
    proc = run("analyze", str(tmp_path), "--json", "-")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["jobs"]) == 2
    firsts = {j["causes"][0]["node"] for j in doc["jobs"]}
    assert firsts == {a.culprit_node, b.culprit_node}
    for j in doc["jobs"]:
        assert j["files"] and j["grouped_by"] and j["description"]
        assert all(c["job"] == j["job"] for c in j["causes"])
    proc = run("analyze", str(tmp_path), "--no-color")
    out = proc.stdout
    assert "2 unrelated job(s)" in out and "job 1:" in out and "job 2:" in out
    assert "read as" in out  # the files table: job, file, what it was read as


def test_no_cause_prints_the_files_table_it_refers_to(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("nothing to see\n")
    proc = run("analyze", str(tmp_path / "notes.txt"), "--no-color")
    assert proc.returncode == 2 and "see the files table" in proc.stdout
    assert "not recognised" in proc.stdout.split("see the files table", 1)[1]
