"""Simulated-node profiles and the node root built from one: a profile (preflight/sim/profiles/NAME/profile.yaml,
`extends` chains resolved) maps each tool's argv to a recorded output; prepare_node_root writes those as POSIX sh
stand-ins on the node's PATH, with its recorded files under hostroot/. Used by SimFleet (sshd) and sim/slurm.py.
"""

from __future__ import annotations

import shlex
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

PROFILES = Path(str(resources.files("preflight.sim").joinpath("profiles")))
# Profiles that are h100-healthy plus a behaviour of the fleet rather than of the tools.
FLEET_BEHAVIOURS = {"hang": "h100-healthy", "changed-hostkey": "h100-healthy", "refused": "h100-healthy"}
# The only host programs a simulated node sees: a shell and text tools. Hardware tools (nvidia-smi,
# ibstat, lspci, dmesg, ...) exist on a node only when its profile records them, so a run on the
# simulated fleet gives the same facts on every machine.
COREUTILS = ("sh", "bash", "cat", "grep", "head", "tail", "timeout", "mktemp", "rm", "uname", "ldconfig", "env", "sleep")


def prepare_node_root(root: Path, profile_name: str) -> dict[str, Any]:
    """Fill ROOT with bin/ (the profile's stand-ins, a shell and text tools) and hostroot/ (its files and
    host state): what every simulated node runs with, over sshd (SimFleet) or slurmd (sim/slurm.py).
    Returns the profile's limits."""
    profile = load_profile(profile_name)
    if root.exists():
        shutil.rmtree(root)
    (root / "bin").mkdir(parents=True)
    (root / "rec").mkdir()
    (root / "hostroot").mkdir()
    for tool, mapping in profile["tools"].items():
        script = root / "bin" / tool
        hang = profile["hang"].get(tool)
        script.write_text(hung_stand_in_script(tool, hang) if hang else stand_in_script(tool, mapping, root / "rec"))
        script.chmod(0o755)
    for tree in profile["roots"]:  # recorded / derived files the collector reads (see profile.yaml)
        shutil.copytree(tree, root / "hostroot", dirs_exist_ok=True)
    for rel in profile["remove_root"]:
        gone = (root / "hostroot" / rel).resolve()
        if gone.is_relative_to((root / "hostroot").resolve()) and gone.exists():
            shutil.rmtree(gone) if gone.is_dir() else gone.unlink()
    host = profile["host"]
    for rel in host.get("dirs") or []:
        (root / "hostroot" / rel).mkdir(parents=True, exist_ok=True)
    for rel, target in (host.get("links") or {}).items():
        (root / "hostroot" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "hostroot" / rel).symlink_to(target)
    python = profile["python"]
    if python == "garbage":
        junk = root / "bin" / "python3"
        junk.write_text("#!/bin/sh\ncat >/dev/null\nhead -c 2048 /dev/urandom\nexit 0\n")
        junk.chmod(0o755)
    for tool in COREUTILS + (("python3",) if python == "present" else ()):
        src = shutil.which(tool, path="/usr/bin:/bin:/usr/sbin:/sbin:/usr/local/bin")
        if src and not (root / "bin" / tool).exists():
            (root / "bin" / tool).symlink_to(src)
    return dict(profile["limits"])


def load_profile(name: str) -> dict[str, Any]:
    """A profile with its `extends` chain resolved: tools map to absolute recording paths."""
    base = FLEET_BEHAVIOURS.get(name, name)
    folder = PROFILES / base
    if not (folder / "profile.yaml").is_file():
        raise ValueError(f"unknown sim profile {name!r} (have: {', '.join(sorted(p.name for p in PROFILES.iterdir()))})")
    data = yaml.safe_load((folder / "profile.yaml").read_text()) or {}
    merged: dict[str, Any] = {"tools": {}, "python": "present", "host": {}, "limits": {}, "roots": [], "remove_root": [],
                              "hang": {}}
    if data.get("extends"):
        parent = load_profile(data["extends"])
        merged["hang"] = dict(parent["hang"])
        merged["roots"] = list(parent["roots"])
        merged["remove_root"] = list(parent["remove_root"])
        merged["tools"] = {t: dict(m) for t, m in parent["tools"].items()}
        merged["python"] = parent["python"]
        merged["host"] = {k: (list(v) if isinstance(v, list) else dict(v)) for k, v in parent["host"].items()}
        merged["limits"] = dict(parent["limits"])
    for key in ("host", "limits"):
        for k, v in (data.get(key) or {}).items():
            merged[key][k] = v
    for tool in data.get("remove_tools") or []:  # parent tools this profile takes away (the node lacks them)
        merged["tools"].pop(str(tool), None)
    for tool, mapping in (data.get("tools") or {}).items():
        merged["tools"].setdefault(tool, {})
        for argv, answer in mapping.items():
            # an answer is a recording file, or {file: ..., rc: N, sleep: S} for tools that print and exit
            # non-zero, or that take time (active tests: a scaled-down duration, not the real one)
            if isinstance(answer, dict):
                merged["tools"][tool][str(argv)] = (_answer_path(folder, answer["file"]), int(answer.get("rc", 0)),
                                                    float(answer.get("sleep", 0)))
            else:
                merged["tools"][tool][str(argv)] = (_answer_path(folder, answer), 0, 0.0)
    for tool, seconds in (data.get("planted_hang") or {}).items():  # a planted fault, never a recording
        merged["hang"][str(tool)] = float(seconds)
        merged["tools"].setdefault(str(tool), {})
    if data.get("python"):
        merged["python"] = data["python"]
    if (folder / "root").is_dir():  # files under the node's host root; a child's files replace its parent's
        merged["roots"].append(folder / "root")
    merged["remove_root"] += [str(r) for r in data.get("remove_root") or []]  # parent files this profile takes away
    return merged


def _body(path: Path) -> str:
    """A recording without its header (everything up to the first blank line): what the tool printed."""
    text = path.read_text()
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if line.strip() == "":
            return "\n".join(lines[i + 1:])
    return text


def _case_pattern(argv: str) -> str:
    """A `case` pattern for a recorded argv: literal text quoted, each `*` left as a shell wildcard."""
    if argv == "":
        return "''"
    return "*".join(shlex.quote(part) if part else "" for part in argv.split("*"))


# What the real tool prints for arguments it does not accept (then the stand-in's own note).
# nvidia-smi's exit code 2 is documented in its man page: "A supplied argument or flag is invalid".
_USAGE_ERRORS = {
    "nvidia-smi": ("Invalid combination of input arguments. Please run 'nvidia-smi -h' for help.", 2),
}


def _answer_path(folder: Path, name: str) -> Path:
    """A profile's answer file; `../other-profile/file` reuses another profile's recording (no copy)."""
    path = (folder / name).resolve()
    if not path.is_relative_to(PROFILES.resolve()):
        raise ValueError(f"sim profile {folder.name}: answer {name!r} is outside the profiles folder")
    return path


def stand_in_script(tool: str, mapping: dict[str, tuple[Path, int, float]], rec_dir: Path) -> str:
    """A /bin/sh script answering the recorded argv (so it works without python3 too).

    Keys match the arguments joined by single spaces; `*` in a key matches anything
    (`--query-gpu=* --format=csv`, `-b 8 -e 8G -f 2 -g *`). Exact keys are tried first.
    """
    cases = []
    ordered = sorted(mapping.items(), key=lambda kv: ("*" in kv[0], kv[0]))
    for i, (argv, (path, rc, *rest)) in enumerate(ordered):
        body = rec_dir / f"{tool}-{i}.out"
        body.write_text(_body(path))
        pause = f"sleep {rest[0]:g}; " if rest and rest[0] > 0 else ""
        cases.append(f"  {_case_pattern(argv)}) {pause}cat {shlex.quote(str(body))}; exit {int(rc)};;")
    message, code = _USAGE_ERRORS.get(tool, (f"{tool}: invalid option or arguments: $*", 2))
    return (
        "#!/bin/sh\n"
        f"# preflight sim stand-in for {tool}: prints recorded outputs (see preflight/sim/profiles)\n"
        'case "$*" in\n' + "\n".join(cases) + "\n"
        f'  *) echo "{message}" >&2\n'
        f'     echo "({tool}: preflight sim stand-in, no recording for arguments: $*)" >&2; exit {code};;\n'
        "esac\n"
    )


def hung_stand_in_script(tool: str, seconds: float) -> str:
    """A stand-in that never answers (profile `planted_hang`): like a tool stuck in a wedged driver, it
    ignores SIGTERM/SIGHUP/SIGINT (its `sleep` child inherits that), so only SIGKILL of its process group ends it."""
    return (
        "#!/bin/sh\n"
        f"# preflight sim stand-in for {tool}: PLANTED HANG (profile planted_hang), prints nothing, not a recording\n"
        "trap '' TERM HUP INT\n"
        f"sleep {int(seconds)}\n"
        "exit 0\n"
    )
