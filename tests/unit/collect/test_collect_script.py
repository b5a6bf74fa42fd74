"""The node-side script: stdlib only, one document back, garbage and no-python handled."""

from __future__ import annotations

import ast
import subprocess
import sys

from preflight.collect.probes import PROBES
from preflight.collect.script import build_script, collector_source, decode_output, select_probes


def test_collector_imports_only_stdlib() -> None:
    tree = ast.parse(collector_source())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add((node.module or "").split(".")[0])
    optional = {"pynvml"}  # imported inside a try: absence is a recorded fact
    assert names - optional <= set(sys.stdlib_module_names), names - set(sys.stdlib_module_names)
    assert "preflight" not in names


def test_local_python_collection_returns_every_probe() -> None:
    script = build_script(select_probes())
    proc = subprocess.run(["sh", "-s"], input=script.encode(), capture_output=True, timeout=60)
    outcome, message, doc = decode_output(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert outcome == "ok", message
    assert doc is not None and doc["mode"] == "python"
    wanted = {p.id for p in PROBES if not p.optional}
    assert set(doc["probes"]) == wanted
    # this machine has no GPU tools: they are recorded as absent, not as errors of the run
    assert doc["probes"]["topo"]["error"] == "absent"
    assert doc["probes"]["uname"]["rc"] == 0 and doc["probes"]["uname"]["stdout"].strip()


def test_shell_fallback_when_python3_is_missing(tmp_path) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("uname", "cat", "mktemp", "rm", "grep", "tail", "timeout"):
        src = subprocess.run(["sh", "-c", f"command -v {tool}"], capture_output=True, text=True).stdout.strip()
        if src:
            (bindir / tool).symlink_to(src)
    script = build_script(select_probes())
    proc = subprocess.run(["/bin/sh", "-s"], input=script.encode(), capture_output=True, timeout=60,
                          env={"PATH": str(bindir)})
    outcome, message, doc = decode_output(proc.returncode, proc.stdout.decode(), proc.stderr.decode())
    assert outcome == "ok", (message, proc.stderr)
    assert doc is not None and doc["mode"] == "shell"
    assert doc["probes"]["uname"]["rc"] == 0
    assert doc["probes"]["smi_query"]["error"] == "absent"
    assert doc["probes"]["nvml"]["error"] == "absent"


def test_garbage_output_is_a_collector_error() -> None:
    outcome, message, doc = decode_output(0, "\x00\xffgarbage{not json", "")
    assert outcome == "collector_error" and doc is None
    assert "no collector document" in message


def test_truncated_document_is_a_collector_error() -> None:
    outcome, message, _ = decode_output(137, "@@PREFLIGHT-BEGIN@@\n{\"probes\": {", "Killed")
    assert outcome == "collector_error" and "cut short" in message


def test_banner_noise_before_document_is_tolerated() -> None:
    text = 'Welcome to gpu-01\n@@PREFLIGHT-BEGIN@@\n{"probes": {}}\n@@PREFLIGHT-END@@\n'
    outcome, _, doc = decode_output(0, text, "")
    assert outcome == "ok" and doc == {"probes": {}}
