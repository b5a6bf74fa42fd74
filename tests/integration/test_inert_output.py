"""A node that prints terminal control (profile escape-output: OSC title, OSC 52 clipboard write, screen
clear, colour, CR planted in a real fabric-manager journal) reaches no human surface raw.

`preflight run` is a real subprocess against real sshd nodes; its stdout (forced to a terminal's
colours, where rich would pass control through if it were given any), Markdown and JUnit must hold no
control character but newline and tab; JSON keeps the text, escaped. Then the saved bundle is replayed
and must print the same nothing. The finding itself (fabric manager failed) is still reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

NODES = [("esc-01", "escape-output"), ("ok-01", "h100-healthy")]
RAW = ("\x1b", "\x07", "\x9b", "\r")


@pytest.fixture(scope="module")
def inv(sim_fleet_factory, tmp_path_factory):
    fleet = sim_fleet_factory(NODES)
    return fleet.write_inventory(tmp_path_factory.mktemp("inv") / "sim.yaml", thresholds=fleet.sandbox_thresholds())


def _preflight(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FORCE_COLOR": "1", "COLUMNS": "80", "CI": "1"}  # colour on: the worst case for leaks
    env.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "preflight", *argv], capture_output=True, text=True, env=env,
                          timeout=240)


def _no_raw_control(text: str, what: str) -> None:
    # rich's own colour codes (ESC[...m) are expected on a forced-colour console: remove exactly those, and
    # nothing from the node may remain
    import re

    own = re.sub(r"\x1b\[[0-9;]*m", "", text) if what in ("stdout", "stderr") else text
    if what == "stderr":  # the progress bar's own cursor control (line clear, hide/show cursor, CR redraws)
        own = re.sub(r"\x1b\[2K|\x1b\[\?25[lh]|\x1b\[\d*A|\r", "", own)
    for c in RAW:
        assert c not in own, (what, c, own[max(0, own.find(c) - 80):own.find(c) + 80])


def test_run_and_replay_print_the_node_text_inert(inv, tmp_path) -> None:
    save, md, xml, js = tmp_path / "b", tmp_path / "r.md", tmp_path / "r.xml", tmp_path / "r.json"
    proc = _preflight("run", "-i", str(inv), "--headless", "--save", str(save), "--markdown", str(md),
                      "--junit", str(xml), "--json", str(js))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "pwned-title" in proc.stdout and "\\x1b]0;pwned-title\\x07" in proc.stdout  # shown, as data
    for text, what in ((proc.stdout, "stdout"), (proc.stderr, "stderr"), (md.read_text(), "markdown"),
                       (xml.read_text(), "junit")):
        _no_raw_control(text, what)
    doc = json.loads(js.read_text())
    fm = [f for n in doc["nodes"] if n["name"] == "esc-01" for f in n["findings"] if f["check"] == "nvlink.fabricmanager"]
    assert fm and fm[0]["status"] == "fail"
    assert any("pwned-title" in ev for ev in fm[0]["evidence"])
    assert "\x1b" not in js.read_text()  # JSON holds no raw ESC either (escaped by json, or made visible)

    rep = _preflight("replay", str(save), "--markdown", str(md))
    assert rep.returncode == 2
    assert "pwned-title" in rep.stdout
    _no_raw_control(rep.stdout, "stdout")
    _no_raw_control(md.read_text(), "markdown")
