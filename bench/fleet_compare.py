"""Benchmark: preflight against pdsh, ansible and a bare-asyncssh floor on one simulated fleet.

    python bench/fleet_compare.py 16 64 128 256 [--repeat 3] [--forks 32] [--venv /tmp/benchvenv]
    python bench/fleet_compare.py 64 --profile          # cProfile of preflight's controller (all threads)

For each N it starts N real OpenSSH daemons on 127.0.0.1 (profile h100-healthy, see
preflight/sim/), then in the same run, interleaved round by round, times four tools that all
run the *same* collector script on every node, with the same fan-out width, the same client key
and strict host-key checking against the fleet's known_hosts:

  preflight  `python -m preflight run -i INV --headless --json OUT -q --forks F`
             (connect, collect, parse, judge, JSON report)
  pdsh       `pdsh -R ssh -f F -w node-[...] "$SCRIPT"`, output to a file nobody reads
             (pdsh forwards no stdin, so the script travels as the remote command line)
  ansible    `ansible all -m raw -a "$SCRIPT" -f F`, OpenSSH connection, ControlMaster off
  floor      a bare asyncssh script (this file, --floor-worker) that only runs `sh -s` with the
             script on stdin and counts the collector documents: no parsing, no judging

Every tool runs as a child process of this script; its wall time, CPU time (user+sys of the
whole process tree, from os.wait4) and peak memory (sum of the tree's RSS sampled from /proc
every 50 ms, and the largest single process from ru_maxrss) are measured. Medians of
--repeat runs and the ratios preflight/pdsh, preflight/ansible, preflight/floor are printed as a
Markdown table (and written as JSON with --out). pdsh, ansible-core and asyncssh come from a
separate venv (bench/requirements.txt), never from the project's dependencies.

Not part of the test run: timing lives in bench/ and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TOOLS = ("preflight", "pdsh", "ansible", "floor")
PY_END = "@@PREFLIGHT-END@@"  # preflight.collect.script.PY_END (kept literal: the floor worker has no preflight)


# --------------------------------------------------------------------------------------------
# floor: bare asyncssh, run under the bench venv's python (no preflight import here)
# --------------------------------------------------------------------------------------------
def floor_worker(spec_path: str) -> int:
    import asyncio

    import asyncssh

    spec = json.loads(Path(spec_path).read_text())
    script = Path(spec["script"]).read_text()
    key = asyncssh.read_private_key(spec["client_key"])
    known = asyncssh.read_known_hosts(spec["known_hosts"])

    async def one(sem: asyncio.Semaphore, port: int) -> bool:
        async with sem:
            try:
                async with asyncssh.connect("127.0.0.1", port=port, username=spec["user"], client_keys=[key],
                                            known_hosts=known, agent_path=None, config=(),
                                            connect_timeout=30) as conn:
                    res = await conn.run("sh -s", input=script, check=False, timeout=120)
                    return PY_END in (res.stdout or "")
            except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
                print(f"floor: port {port}: {type(exc).__name__}: {exc}", file=sys.stderr)
                return False

    async def main() -> int:
        sem = asyncio.Semaphore(spec["forks"])
        oks = await asyncio.gather(*(one(sem, p) for p in spec["ports"]))
        print(f"floor: {sum(oks)} of {len(oks)} nodes answered")
        return 0 if all(oks) else 1

    return asyncio.run(main())


# --------------------------------------------------------------------------------------------
# measuring one child process tree
# --------------------------------------------------------------------------------------------
class TreeSampler(threading.Thread):
    """Peak of the summed RSS of `root` and its descendants, from /proc every `interval` s."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.root = root
        self.interval = interval
        self.peak_kib = 0
        self.samples = 0
        self._halt = threading.Event()
        self._ppid: dict[int, int] = {}  # pid -> ppid, read once per pid
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024

    def _tree(self) -> set[int]:
        pids = [int(e) for e in os.listdir("/proc") if e.isdigit()]
        cache: dict[int, int] = {}
        for pid in pids:  # a pid gone from /proc is dropped from the cache, so a reused pid is read afresh
            ppid = self._ppid.get(pid)
            if ppid is None:
                try:
                    ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    ppid = -1
            cache[pid] = ppid
        self._ppid = cache
        children: dict[int, list[int]] = {}
        for pid, ppid in cache.items():
            children.setdefault(ppid, []).append(pid)
        tree, todo = {self.root}, [self.root]
        while todo:
            for child in children.get(todo.pop(), []):
                if child not in tree:
                    tree.add(child)
                    todo.append(child)
        return tree

    def sample(self) -> None:
        total = 0
        for pid in self._tree():
            try:
                total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * self._page_kib
            except (OSError, IndexError, ValueError):
                pass
        self.samples += 1
        self.peak_kib = max(self.peak_kib, total)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            self.sample()

    def stop(self) -> None:
        self._halt.set()
        self.join()


def _cpu_busy_s() -> float:
    """Machine-wide busy CPU seconds (all cores) from /proc/stat: everything but idle and iowait."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    vals = [int(x) for x in parts]
    return (sum(vals[:8]) - vals[3] - vals[4]) / os.sysconf("SC_CLK_TCK")


def measure(argv: list[str], env: dict[str, str], stdout_path: Path, timeout_s: float, cwd: Path) -> dict:
    busy0 = _cpu_busy_s()
    t0 = time.monotonic()
    with open(stdout_path, "wb") as out, open(str(stdout_path) + ".err", "wb") as err:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
    sampler = TreeSampler(proc.pid)
    sampler.start()
    timer = threading.Timer(timeout_s, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.monotonic() - t0
    timer.cancel()
    sampler.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # nothing of a tool may outlive its run
    except OSError:
        pass
    return {"wall_s": wall, "cpu_s": ru.ru_utime + ru.ru_stime, "user_s": ru.ru_utime, "sys_s": ru.ru_stime,
            "peak_tree_mib": sampler.peak_kib / 1024, "max_proc_mib": ru.ru_maxrss / 1024,
            "machine_busy_s": _cpu_busy_s() - busy0, "rc": proc.returncode, "samples": sampler.samples}


# --------------------------------------------------------------------------------------------
# the four tools
# --------------------------------------------------------------------------------------------
def _hostlist(names: list[str]) -> str:
    nums = [int(n.rsplit("-", 1)[1]) for n in names]
    return f"node-[{min(nums):04d}-{max(nums):04d}]"


def setup_fleet_files(fleet, work: Path, script: str, forks: int) -> dict[str, Path]:
    names = list(fleet.nodes)
    files = {"script": work / "collector.sh", "ssh_config": work / "ssh_config", "ansible_inv": work / "hosts.ini",
             "ansible_cfg": work / "ansible.cfg", "floor_spec": work / "floor.json",
             "ansible_vars": work / "ansible-vars.json"}
    files["script"].write_text(script)
    lines = []
    for name in names:
        lines += [f"Host {name}", "  HostName 127.0.0.1", f"  Port {fleet.nodes[name].port}"]
    lines += ["Host *", f"  User {fleet.user}", f"  IdentityFile {fleet.client_key}", "  IdentitiesOnly yes",
              f"  UserKnownHostsFile {fleet.known_hosts}", "  GlobalKnownHostsFile /dev/null",
              "  StrictHostKeyChecking yes", "  BatchMode yes", "  ControlMaster no", "  ControlPath none",
              "  ConnectTimeout 30", "  LogLevel ERROR", ""]
    files["ssh_config"].write_text("\n".join(lines))
    files["ansible_inv"].write_text("[sim]\n" + "\n".join(names) + "\n")
    files["ansible_cfg"].write_text("[defaults]\nhost_key_checking = True\n")
    # the raw module's free-form argument is split like a shell line and rejects the script's unbalanced
    # quotes (heredoc body); as a variable it reaches ssh's command line unchanged
    files["ansible_vars"].write_text(json.dumps({"collector_script": script}))
    files["floor_spec"].write_text(json.dumps({
        "script": str(files["script"]), "client_key": str(fleet.client_key), "known_hosts": str(fleet.known_hosts),
        "user": fleet.user, "forks": forks, "ports": [fleet.nodes[n].port for n in names]}))
    return files


def tool_argv(tool: str, fleet, files: dict[str, Path], work: Path, inv: Path, forks: int, venv: Path,
              script: str) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "PDSH_"))}
    names = list(fleet.nodes)
    if tool == "preflight":
        return ([sys.executable, "-m", "preflight", "run", "-i", str(inv), "--headless", "--json",
                 str(work / "preflight.json"), "-q", "--forks", str(forks)], env)
    if tool == "pdsh":
        env["PDSH_SSH_ARGS"] = f"-F {files['ssh_config']} -a -x %h"
        return (["pdsh", "-R", "ssh", "-f", str(forks), "-w", _hostlist(names), script], env)
    if tool == "ansible":
        env.update({
            "ANSIBLE_CONFIG": str(files["ansible_cfg"]), "ANSIBLE_HOME": str(work / "ansible-home"),
            "ANSIBLE_LOCAL_TEMP": str(work / "ansible-tmp"), "ANSIBLE_HOST_KEY_CHECKING": "True",
            # ssh_args replaces ansible's default "-C -o ControlMaster=auto -o ControlPersist=60s": a
            # fresh connection per node, as for the other tools (a persistent master would outlive
            # the run, carry its CPU out of the measured tree and make later rounds skip the handshake)
            "ANSIBLE_SSH_ARGS": f"-F {files['ssh_config']} -o ControlMaster=no -o ControlPath=none",
            "ANSIBLE_SSH_RETRIES": "0", "ANSIBLE_NOCOLOR": "1", "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_TIMEOUT": "30", "ANSIBLE_FORKS": str(forks),
            "PATH": f"{venv / 'bin'}:{env.get('PATH', '')}",
        })
        return ([str(venv / "bin" / "ansible"), "all", "-i", str(files["ansible_inv"]), "-m", "raw",
                 "-a", " {{ collector_script }}", "-e", f"@{files['ansible_vars']}", "-f", str(forks)], env)
    if tool == "floor":
        return ([str(venv / "bin" / "python"), str(Path(__file__).resolve()), "--floor-worker",
                 str(files["floor_spec"])], env)
    raise ValueError(tool)


def check_result(tool: str, n: int, res: dict, out: Path, work: Path) -> str:
    """'' when every node answered with a collector document, else why not."""
    text = out.read_text(errors="replace")
    err = Path(str(out) + ".err").read_text(errors="replace")
    if tool == "preflight":
        try:
            doc = json.loads((work / "preflight.json").read_text())
        except (OSError, ValueError) as exc:
            return f"no JSON report ({exc}); stderr: {err[-300:]}"
        bad = [f"{x['name']}: {x['outcome']}: {x['message'][:200]}" for x in doc["nodes"] if x["outcome"] != "ok"]
        if len(doc["nodes"]) != n or bad or res["rc"] != 0:
            return f"rc={res['rc']} nodes={len(doc['nodes'])} not ok: {bad[:3]} status={doc['summary']['status']}"
        return ""
    if tool == "pdsh":
        got = text.count(PY_END)
    elif tool == "ansible":
        got = text.count("| CHANGED | rc=0 >>")
    else:
        got = n if res["rc"] == 0 and f"{n} of {n} nodes answered" in text else 0
    if got != n or res["rc"] != 0:
        return f"rc={res['rc']} {got} of {n} nodes answered; stderr: {err[-400:]}"
    return ""


# --------------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------------
def machine() -> dict:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
    ssh_v = subprocess.run(["ssh", "-V"], capture_output=True, text=True).stderr.strip()
    pdsh_v = (subprocess.run(["pdsh", "-V"], capture_output=True, text=True).stdout.split("\n")[0]
              if shutil.which("pdsh") else "pdsh not installed")
    commit = subprocess.run(["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True,
                            text=True).stdout.strip()
    return {"commit": commit, "nproc": os.cpu_count(), "cpu_model": model, "ram_gib": round(mem_kib / 1024**2, 1),
            "kernel": platform.release(), "python": platform.python_version(), "openssh": ssh_v, "pdsh": pdsh_v}


def venv_versions(venv: Path) -> dict:
    code = "import asyncssh, ansible.release as r; print(asyncssh.__version__, r.__version__)"
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True).stdout.split()
    return {"asyncssh": out[0] if out else "?", "ansible_core": out[1] if len(out) > 1 else "?"}


def raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def bench_size(n: int, args: argparse.Namespace, tools: list[str]) -> dict:
    from preflight.collect.script import build_script, select_probes
    from preflight.sim.fleet import SimFleet

    script = build_script(select_probes(), ngpus=8, deadline_s=120, peers=())
    tmp = tempfile.mkdtemp(prefix=f"preflight-cmp-{n}-")
    try:
        work = Path(tmp)
        t0 = time.monotonic()
        fleet = SimFleet(work / "fleet", [(f"node-{i:04d}", "h100-healthy") for i in range(1, n + 1)])
        fleet.start()
        try:
            print(f"# N={n}: fleet of {n} sshd up in {time.monotonic() - t0:.1f} s", file=sys.stderr, flush=True)
            inv = fleet.write_inventory(work / "inventory.yaml", thresholds=fleet.sandbox_thresholds())
            files = setup_fleet_files(fleet, work, script, args.forks)
            runs: dict[str, list[dict]] = {t: [] for t in tools}
            for rnd in range(args.repeat):
                for tool in tools:
                    argv, env = tool_argv(tool, fleet, files, work, inv, args.forks, args.venv, script)
                    out = work / f"{tool}.out"
                    res = measure(argv, env, out, args.tool_timeout, REPO)
                    why = check_result(tool, n, res, out, work)
                    res["error"] = why
                    runs[tool].append(res)
                    print(f"  N={n} round {rnd + 1} {tool:9s} wall={res['wall_s']:6.2f}s cpu={res['cpu_s']:6.2f}s "
                          f"tree={res['peak_tree_mib']:6.0f}MiB proc={res['max_proc_mib']:5.0f}MiB "
                          f"machine={res['machine_busy_s']:6.1f}s{'  ERROR: ' + why if why else ''}",
                          file=sys.stderr, flush=True)
        finally:
            fleet.stop()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    return {"n": n, "runs": runs}


def summarize(result: dict) -> dict[str, dict]:
    out = {}
    for tool, runs in result["runs"].items():
        good = [r for r in runs if not r["error"]]
        if not good:
            out[tool] = {"ok": 0, "runs": len(runs)}
            continue
        med = {k: statistics.median(r[k] for r in good)
               for k in ("wall_s", "cpu_s", "peak_tree_mib", "max_proc_mib", "machine_busy_s")}
        med.update(ok=len(good), runs=len(runs), wall_min=min(r["wall_s"] for r in good),
                   wall_max=max(r["wall_s"] for r in good))
        out[tool] = med
    return out


def markdown(results: list[dict], forks: int) -> str:
    rows = ["| N | tool | ok runs | wall (median) | wall min–max | controller CPU | CPU/node | peak RSS (tree) | largest process | "
            "wall ratio pf/tool | CPU ratio pf/tool |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for res in results:
        n = res["n"]
        s = summarize(res)
        pf = s.get("preflight", {})
        for tool, m in s.items():
            if not m.get("ok"):
                rows.append(f"| {n} | {tool} | 0/{m['runs']} | failed | | | | | | | |")
                continue
            ratio = cratio = "—"
            if tool != "preflight" and pf.get("ok"):
                ratio = f"{pf['wall_s'] / m['wall_s']:.2f}×"
                cratio = f"{pf['cpu_s'] / m['cpu_s']:.2f}×"
            rows.append(f"| {n} | {tool} | {m['ok']}/{m['runs']} | {m['wall_s']:.2f} s | {m['wall_min']:.2f}–{m['wall_max']:.2f} s | "
                        f"{m['cpu_s']:.2f} s | {1000 * m['cpu_s'] / n:.1f} ms | {m['peak_tree_mib']:.0f} MiB | "
                        f"{m['max_proc_mib']:.0f} MiB | {ratio} | {cratio} |")
    # marginal controller CPU per extra node between consecutive sizes
    marg = ["", "Controller CPU per extra node (slope between consecutive N, startup cost excluded):", "",
            "| tool | " + " | ".join(f"{a['n']}→{b['n']}" for a, b in zip(results, results[1:])) + " |",
            "|---|" + "---:|" * max(0, len(results) - 1)]
    for tool in TOOLS:
        cells = []
        for a, b in zip(results, results[1:]):
            sa, sb = summarize(a).get(tool, {}), summarize(b).get(tool, {})
            if sa.get("ok") and sb.get("ok"):
                cells.append(f"{1000 * (sb['cpu_s'] - sa['cpu_s']) / (b['n'] - a['n']):.1f} ms")
            else:
                cells.append("—")
        if any(c != "—" for c in cells):
            marg.append(f"| {tool} | " + " | ".join(cells) + " |")
    return "\n".join(rows + (marg if len(results) > 1 else []))


# --------------------------------------------------------------------------------------------
# profile: cProfile of preflight's controller, every thread (workers and paramiko transports)
# --------------------------------------------------------------------------------------------
# (label, file suffix, function name): cumulative CPU of these frames, summed over threads
PROFILE_GROUPS = (
    ("worker threads: collect_ssh (per node, all but the transport thread)", "preflight/transport/fanout.py",
     "collect_ssh"),
    ("  of which known_hosts parsing (paramiko HostKeys.load, per connection)", "paramiko/hostkeys.py", "load"),
    ("  of which fabric Connection + Config construction", "fabric/connection.py", "__init__"),
    ("  of which SSHClient.connect (handshake wait, host key check, auth)", "paramiko/client.py", "connect"),
    ("    of which client auth (private key file load, ed25519 sign)", "paramiko/client.py", "_auth"),
    ("  of which draining the channel (_read_channel)", "preflight/transport/fanout.py", "_read_channel"),
    ("  of which decode_output (JSON of the collector document)", "preflight/collect/script.py", "decode_output"),
    ("SSH transport threads (paramiko Transport.run)", "paramiko/transport.py", "run"),
    ("  of which key exchange (curve25519)", "paramiko/kex_curve25519.py", "parse_next"),
    ("  of which reading packets (decrypt, MAC)", "paramiko/packet.py", "read_message"),
    ("judge (parse every probe, run every check)", "preflight/engine.py", "judge"),
    ("  of which parse/common.py is_probably_text", "preflight/parse/common.py", "is_probably_text"),
    ("JSON report (report_dict + dumps)", "preflight/report/json_report.py", "dumps"),
)


def profile(n: int, forks: int, top: int) -> None:
    """Run `preflight run` in-process under cProfile (thread CPU time), every thread profiled."""
    import cProfile
    import io
    import pstats

    import paramiko

    from preflight.cli import main as preflight_main
    from preflight.sim.fleet import SimFleet

    profiles: list[cProfile.Profile] = []
    lock = threading.Lock()

    def wrap(orig):
        def profiled_run(self: threading.Thread) -> None:
            p = cProfile.Profile(time.thread_time)  # CPU time of this thread, not time spent blocked
            try:
                p.runcall(orig, self)
            finally:
                with lock:
                    profiles.append(p)
        return profiled_run

    orig_thread, orig_transport = threading.Thread.run, paramiko.Transport.run
    with tempfile.TemporaryDirectory(prefix="preflight-prof-") as tmp:
        fleet = SimFleet(Path(tmp), [(f"node-{i:04d}", "h100-healthy") for i in range(1, n + 1)])
        with fleet:
            inv = fleet.write_inventory(Path(tmp) / "inv.yaml", thresholds=fleet.sandbox_thresholds())
            threading.Thread.run = wrap(orig_thread)  # type: ignore[method-assign]
            paramiko.Transport.run = wrap(orig_transport)  # type: ignore[method-assign]
            main_prof = cProfile.Profile(time.thread_time)
            c0, t0 = time.process_time(), time.monotonic()
            try:
                rc = main_prof.runcall(preflight_main, ["run", "-i", str(inv), "--headless", "--json",
                                                        str(Path(tmp) / "out.json"), "-q", "--forks", str(forks)])
            finally:
                threading.Thread.run = orig_thread  # type: ignore[method-assign]
                paramiko.Transport.run = orig_transport  # type: ignore[method-assign]
            wall = time.monotonic() - t0
            for t in threading.enumerate():  # pool workers and transports end after the pool shut down
                if t is not threading.current_thread():
                    t.join(timeout=10)
            cpu = time.process_time() - c0
            doc = json.loads((Path(tmp) / "out.json").read_text())
            outcomes = sorted({x["outcome"] for x in doc["nodes"]})
    stats = pstats.Stats(main_prof)
    for p in profiles:
        stats.add(p)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(f"# profile: preflight run, N={n}, --forks {forks}, rc={rc}, outcomes {outcomes}: {wall:.1f} s wall, "
          f"{cpu:.1f} s process CPU under cProfile ({1000 * cpu / n:.1f} ms/node; cProfile inflates this "
          f"2-4x, read the shares); {len(profiles)} threads profiled")
    print(f"\n{'share':>6} {'CPU s':>7}  where (cumulative CPU, all threads)")
    for label, suffix, func in PROFILE_GROUPS:
        cum = sum(v[3] for (f, _l, name), v in stats.stats.items()  # type: ignore[attr-defined]
                  if f.endswith(suffix) and name == func)
        print(f"{100 * cum / total:5.1f}% {cum:7.2f}  {label}")
    buf = io.StringIO()
    stats.stream = buf  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    print(buf.getvalue())


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--floor-worker":
        return floor_worker(sys.argv[2])
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("sizes", nargs="*", type=int, default=[16, 64, 128, 256])
    ap.add_argument("--repeat", type=int, default=3, help="runs per tool and size (medians reported; default 3)")
    ap.add_argument("--forks", type=int, default=32, help="fan-out width for every tool (default 32)")
    ap.add_argument("--venv", type=Path, default=Path(os.environ.get("BENCH_VENV", "/tmp/benchvenv")),
                    help="venv with bench/requirements.txt (asyncssh, ansible-core); default /tmp/benchvenv")
    ap.add_argument("--tools", default=",".join(TOOLS), help="comma-separated subset of " + ",".join(TOOLS))
    ap.add_argument("--tool-timeout", type=float, default=600.0)
    ap.add_argument("--out", type=Path, help="write every run's numbers as JSON here")
    ap.add_argument("--profile", action="store_true", help="cProfile preflight's controller at the first size instead")
    ap.add_argument("--keep", action="store_true", help="keep each size's work folder (tool outputs) for a look")
    ap.add_argument("--top", type=int, default=35)
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    raise_nofile()
    if args.profile:
        profile(args.sizes[0], args.forks, args.top)
        return 0
    tools = [t for t in args.tools.split(",") if t]
    missing = [t for t in tools if t not in TOOLS]
    if missing:
        ap.error(f"unknown tools: {missing}")
    if "pdsh" in tools and not shutil.which("pdsh"):
        ap.error("pdsh not found (apt-get install pdsh)")
    if {"ansible", "floor"} & set(tools) and not (args.venv / "bin" / "python").exists():
        ap.error(f"no bench venv at {args.venv}: python -m venv {args.venv} && "
                 f"{args.venv}/bin/pip install -r bench/requirements.txt")
    info = {**machine(), **venv_versions(args.venv), "forks": args.forks, "repeat": args.repeat,
            "date": time.strftime("%Y-%m-%d")}
    print(f"# machine: {json.dumps(info)}", file=sys.stderr, flush=True)
    results = []
    for n in args.sizes:
        results.append(bench_size(n, args, tools))
        if args.out:  # after every size, so a long run leaves what it measured
            args.out.write_text(json.dumps({"machine": info, "results": results}, indent=1))
        print(markdown(results[-1:], args.forks), file=sys.stderr, flush=True)
    print(f"Machine: {info['nproc']} CPUs ({info['cpu_model']}), {info['ram_gib']} GiB RAM, Linux {info['kernel']}, "
          f"Python {info['python']}, {info['openssh']}, {info['pdsh']}, asyncssh {info['asyncssh']}, "
          f"ansible-core {info['ansible_core']}; --forks {args.forks}, {args.repeat} runs each, {info['date']}, "
          f"preflight at {info['commit']}.\n")
    print(markdown(results, args.forks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
