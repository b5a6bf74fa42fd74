"""A real Slurm cluster on one host, for tests: munged, slurmctld and one slurmd per simulated node.

Debian's slurm-wlm is built with multiple-slurmd support, so N nodes fit on one machine:
`NodeName=simK NodeHostname=<this host> NodeAddr=127.0.0.1 Port=<its own>`, `%n` in the slurmd
pid/log/spool paths, and one `slurmd -N simK` per node. Everything lives in a temp folder:
slurm.conf, a fresh munge key and munge socket, state and spool directories, logs. Nothing under
/etc is read or written (`SLURM_CONF` and `AuthInfo=socket=...` point the clients at the folder).

Each node's tools come from its sim profile, as in preflight/sim/fleet.py: `srun` runs
`node_command` (a small sh wrapper) on every node; it reads `$SLURMD_NODENAME`, sets PATH,
HOME and PREFLIGHT_HOST_ROOT to that simulated node's folder, applies the profile's memlock limit
and runs `sh -s` on the collector script from stdin. The profile `hang` reads its stdin and
sleeps: a collector that never answers.

Every daemon is a child started here, its PID recorded; `stop()` kills exactly those PIDs and the
processes below them (task shells, found through /proc), also at interpreter exit. Never by name.
"""

from __future__ import annotations

import atexit
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from preflight.sim.fleet import _alive, _signal, _whoami, load_profile, stop_process_tree
from preflight.sim.fleet import prepare_node_root as fleet_prepare_node_root

SLURM_BINARIES = ("munged", "slurmctld", "slurmd", "srun", "sinfo", "scontrol")
SBIN = "/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/sbin:/usr/local/bin"
# Profiles that are a behaviour of the node under Slurm rather than of its tools.
SLURM_BEHAVIOURS = {"hang": "h100-healthy"}


def missing_binaries() -> list[str]:
    """The Slurm/munge programs this host lacks (empty when a test cluster can start)."""
    return [b for b in SLURM_BINARIES if not shutil.which(b, path=os.environ.get("PATH", "") + ":" + SBIN)]


def _which(name: str) -> str:
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":" + SBIN)
    if not found:
        raise RuntimeError(f"{name} not installed (apt-get install slurm-wlm munge; see scripts/install-test-deps.sh)")
    return found


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def prepare_node_root(root: Path, profile_name: str) -> dict[str, Any]:
    """SimFleet's node folder (stand-ins on bin/, files under hostroot/), for a profile name or a Slurm behaviour."""
    return fleet_prepare_node_root(root, SLURM_BEHAVIOURS.get(profile_name, profile_name))


@dataclass
class SlurmSimNode:
    name: str
    profile: str
    port: int
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    limits: dict[str, Any] = field(default_factory=dict)  # the profile's limits, as its YAML gives them

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None


class SlurmCluster:
    """`with SlurmCluster(dir, [("sim1", "h100-healthy"), ...]) as c: subprocess.run([... srun ...], env=c.env())`."""

    def __init__(self, workdir: Path, nodes: list[tuple[str, str]], partition: str = "sim",
                 slurmd_timeout_s: int = 300) -> None:
        self.workdir = Path(workdir)
        self.partition = partition
        self.slurmd_timeout_s = slurmd_timeout_s
        self.host = socket.gethostname().split(".")[0]
        self.conf = self.workdir / "slurm.conf"
        self.munge_socket = self.workdir / "munge" / "munge.socket"
        self.wrapper = self.workdir / "simnode.sh"
        self.nodes: dict[str, SlurmSimNode] = {}
        for name, profile in nodes:
            if not name.replace("-", "").replace("_", "").isalnum():
                raise ValueError(f"sim node name {name!r}: letters, digits, - and _ only")
            load_profile(SLURM_BEHAVIOURS.get(profile, profile))  # unknown profile: fail before starting
            self.nodes[name] = SlurmSimNode(name=name, profile=profile, port=0, root=self.workdir / "nodes" / name)
        self.munged: subprocess.Popen[bytes] | None = None
        self.slurmctld: subprocess.Popen[bytes] | None = None
        self._atexit = False

    # lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> SlurmCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def node_command(self) -> tuple[str, ...]:
        """What srun runs on every node: the wrapper that becomes `$SLURMD_NODENAME`'s simulated node."""
        return ("sh", str(self.wrapper))

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment for srun/sinfo/scontrol against this cluster (no outer job's SLURM_* leaks in)."""
        env = {k: v for k, v in (base if base is not None else os.environ).items() if not k.startswith("SLURM_")}
        env["SLURM_CONF"] = str(self.conf)
        env["PATH"] = env.get("PATH", "") + ":" + SBIN
        return env

    @property
    def pids(self) -> list[int]:
        procs = [self.munged, self.slurmctld, *(n.proc for n in self.nodes.values())]
        return [p.pid for p in procs if p is not None]

    def start(self, timeout_s: float = 30.0) -> None:
        """Start munged, slurmctld and every slurmd; return when sinfo shows all nodes idle."""
        t_end = time.monotonic() + timeout_s
        for sub in ("munge", "state", "spool", "log", "nodes"):
            (self.workdir / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir / "munge", 0o700)
        if not self._atexit:
            atexit.register(self.stop)
            self._atexit = True
        self._start_munged(t_end)
        for node in self.nodes.values():
            node.limits = prepare_node_root(node.root, node.profile)
            (self.workdir / "spool" / node.name).mkdir(parents=True, exist_ok=True)
        self._write_wrapper()
        ports = _free_ports(len(self.nodes) + 1)
        self.ctld_port = ports[0]
        for node, port in zip(self.nodes.values(), ports[1:]):
            node.port = port
        self._write_conf()
        env = self.env()
        self.slurmctld = self._spawn([_which("slurmctld"), "-D", "-i", "-f", str(self.conf)],
                                     self.workdir / "log" / "slurmctld.out", env)
        for node in self.nodes.values():
            node.proc = self._spawn([_which("slurmd"), "-D", "-N", node.name, "-f", str(self.conf)],
                                    self.workdir / "log" / f"slurmd-{node.name}.out", env)
        self.wait_idle(list(self.nodes), t_end)

    def wait_idle(self, names: list[str], t_end: float) -> None:
        last = ""
        while time.monotonic() < t_end:
            for proc, what in [(self.slurmctld, "slurmctld"), *((n.proc, f"slurmd {n.name}") for n in self.nodes.values())]:
                if proc is not None and proc.poll() is not None and (what == "slurmctld" or what.split()[1] in names):
                    raise RuntimeError(f"{what} exited with {proc.returncode}: {self.log_tail(what)}")
            states = self.node_states()
            last = str(states)
            if all(states.get(n) == "idle" for n in names):
                return
            time.sleep(0.2)
        raise RuntimeError(f"Slurm nodes not idle in time: sinfo says {last}; {self.log_tail('slurmctld')}")

    def node_states(self) -> dict[str, str]:
        """{node: state} as sinfo prints it (idle, alloc, down*, drain, ...); {} when slurmctld does not answer."""
        try:
            out = subprocess.run([_which("sinfo"), "-h", "-N", "-o", "%N %t"], capture_output=True, text=True,
                                 timeout=5, env=self.env()).stdout
        except subprocess.TimeoutExpired:
            return {}
        states = {}
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2:
                states[parts[0]] = parts[1]
        return states

    def log_tail(self, what: str, n: int = 1500) -> str:
        name = "slurmctld" if what == "slurmctld" else f"slurmd-{what.split()[-1]}"
        texts = []
        for path in (self.workdir / "log" / f"{name}.log", self.workdir / "log" / f"{name}.out"):
            if path.exists():
                texts.append(path.read_text(errors="replace")[-n:])
        return " | ".join(texts)

    def stop_node(self, name: str) -> None:
        """Kill this node's slurmd (and the tasks below it): slurmctld still believes it is up
        until SlurmdTimeout, so a step launched now fails on it."""
        node = self.nodes[name]
        self._kill(node.proc)

    def drain(self, name: str, reason: str = "preflight test") -> None:
        subprocess.run([_which("scontrol"), "update", f"NodeName={name}", "State=DRAIN", f"Reason={reason}"],
                       check=True, capture_output=True, timeout=10, env=self.env())

    def resume(self, name: str) -> None:
        subprocess.run([_which("scontrol"), "update", f"NodeName={name}", "State=RESUME"],
                       check=True, capture_output=True, timeout=10, env=self.env())

    def stray_pids(self) -> list[int]:
        """Processes of this cluster not below a daemon we hold: slurmstepd (slurmd double-forks it)
        and the tasks under it. Found by `SLURM_CONF=<this cluster's slurm.conf>` in their
        environment, which only this cluster's daemons and jobs carry; never by program name."""
        marker = f"SLURM_CONF={self.conf}".encode()
        mine = {os.getpid(), *self.pids}
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in mine:
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
            except OSError:
                continue
            if marker in environ.split(b"\0") and _alive(int(entry)):
                found.append(int(entry))
        return found

    def stop(self) -> None:
        """Kill exactly the daemons started here and the processes below them, then this cluster's
        job-step processes (stray_pids); wait until gone."""
        for node in self.nodes.values():
            self._kill(node.proc)
        self._kill(self.slurmctld)
        self._kill(self.munged)
        strays = self.stray_pids()
        _signal(strays, signal.SIGKILL)
        deadline = time.monotonic() + 3.0
        while any(_alive(p) for p in strays) and time.monotonic() < deadline:
            time.sleep(0.05)

    # internals -----------------------------------------------------------------------------
    def _spawn(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, env=env,
                                    start_new_session=True)

    def _start_munged(self, t_end: float) -> None:
        key = self.workdir / "munge" / "munge.key"
        if not key.exists():
            key.write_bytes(os.urandom(1024))
            os.chmod(key, 0o400)
        self.munged = self._spawn([
            _which("munged"), "--foreground", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
            f"--pid-file={self.workdir / 'munge' / 'munged.pid'}", f"--log-file={self.workdir / 'log' / 'munged.log'}",
            f"--seed-file={self.workdir / 'munge' / 'munged.seed'}",
        ], self.workdir / "log" / "munged.out", self.env())
        while time.monotonic() < t_end:
            if self.munged.poll() is not None:
                raise RuntimeError(f"munged exited with {self.munged.returncode}: "
                                   f"{(self.workdir / 'log' / 'munged.out').read_text(errors='replace')[-800:]}")
            if self.munge_socket.exists():
                return
            time.sleep(0.05)
        raise RuntimeError("munged did not create its socket in time")

    def _write_wrapper(self) -> None:
        cases = []
        for node in self.nodes.values():
            root = node.root
            memlock = node.limits.get("memlock")
            lines = [f"HOME={shlex.quote(str(root))}", f"PATH={shlex.quote(str(root / 'bin'))}",
                     f"PREFLIGHT_HOST_ROOT={shlex.quote(str(root / 'hostroot'))}",
                     f"PREFLIGHT_SIM_NODE={shlex.quote(node.name)}",
                     "export HOME PATH PREFLIGHT_HOST_ROOT PREFLIGHT_SIM_NODE"]
            if memlock == "unlimited":
                lines.append("ulimit -l unlimited 2>/dev/null")
            elif memlock is not None:
                lines.append(f"ulimit -l {max(1, int(memlock) // 1024)} 2>/dev/null")
            if node.profile == "hang":
                lines.append("cat >/dev/null; exec sleep 3600")
            cases.append(f"  {node.name})\n    " + "\n    ".join(lines) + "\n    ;;")
        self.wrapper.write_text(
            "#!/bin/sh\n"
            "# preflight sim: become $SLURMD_NODENAME's simulated node, then run the script on stdin\n"
            'case "$SLURMD_NODENAME" in\n' + "\n".join(cases) + "\n"
            '  *) echo "preflight sim: no simulated node named $SLURMD_NODENAME" >&2; exit 97;;\n'
            "esac\n"
            "exec sh -s\n"
        )
        self.wrapper.chmod(0o755)

    def _write_conf(self) -> None:
        d = self.workdir
        user = _whoami()
        names = ",".join(self.nodes)
        plugstack = d / "plugstack.conf"
        plugstack.write_text("")
        lines = [
            "# preflight sim cluster (preflight/sim/slurm.py): one host, one slurmd per node",
            "ClusterName=preflightsim",
            f"SlurmctldHost={self.host}(127.0.0.1)",
            f"SlurmctldPort={self.ctld_port}",
            f"SlurmUser={user}",
            f"SlurmdUser={user}",  # root normally; as another user slurmd runs jobs of that user only
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={self.munge_socket}",
            f"StateSaveLocation={d / 'state'}",
            f"SlurmdSpoolDir={d / 'spool'}/%n",
            f"SlurmctldPidFile={d / 'state' / 'slurmctld.pid'}",
            f"SlurmdPidFile={d / 'spool'}/slurmd-%n.pid",
            f"SlurmctldLogFile={d / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={d / 'log'}/slurmd-%n.log",
            f"PlugStackConfig={plugstack}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            "JobCompType=jobcomp/none",
            "SchedulerType=sched/backfill",
            "SchedulerParameters=sched_interval=1,sched_min_interval=100000",  # a freed node is used at once
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "MpiDefault=none",
            "ReturnToService=2",
            f"SlurmdTimeout={int(self.slurmd_timeout_s)}",
            "SlurmctldTimeout=30",
            "MessageTimeout=5",
            "KillWait=2",
            "InactiveLimit=0",
            "MinJobAge=5",
            "MailProg=/bin/true",
            "SlurmctldDebug=info",
            "SlurmdDebug=info",
        ]
        for node in self.nodes.values():
            lines.append(f"NodeName={node.name} NodeHostname={self.host} NodeAddr=127.0.0.1 Port={node.port} "
                         "CPUs=1 State=UNKNOWN")
        lines.append(f"PartitionName={self.partition} Nodes={names} Default=YES MaxTime=INFINITE State=UP")
        self.conf.write_text("\n".join(lines) + "\n")

    def _kill(self, proc: subprocess.Popen[bytes] | None) -> None:
        stop_process_tree(proc, term_children=False)  # slurmd/slurmctld end their own children on SIGTERM


def main(argv: list[str] | None = None) -> int:
    """`python -m preflight.sim.slurm DIR sim1=h100-healthy ...`: keep a cluster up until Ctrl-C."""
    args = argv if argv is not None else sys.argv[1:]
    if len(args) < 2:
        print("usage: python -m preflight.sim.slurm DIR sim1=h100-healthy [sim2=driver-mismatch ...]")
        return 2
    nodes = [tuple(a.split("=", 1)) for a in args[1:]]

    def on_term(signum: int, frame: object) -> None:  # `kill PID` stops the daemons too, not only Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    with SlurmCluster(Path(args[0]), nodes) as cluster:  # type: ignore[arg-type]
        print(f"cluster up: export SLURM_CONF={cluster.conf}; node command: {' '.join(cluster.node_command)}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
