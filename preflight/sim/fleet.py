"""A simulated GPU fleet: one real OpenSSH sshd per node on 127.0.0.1, stand-in GPU/IB tools on PATH.

Only the hardware tools are stand-ins (POSIX sh scripts that print a profile's recorded output);
SSH, the shell, the collector and preflight itself are real. Each sshd is started as a child
whose PID is recorded, and `stop()` kills exactly those PIDs (also at interpreter exit).

Profiles and node roots live in sim/profile.py, stopping process trees in sim/processes.py; the names
callers import from here (prepare_node_root, load_profile, stop_process_tree, PROFILES, ...) stay importable.
"""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from preflight.sim.processes import alive as _alive
from preflight.sim.processes import descendants as _descendants
from preflight.sim.processes import send_signal as _signal
from preflight.sim.processes import stop_process_tree
from preflight.sim.profile import COREUTILS, FLEET_BEHAVIOURS, PROFILES, load_profile, prepare_node_root
from preflight.sim.profile import hung_stand_in_script as _hung_stand_in
from preflight.sim.profile import stand_in_script as _stand_in

__all__ = ["COREUTILS", "FLEET_BEHAVIOURS", "PROFILES", "SSHD", "SimFleet", "SimNode", "_alive", "_descendants",
           "_hung_stand_in", "_signal", "_stand_in", "_whoami", "load_profile", "main", "prepare_node_root",
           "stop_process_tree"]

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


@dataclass
class SimNode:
    """One simulated node: its profile, port, folder and (once started) its sshd process."""

    name: str
    profile: str
    port: int
    root: Path
    host_key_pub: str = ""
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    limits: dict[str, Any] = field(default_factory=dict)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SimFleet:
    """Context manager: `with SimFleet(dir, [("node-01", "h100-healthy"), ...]) as fleet: ...`."""

    def __init__(self, workdir: Path, nodes: list[tuple[str, str]], base_port: int | None = None,
                 user: str | None = None) -> None:
        """`nodes` are (name, profile) pairs. With `base_port`, node i listens on base_port + i
        (start() fails if one is taken); without, each node gets a free port, re-picked if
        another process takes it between the pick and sshd's bind."""
        self.workdir = Path(workdir)
        self.base_port = base_port
        self.user = user or os.environ.get("USER") or _whoami()
        self.nodes: dict[str, SimNode] = {}
        self.client_key = self.workdir / "client_key"
        self.known_hosts = self.workdir / "known_hosts"
        self._jobs: list[subprocess.Popen[bytes]] = []  # job stand-ins started by start_job()
        for i, (name, profile) in enumerate(nodes):
            load_profile(profile)  # unknown profile: fail before starting anything
            port = base_port + i if base_port else 0
            self.nodes[name] = SimNode(name=name, profile=profile, port=port, root=self.workdir / name)
        self._started = False

    # lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> SimFleet:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0 and not os.path.isdir("/run/sshd"):
            os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # sshd's privilege-separation dir (the service makes it)
        _keygen(self.client_key)
        atexit.register(self.stop)
        for node in self.nodes.values():
            self._prepare(node)
            self._launch(node)
        for node in self.nodes.values():
            self._wait_ready(node)
        lines = []
        for node in self.nodes.values():
            key = node.host_key_pub
            if node.profile == "changed-hostkey":
                other = node.root / "other_host_key"
                _keygen(other)
                key = (other.with_suffix(".pub") if other.with_suffix(".pub").exists() else Path(str(other) + ".pub")).read_text()
            kt, kb = key.split()[:2]
            lines.append(f"[127.0.0.1]:{node.port} {kt} {kb}")
        self.known_hosts.write_text("\n".join(lines) + "\n")
        self._started = True
        for node in self.nodes.values():
            if node.profile == "hang":
                self.pause(node.name)
            elif node.profile == "refused":
                self.stop_node(node.name)

    def stop(self) -> None:
        """Stop every node's sshd and whatever runs under it (open sessions, their commands), and its job processes."""
        for node in self.nodes.values():
            self._kill(node)
        for proc in self._jobs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(timeout=5)
        self._jobs = []

    # jobs (for `preflight hang`) -------------------------------------------------------------
    def start_job(self, name: str, argv: list[str], env: dict[str, str], *, stopped: bool = False) -> int:
        """Start a real process as one of this node's job ranks; the node's collector sees it.

        The process runs on this machine (all simulated nodes share one /proc), so its /proc entry
        is linked into the node's host root: `/proc/<pid>` there is the real one, and no other
        node sees it. `stopped` sends SIGSTOP (state T), like a rank frozen by a debugger.
        The fleet's stop() kills it by its PID.
        """
        node = self.nodes[name]
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
        proc = subprocess.Popen(argv, env=full_env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self._jobs.append(proc)
        (node.root / "hostroot" / "proc").mkdir(parents=True, exist_ok=True)
        (node.root / "hostroot" / "proc" / str(proc.pid)).symlink_to(f"/proc/{proc.pid}")
        if stopped:
            os.kill(proc.pid, signal.SIGSTOP)
        return proc.pid

    def host_root(self, name: str) -> Path:
        return self.nodes[name].root / "hostroot"

    def _kill(self, node: SimNode) -> None:
        stop_process_tree(node.proc, term_children=True)
        node.paused = False

    def pause(self, name: str) -> None:
        node = self.nodes[name]
        if node.proc and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGSTOP)
            node.paused = True

    def resume(self, name: str) -> None:
        node = self.nodes[name]
        if node.proc and node.proc.poll() is None:
            os.kill(node.proc.pid, signal.SIGCONT)
            node.paused = False

    def stop_node(self, name: str) -> None:
        """Kill this node's sshd (and its sessions): connections to its port are refused afterwards."""
        self._kill(self.nodes[name])

    @property
    def pids(self) -> list[int]:
        return [n.pid for n in self.nodes.values() if n.pid]

    # inventory -----------------------------------------------------------------------------
    @staticmethod
    def sandbox_thresholds() -> dict[str, Any]:
        """Threshold overrides a fleet needs when this host cannot give nodes an unlimited memlock.

        Raising RLIMIT_MEMLOCK needs CAP_SYS_RESOURCE; without it the simulated nodes keep the
        host's limit (8 MiB here), which would make every healthy node fail `memory.memlock`.
        The override states that in the inventory, where a reader sees it; faulty profiles set
        a lower limit (64 KiB) and still fail.
        """
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
        if hard == resource.RLIM_INFINITY or os.geteuid() == 0 and _can_raise_memlock():
            return {}
        return {"memory.memlock": {"min_gib_when_limited": round(hard / 1024**3, 6)}}

    def write_inventory(self, path: Path, expectations: dict[str, Any] | None = None,
                        thresholds: dict[str, Any] | None = None) -> Path:
        doc: dict[str, Any] = {
            "defaults": {"user": self.user, "identity_file": str(self.client_key)},
            "known_hosts": str(self.known_hosts),
            "groups": {"sim": {"hosts": {n.name: self._host_entry(n) for n in self.nodes.values()}}},
        }
        if expectations:
            doc["expect"] = dict(expectations)
        if thresholds:
            doc["thresholds"] = dict(thresholds)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# simulated fleet (preflight.sim.fleet)\n" + yaml.safe_dump(doc, sort_keys=False))
        return path

    @staticmethod
    def _host_entry(node: SimNode) -> dict[str, Any]:
        """A sim node's inventory entry. A profile that records no kernel log says so once, as an operator
        would (`expect.accept`): gpu.xid then reads `accepted` with this reason instead of `error`."""
        entry: dict[str, Any] = {"address": "127.0.0.1", "port": node.port}
        if "dmesg" not in load_profile(node.profile)["tools"]:
            entry["expect"] = {"accept": {"xid": f"sim profile {node.profile} records no kernel log (dmesg)"}}
        return entry

    # internals -----------------------------------------------------------------------------
    def _prepare(self, node: SimNode) -> None:
        root = node.root
        node.limits = prepare_node_root(root, node.profile)
        path_value = str(root / "bin")
        host_key = root / "ssh_host_ed25519_key"
        _keygen(host_key)
        node.host_key_pub = Path(str(host_key) + ".pub").read_text()
        # HOME points at the node's folder so the login shell reads no rc file of the real user
        # (a ~/.bashrc that prepends pyenv shims would otherwise change which python3 runs).
        env = {"HOME": str(root), "PATH": path_value, "PREFLIGHT_HOST_ROOT": str(root / "hostroot"),
               "PREFLIGHT_SIM_NODE": node.name}
        options = ",".join(f'environment="{k}={v}"' for k, v in env.items())  # one variable per option
        pub = Path(str(self.client_key) + ".pub").read_text().strip()
        (root / "authorized_keys").write_text(f"{options} {pub}\n")
        node.port = node.port or _free_port()
        self._write_config(node, host_key)

    def _write_config(self, node: SimNode, host_key: Path) -> None:
        root = node.root
        (root / "sshd_config").write_text("\n".join([
            f"Port {node.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"PidFile {root / 'sshd.pid'}",
            f"AuthorizedKeysFile {root / 'authorized_keys'}",
            "PermitRootLogin prohibit-password",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "UsePAM no",
            "StrictModes no",
            "PermitUserEnvironment yes",
            "PrintMotd no",
            "LogLevel ERROR",
            "MaxStartups 200",
            "MaxSessions 50",
            "",
        ]))

    def _launch(self, node: SimNode) -> None:
        log = open(node.root / "sshd.log", "wb")
        memlock = node.limits.get("memlock")

        def set_limits() -> None:  # sessions inherit sshd's limits (UsePAM no): set them as a GPU node would
            if memlock is None:
                return
            import resource

            value = resource.RLIM_INFINITY if memlock == "unlimited" else int(memlock)
            try:
                resource.setrlimit(resource.RLIMIT_MEMLOCK, (value, value))
            except (ValueError, OSError):
                pass  # not root: keep the inherited limit (checks then judge the real one)

        with log:  # the child keeps its own copy of the descriptor
            node.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(node.root / "sshd_config")],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=set_limits)

    def _wait_ready(self, node: SimNode, timeout_s: float = 10.0) -> None:
        """Until the node's sshd accepts TCP and sends its SSH banner (bounded); a port lost to
        another process before sshd bound it is re-picked (free ports only, at most 5 times)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        retries = 0
        while time.monotonic() < deadline:
            if node.proc and node.proc.poll() is not None:
                log = (node.root / "sshd.log").read_text(errors="replace")
                if ("Address already in use" in log or "Cannot bind any address" in log) and not self.base_port and retries < 5:
                    retries += 1
                    node.port = _free_port()
                    self._write_config(node, node.root / "ssh_host_ed25519_key")
                    self._launch(node)
                    continue
                raise RuntimeError(f"sshd for {node.name} (port {node.port}) exited: {log[-800:]}")
            try:
                with socket.create_connection(("127.0.0.1", node.port), timeout=1.0) as s:
                    s.settimeout(1.0)
                    if s.recv(64).startswith(b"SSH-"):
                        return
            except OSError as exc:
                last = str(exc)
            time.sleep(0.05)
        raise RuntimeError(f"sshd for {node.name} not ready on port {node.port} after {timeout_s} s: {last}")


def _keygen(path: Path) -> None:
    if path.exists():
        return
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "preflight-sim", "-f", str(path)],
                   check=True, stdin=subprocess.DEVNULL)


def _can_raise_memlock() -> bool:
    r = subprocess.run([sys.executable, "-c", "import resource as r; r.setrlimit(r.RLIMIT_MEMLOCK, (r.RLIM_INFINITY, r.RLIM_INFINITY))"],
                       capture_output=True)
    return r.returncode == 0


def _whoami() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def main(argv: list[str] | None = None) -> int:
    """`python -m preflight.sim.fleet DIR name=profile ...`: run a fleet until Ctrl-C (manual testing)."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) < 2:
        print("usage: python -m preflight.sim.fleet DIR node-01=h100-healthy [node-02=driver-mismatch ...]")
        return 2
    nodes = [tuple(a.split("=", 1)) for a in args[1:]]

    def on_term(signum: int, frame: object) -> None:  # `kill PID` stops the daemons too, not only Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with SimFleet(Path(args[0]), nodes) as fleet:  # type: ignore[arg-type]
        inv = fleet.write_inventory(Path(args[0]) / "inventory.yaml", thresholds=fleet.sandbox_thresholds())
        print(f"fleet up: {len(nodes)} nodes; inventory {inv}; pid {os.getpid()}; Ctrl-C or `kill PID` stops it", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
