"""Builds the one script sent to a node, and decodes what comes back.

The node receives a POSIX sh script on stdin (`sh -s`). If python3 exists it runs the
stdlib-only collector from a quoted heredoc; otherwise it runs the same probes as plain
commands and prints marked sections. Either way the controller gets one document per node,
in one round trip, and turns anything else (garbage, a crash) into a `collector_error`.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import asdict
from importlib import resources
from typing import Any

from preflight.collect.probes import PROBES, Probe

HEREDOC = "__PREFLIGHT_COLLECTOR_EOF__"
SH_BEGIN = "@@PREFLIGHT-SH-BEGIN@@"
SH_END = "@@PREFLIGHT-SH-END@@"
PY_BEGIN = "@@PREFLIGHT-BEGIN@@"
PY_END = "@@PREFLIGHT-END@@"
# builtins the plain-command fallback cannot do, and why: recorded as "not run" (not "absent", which reads as a tool missing)
NEEDS_PYTHON = {"fr_dump": "the flight-recorder trigger needs python3 on the node (no FIFO writes from sh)"}


def collector_source() -> str:
    return resources.files("preflight.collect").joinpath("collector.py").read_text()


def select_probes(include_optional: tuple[str, ...] = ()) -> list[Probe]:
    return [p for p in PROBES if not p.optional or p.id in include_optional]


def _probe_dict(p: Probe) -> dict[str, Any]:
    d = asdict(p)
    d["argv"] = list(p.argv)
    d["fallback"] = [list(f) for f in p.fallback]
    return d


def _shell_fallback(probes: list[Probe], ngpus: int) -> str:
    """Plain-command version of the probes for nodes without python3 (no builtins there)."""
    lines = [f"echo {SH_BEGIN}"]
    root = '"${PREFLIGHT_HOST_ROOT:-}"'
    for p in probes:
        q = shlex.quote(p.id)
        if p.kind == "cmd":
            argv = [a.replace("{ngpus}", str(ngpus)) for a in p.argv]
            cmd = " ".join(shlex.quote(a) for a in argv)
            prog = shlex.quote(argv[0])
            # -k: a tool stuck in a wedged driver ignores SIGTERM; SIGKILL follows 2 s later (exit 137, else 124)
            lim = f"timeout -k 2 {int(p.timeout_s)} " if p.timeout_s else ""
            filt = ""
            if p.grep:
                filt += f" | grep -E {shlex.quote(p.grep)}"
            if p.tail_lines:
                filt += f" | tail -n {int(p.tail_lines)}"
            # a program that timed out once (a wedged driver hangs every nvidia-smi) is not started again: its
            # later probes read as timed out, so hung processes do not pile up (H lists those programs)
            lines.append(
                f"if command -v {prog} >/dev/null 2>&1; then echo '@@probe {p.id}'; "
                f"case \" $H \" in *\" \"{prog}\" \"*) echo \"@@rc {p.id} 124\";; *) "
                f"{{ if command -v timeout >/dev/null 2>&1; then {lim}{cmd}; else {cmd}; fi; }} >\"$T\" 2>/dev/null; "
                f"rc=$?; cat \"$T\"{filt}; echo \"@@rc {p.id} $rc\"; "
                f"if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then H=\"$H \"{prog}; fi;; esac; "
                f"else echo '@@absent '{q}; fi"
            )
        elif p.kind == "file":
            path = shlex.quote(p.path)
            lines.append(
                f"if [ -r {root}{path} ]; then echo '@@probe {p.id}'; cat {root}{path}; "
                f"echo \"@@rc {p.id} $?\"; else echo '@@absent '{q}; fi"
            )
        elif p.kind == "glob":
            # patterns are preflight's own constants (never inventory data): left unquoted so the shell globs them
            loops = "; ".join(
                f'for f in {root}{pat}; do [ -e "$f" ] && echo "${{f#${{PREFLIGHT_HOST_ROOT:-}}}}"; done'
                for pat in p.path.split(":") if re.fullmatch(r"[A-Za-z0-9_./*-]+", pat)
            )
            lines.append(f"echo '@@probe {p.id}'; {{ {loops}; }} 2>/dev/null; echo \"@@rc {p.id} 0\"")
        elif p.id in NEEDS_PYTHON:  # absent would say the tool is missing; it is the way to run it that is
            lines.append(f"echo '@@notrun '{q}' '{shlex.quote(NEEDS_PYTHON[p.id])}")
        else:
            lines.append(f"echo '@@absent '{q}")
    lines.append(f"echo {SH_END}")
    return "\n".join(lines)


def build_script(probes: list[Probe], *, ngpus: int = 8, deadline_s: float = 300.0,
                 peers: tuple[str, ...] = (), job: dict[str, Any] | None = None,
                 active: dict[str, Any] | None = None) -> str:
    """The node script. `peers` (host names from the inventory), `job` (hang gather settings: pattern,
    pyspy, ib_interval_s) and `active` (the level's budget_s and force) travel as JSON data, never as
    shell words."""
    config = {"probes": [_probe_dict(p) for p in probes], "ngpus": ngpus, "deadline_s": deadline_s,
              "peers": list(peers), "job": dict(job or {}), "active": dict(active or {})}
    py = collector_source() + f"\n\nif __name__ == '__main__':\n    main(json.loads({json.dumps(config)!r}))\n"
    if HEREDOC in collector_source():
        raise AssertionError("collector source contains the heredoc delimiter")
    fallback = _shell_fallback(probes, ngpus)
    return (
        "if command -v python3 >/dev/null 2>&1; then\n"
        f"python3 - <<'{HEREDOC}'\n{py}\n{HEREDOC}\n"
        "else\n"
        'T=$(mktemp 2>/dev/null || echo /tmp/preflight.$$); trap \'rm -f "$T"\' EXIT; H=\n'
        f"{fallback}\n"
        "fi\n"
    )


def _decode_shell(body: str) -> dict[str, Any]:
    probes: dict[str, Any] = {}
    current: str | None = None
    buf: list[str] = []
    for line in body.splitlines():
        if line.startswith("@@probe "):
            current, buf = line[8:].strip(), []
        elif line.startswith("@@rc ") and current is not None:
            parts = line.split()
            rc = int(parts[2]) if len(parts) > 2 and parts[2].lstrip("-").isdigit() else None
            error = "timeout" if rc in (124, 137) else None
            probes[current] = {"rc": rc if error is None else None, "stdout": "\n".join(buf) + ("\n" if buf else ""),
                               "stderr": "", "error": error, "kind": "cmd", "duration_s": None}
            current = None
        elif line.startswith("@@notrun "):
            pid, _, why = line[9:].strip().partition(" ")
            probes[pid] = {"rc": None, "stdout": "", "stderr": "", "error": "not run", "note": why, "kind": "builtin",
                           "duration_s": None}
        elif line.startswith("@@absent "):
            pid = line[9:].strip()
            probes[pid] = {"rc": None, "stdout": "", "stderr": "", "error": "absent", "kind": "", "duration_s": None}
        elif current is not None:
            buf.append(line)
    return {"collector_version": 1, "mode": "shell", "python": None, "hostname": None,
            "started": None, "duration_s": None, "probes": probes}


def decode_output(rc: int | None, stdout: str, stderr: str) -> tuple[str, str, dict[str, Any] | None]:
    """(outcome, message, document) from a node's raw stdout/stderr: never raises."""
    if PY_BEGIN in stdout:
        body = stdout.split(PY_BEGIN, 1)[1]
        if PY_END not in body:
            return "collector_error", f"collector output cut short (rc={rc}): {stderr.strip()[-300:]}", None
        try:
            doc = json.loads(body.split(PY_END, 1)[0])
        except ValueError as exc:
            return "collector_error", f"collector JSON unreadable: {exc}", None
        if not isinstance(doc, dict) or not isinstance(doc.get("probes"), dict):
            return "collector_error", "collector JSON has no probes", None
        return "ok", "", doc
    if SH_BEGIN in stdout and SH_END in stdout:
        body = stdout.split(SH_BEGIN, 1)[1].split(SH_END, 1)[0]
        return "ok", "node has no python3: collected with plain commands", _decode_shell(body)
    raw = stdout.strip()[:120] or stderr.strip()[-300:]
    excerpt = "".join(ch if ch.isprintable() and ord(ch) < 0x2000 else "?" for ch in raw)
    return "collector_error", f"no collector document in the output (rc={rc}): {excerpt}", None
