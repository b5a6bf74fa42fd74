"""Node-side collector: gathers raw outputs and prints one framed JSON document.

This file is sent as-is to each node and run by `python3 -`; it must import only the
standard library and nothing from preflight (a test enforces it). It never judges: it runs
the probes the controller asks for, each under its own timeout, and records stdout, stderr,
exit code, timing, and why a probe could not run ("absent", "timeout", "error: ...").
"""

import glob
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

COLLECTOR_VERSION = 1
BEGIN = "@@PREFLIGHT-BEGIN@@"
END = "@@PREFLIGHT-END@@"
MAX_OUTPUT = 4 * 1024 * 1024


def _host_path(path):
    root = os.environ.get("PREFLIGHT_HOST_ROOT", "")
    if root and path.startswith("/"):
        return os.path.join(root, path.lstrip("/"))
    return path


def _cap(text):
    if len(text) > MAX_OUTPUT:
        return text[:MAX_OUTPUT] + "\n[preflight: output truncated at %d bytes]\n" % MAX_OUTPUT
    return text


def _filter(text, grep, tail_lines):
    lines = text.splitlines()
    if grep:
        rx = re.compile(grep)
        lines = [ln for ln in lines if rx.search(ln)]
    if tail_lines and len(lines) > tail_lines:
        lines = lines[-tail_lines:]
    return "\n".join(lines) + ("\n" if lines else "")


# Process groups still running (killed at the collector's deadline, so no probe outlives the collector) and
# programs that already timed out here (a wedged driver hangs every nvidia-smi: the next ones are not started,
# so hung processes do not pile up on the node). Types here are comments, never annotations: this file runs on
# whatever python3 a node has.
_LIVE = {}  # type: dict[int, subprocess.Popen[bytes]]
_HUNG = set()  # type: set[str]
_LIVE_LOCK = threading.Lock()


def _kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def kill_live_groups():
    """SIGKILL every probe's process group still running (the collector is about to exit)."""
    with _LIVE_LOCK:
        pids = list(_LIVE)
    for pid in pids:
        _kill_group(pid)


def _run_argv(argv, timeout_s):
    """Run argv without a shell in its own session, killing the whole group on timeout."""
    start = time.monotonic()
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    except FileNotFoundError:
        return {"rc": None, "stdout": "", "stderr": "", "error": "absent", "duration_s": 0.0}
    except OSError as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: %s" % exc, "duration_s": 0.0}
    with _LIVE_LOCK:
        _LIVE[proc.pid] = proc
    note = None
    try:
        out, err = proc.communicate(timeout=timeout_s)
        error = None
    except subprocess.TimeoutExpired:
        _HUNG.add(os.path.basename(argv[0]))
        _kill_group(proc.pid)
        error = "timeout"
        try:
            out, err = proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:  # SIGKILL did not end it: stuck in the kernel (D state)
            out, err = b"", b""
            note = "did not exit 5 s after SIGKILL (a process stuck in the kernel, D state)"
    finally:
        with _LIVE_LOCK:
            _LIVE.pop(proc.pid, None)
    result = {
        "rc": proc.returncode if error is None else None,
        "stdout": _cap(out.decode("utf-8", "replace")),
        "stderr": _cap(err.decode("utf-8", "replace"))[-8192:],
        "error": error,
        "duration_s": round(time.monotonic() - start, 3),
    }
    if note:
        result["note"] = note
    return result


def probe_cmd(probe, config):
    argv = [a.replace("{ngpus}", str(config.get("ngpus") or 1)) for a in probe["argv"]]
    candidates = [argv] + [list(f) for f in probe.get("fallback", [])]
    result = None  # type: dict[str, object] | None
    for cand in candidates:
        if shutil.which(cand[0]) is None:
            continue
        if os.path.basename(cand[0]) in _HUNG:
            result = {"rc": None, "stdout": "", "stderr": "", "error": "timeout", "duration_s": 0.0,
                      "note": "not started: %s already timed out on this node" % os.path.basename(cand[0])}
        else:
            result = _run_argv(cand, probe["timeout_s"])
        result["argv"] = cand
        break
    if result is None:
        result = {"rc": None, "stdout": "", "stderr": "", "error": "absent", "duration_s": 0.0, "argv": argv}
    if result["stdout"] and (probe.get("grep") or probe.get("tail_lines")):
        result["stdout"] = _filter(result["stdout"], probe.get("grep"), probe.get("tail_lines"))
    return result


def probe_file(probe, config):
    path = _host_path(probe["path"])
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_OUTPUT)
        return {"rc": 0, "stdout": data.decode("utf-8", "replace"), "stderr": "", "error": None}
    except FileNotFoundError:
        return {"rc": None, "stdout": "", "stderr": "", "error": "absent"}
    except OSError as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: %s" % exc}


def probe_glob(probe, config):
    found = []
    for pattern in probe["path"].split(":"):
        root = _host_path("/")
        for match in sorted(glob.glob(_host_path(pattern))):
            found.append("/" + os.path.relpath(match, root) if root != "/" else match)
    if not found:
        return {"rc": 0, "stdout": "", "stderr": "", "error": "absent"}
    return {"rc": 0, "stdout": "\n".join(found) + "\n", "stderr": "", "error": None}


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def builtin_ib_sysfs(probe, config):
    """Port attributes from /sys/class/infiniband as JSON (what ibstat shows, without ibstat)."""
    base = _host_path(probe["path"])
    if not os.path.isdir(base):
        return {"rc": 0, "stdout": "", "stderr": "", "error": "absent"}
    devices = {}
    for dev in sorted(os.listdir(base)):
        ddir = os.path.join(base, dev)
        entry = {"fw_ver": _read(os.path.join(ddir, "fw_ver")), "ports": {}, "pcie": {}}
        for name in ("current_link_speed", "max_link_speed", "current_link_width", "max_link_width"):
            value = _read(os.path.join(ddir, "device", name))
            if value is not None:
                entry["pcie"][name] = value
        pdir = os.path.join(ddir, "ports")
        for port in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
            attrs = {}
            for name in ("state", "phys_state", "rate", "link_layer"):
                attrs[name] = _read(os.path.join(pdir, port, name))
            counters = {}
            cdir = os.path.join(pdir, port, "counters")
            for name in ("symbol_error", "link_downed", "port_rcv_errors", "link_error_recovery",
                         "port_xmit_discards", "excessive_buffer_overrun_errors"):
                value = _read(os.path.join(cdir, name))
                if value is not None:
                    counters[name] = value
            attrs["counters"] = counters
            entry["ports"][port] = attrs
        devices[dev] = entry
    return {"rc": 0, "stdout": json.dumps(devices, sort_keys=True), "stderr": "", "error": None}


def builtin_netifs(probe, config):
    """Network interfaces: MTU, operstate, address family type (what NCCL_SOCKET_IFNAME selects from)."""
    base = _host_path(probe["path"])
    if not os.path.isdir(base):
        return {"rc": 0, "stdout": "", "stderr": "", "error": "absent"}
    doc = {}
    for name in sorted(os.listdir(base)):
        doc[name] = {k: _read(os.path.join(base, name, k)) for k in ("mtu", "operstate", "type")}
    return {"rc": 0, "stdout": json.dumps(doc, sort_keys=True), "stderr": "", "error": None}


def builtin_resolve(probe, config):
    """Resolve the names the controller reached the other nodes by (as NCCL/torchrun peers will)."""
    peers = list(config.get("peers") or [])
    if not peers:
        return {"rc": 0, "stdout": "", "stderr": "", "error": "absent"}
    out = {}  # type: dict[str, object]

    def one(name):
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
            out[name] = sorted({i[4][0] for i in infos})
        except (OSError, UnicodeError) as exc:
            out[name] = {"error": str(exc)}

    threads = [threading.Thread(target=one, args=(n,), daemon=True) for n in peers[:512]]
    for t in threads:
        t.start()
    deadline = time.monotonic() + probe["timeout_s"]
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    for name in peers[:512]:
        out.setdefault(name, {"error": "timeout"})
    return {"rc": 0, "stdout": json.dumps(out, sort_keys=True), "stderr": "", "error": None}


def builtin_shm(probe, config):
    try:
        st = os.statvfs(_host_path(probe["path"]) if os.environ.get("PREFLIGHT_HOST_ROOT") else probe["path"])
    except OSError as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: %s" % exc}
    doc = {"size_bytes": st.f_frsize * st.f_blocks, "free_bytes": st.f_frsize * st.f_bavail}
    return {"rc": 0, "stdout": json.dumps(doc), "stderr": "", "error": None}


def builtin_memlock(probe, config):
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_MEMLOCK)
    except (ImportError, OSError, ValueError) as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: %s" % exc}
    inf = resource.RLIM_INFINITY
    doc = {"soft": None if soft == inf else soft, "hard": None if hard == inf else hard,
           "unlimited_soft": soft == inf, "unlimited_hard": hard == inf}
    return {"rc": 0, "stdout": json.dumps(doc), "stderr": "", "error": None}


def _nvml_call(fn, *args):
    try:
        return fn(*args)
    except Exception as exc:  # NVMLError subclasses; recorded as a value, judged centrally
        return {"nvml_error": type(exc).__name__, "message": str(exc)}


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    fields = getattr(value, "_fields_", None)
    if fields:
        return {f[0]: _jsonable(getattr(value, f[0], None)) for f in fields}
    return repr(value)


def _nvml_snapshot():
    import pynvml as nv  # optional on the node: absence is recorded, not fatal

    nv.nvmlInit()
    try:
        doc = {
            "driver_version": _jsonable(_nvml_call(nv.nvmlSystemGetDriverVersion)),
            "cuda_driver_version": _jsonable(_nvml_call(nv.nvmlSystemGetCudaDriverVersion)),
            "nvml_version": _jsonable(_nvml_call(nv.nvmlSystemGetNVMLVersion)),
            "gpus": [],
        }
        count = nv.nvmlDeviceGetCount()
        for i in range(count):
            h = nv.nvmlDeviceGetHandleByIndex(i)
            gpu = {"index": i}  # type: dict[str, object]
            calls = {
                "name": (nv.nvmlDeviceGetName,),
                "uuid": (nv.nvmlDeviceGetUUID,),
                "serial": (nv.nvmlDeviceGetSerial,),
                "pci": (nv.nvmlDeviceGetPciInfo,),
                "memory": (nv.nvmlDeviceGetMemoryInfo,),
                "persistence_mode": (nv.nvmlDeviceGetPersistenceMode,),
                "temperature_c": (nv.nvmlDeviceGetTemperature, 0),
                "power_mw": (nv.nvmlDeviceGetPowerUsage,),
                "pcie_gen_current": (nv.nvmlDeviceGetCurrPcieLinkGeneration,),
                "pcie_gen_max": (nv.nvmlDeviceGetMaxPcieLinkGeneration,),
                "pcie_width_current": (nv.nvmlDeviceGetCurrPcieLinkWidth,),
                "pcie_width_max": (nv.nvmlDeviceGetMaxPcieLinkWidth,),
                "throttle_reasons": (nv.nvmlDeviceGetCurrentClocksThrottleReasons,),
                "ecc_mode": (nv.nvmlDeviceGetEccMode,),
                "mig_mode": (nv.nvmlDeviceGetMigMode,),
                "remapped_rows": (nv.nvmlDeviceGetRemappedRows,),
                "compute_processes": (nv.nvmlDeviceGetComputeRunningProcesses,),
                "vbios_version": (nv.nvmlDeviceGetVbiosVersion,),
            }
            for key, call in calls.items():
                gpu[key] = _jsonable(_nvml_call(call[0], h, *call[1:]))
            gpu["ecc_uncorrected_volatile"] = _jsonable(_nvml_call(
                nv.nvmlDeviceGetTotalEccErrors, h, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_VOLATILE_ECC))
            gpu["ecc_uncorrected_aggregate"] = _jsonable(_nvml_call(
                nv.nvmlDeviceGetTotalEccErrors, h, nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_AGGREGATE_ECC))
            links = []
            for link in range(getattr(nv, "NVML_NVLINK_MAX_LINKS", 18)):
                state = _nvml_call(nv.nvmlDeviceGetNvLinkState, h, link)
                if isinstance(state, dict) and state.get("nvml_error") in ("NVMLError_InvalidArgument", "NVMLError_NotSupported"):
                    if link == 0:
                        links.append({"link": link, "state": _jsonable(state)})
                    break
                links.append({"link": link, "state": _jsonable(state)})
            gpu["nvlink"] = links
            doc["gpus"].append(gpu)
        return doc
    finally:
        try:
            nv.nvmlShutdown()
        except Exception:
            pass


def builtin_nvml(probe, config):
    box = {}

    def target():
        try:
            box["doc"] = _nvml_snapshot()
        except ImportError as exc:
            box["error"] = "absent"
            box["stderr"] = str(exc)
        except Exception as exc:  # NVML init failure is a fact (driver not loaded, mismatch...)
            box["doc"] = {"nvml_error": type(exc).__name__, "message": str(exc)}

    start = time.monotonic()
    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(probe["timeout_s"])
    duration = round(time.monotonic() - start, 3)
    if thread.is_alive():
        return {"rc": None, "stdout": "", "stderr": "", "error": "timeout", "duration_s": duration}
    if "error" in box:
        return {"rc": None, "stdout": "", "stderr": box.get("stderr", ""), "error": box["error"], "duration_s": duration}
    return {"rc": 0, "stdout": json.dumps(box["doc"], sort_keys=True), "stderr": "", "error": None, "duration_s": duration}


# --- on-call: the job's processes and whether the fabric moves (preflight hang) ---------------
JOB_ENV_KEYS = ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_RANK", "NODE_RANK", "MASTER_ADDR",
                "MASTER_PORT", "CUDA_VISIBLE_DEVICES", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_JOB_ID",
                "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "TORCHELASTIC_RUN_ID",
                "HOME", "XDG_CACHE_HOME")  # the last two: where a newer PyTorch writes its flight-recorder dump
JOB_ENV_PREFIXES = ("NCCL_", "TORCH_NCCL_", "TORCH_DISTRIBUTED_", "TORCH_FR_")
SECRETISH = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|_KEY$|APIKEY", re.I)


def _proc_env(pdir):
    """Only the rank/NCCL variables, by an allow-list: a process environment holds secrets."""
    try:
        with open(os.path.join(pdir, "environ"), "rb") as fh:
            raw = fh.read(1024 * 1024)
    except OSError:
        return None
    env = {}
    for item in raw.split(b"\0"):
        key, _, value = item.decode("utf-8", "replace").partition("=")
        if (key in JOB_ENV_KEYS or key.startswith(JOB_ENV_PREFIXES)) and not SECRETISH.search(key):
            env[key] = value[:512]
    return env


def _proc_state(pdir):
    status = _read(os.path.join(pdir, "status")) or ""
    m = re.search(r"^State:\s*(.+)$", status, re.M)
    return m.group(1).strip() if m else None


def _boot_time(proc_root):
    for line in (_read(os.path.join(proc_root, "stat")) or _read("/proc/stat") or "").splitlines():
        if line.startswith("btime "):
            return int(line.split()[1])
    return None


def _proc_start_epoch(pdir, btime):
    if not btime:
        return None
    try:
        with open(os.path.join(pdir, "stat")) as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        return round(btime + int(fields[19]) / os.sysconf("SC_CLK_TCK"), 1)
    except (OSError, ValueError, IndexError):
        return None


def _proc_ids(pdir):
    """(uid, ppid) of a process from /proc/PID/status."""
    status = _read(os.path.join(pdir, "status")) or ""
    uid = re.search(r"^Uid:\s*(\d+)", status, re.M)
    ppid = re.search(r"^PPid:\s*(\d+)", status, re.M)
    return (int(uid.group(1)) if uid else None, int(ppid.group(1)) if ppid else None)


def _debug_file(env, hostname, pid, limit, owner, pdir):
    """NCCL_DEBUG_FILE with %h/%p expanded: the last `limit` bytes of what this rank wrote.

    The path comes from a process's environment, which its owner controls: only a regular file
    (no symlink) owned by that same user is read, so a job cannot make the collector (often root)
    copy /etc/shadow into a bundle. A relative path is the process's own (its cwd).
    """
    pattern = env.get("NCCL_DEBUG_FILE")
    if not pattern:
        return None
    path = pattern.replace("%h", hostname).replace("%p", str(pid))
    if not path.startswith("/"):
        try:
            path = os.path.join(os.readlink(os.path.join(pdir, "cwd")), path)
        except OSError as exc:
            return {"path": path, "error": "relative path and no readable cwd: %s" % exc}
    full = _host_path(path)
    try:
        fd = os.open(full, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        return {"path": path, "error": str(exc)}
    try:
        st = os.fstat(fd)
        import stat as _stat

        if not _stat.S_ISREG(st.st_mode):
            return {"path": path, "error": "not a regular file: not read"}
        if owner is None or st.st_uid != owner:
            return {"path": path, "error": "owned by uid %s, not by the process's uid %s: not read" % (st.st_uid, owner)}
        size = st.st_size
        os.lseek(fd, max(0, size - limit), os.SEEK_SET)
        data = b""
        while len(data) < limit:
            chunk = os.read(fd, limit - len(data))
            if not chunk:
                break
            data += chunk
        return {"path": path, "size": size, "tail": data.decode("utf-8", "replace")}
    except OSError as exc:
        return {"path": path, "error": str(exc)}
    finally:
        os.close(fd)


_ARG_SECRET = re.compile(r"(?i)(--?[\w.-]*(?:key|token|secret|passw(?:or)?d|passwd|credential|auth)[\w.-]*)(=|\s+)(\S+)")
_URL_PASSWORD = re.compile(r"(\w+://[^/\s:@]+:)[^@\s/]+@")


def redact_cmdline(cmd):
    """Command lines carry secrets too (--api-key X, --hf_token=X, scheme://user:pass@host): masked on the node."""
    cmd = _ARG_SECRET.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", cmd)
    return _URL_PASSWORD.sub(lambda m: m.group(1) + "[redacted]@", cmd)


def builtin_job_procs(probe, config):
    """Processes whose command line matches the job pattern: state, rank env, start time, py-spy stack, NCCL log tail."""
    job = config.get("job") or {}
    try:
        rx = re.compile(job.get("pattern") or r"python|torchrun|deepspeed|all_reduce_perf")
    except re.error as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: bad job pattern: %s" % exc}
    proc_root = _host_path("/proc")
    mine = {os.getpid(), os.getppid()}
    hostname = socket.gethostname()
    btime = _boot_time(proc_root)  # once, not per process
    pyspy = shutil.which("py-spy") if job.get("pyspy", True) else None
    found = []  # type: list[dict[str, object]]
    deadline = time.monotonic() + probe["timeout_s"] * 0.8
    try:
        entries = sorted((e for e in os.listdir(proc_root) if e.isdigit()), key=int)
    except OSError as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: %s" % exc}
    cap = int(job.get("max_procs", 256))
    truncated = False
    for entry in entries:
        pid = int(entry)
        if pid in mine:
            continue
        if len(found) >= cap:
            truncated = True
            break
        pdir = os.path.join(proc_root, entry)
        try:
            with open(os.path.join(pdir, "cmdline"), "rb") as fh:
                cmd = fh.read(8192).replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        if not cmd or cmd in ("python3 -", "python -") or not rx.search(cmd):
            continue
        uid, ppid = _proc_ids(pdir)
        env = _proc_env(pdir)
        rec = {"pid": pid, "ppid": ppid, "uid": uid, "cmdline": redact_cmdline(cmd[:1024]), "state": _proc_state(pdir),
               "env": env, "start_epoch": _proc_start_epoch(pdir, btime)}
        # py-spy only for ranks (a RANK-like variable), not every matching python process
        is_rank = bool(env) and any(k in env for k in ("RANK", "OMPI_COMM_WORLD_RANK", "SLURM_PROCID"))
        if pyspy and is_rank and time.monotonic() < deadline:
            res = _run_argv([pyspy, "dump", "--pid", str(pid)], min(15.0, max(1.0, deadline - time.monotonic())))
            out = "\n".join(ln for ln in res["stdout"].splitlines() if not ln.startswith("Process "))  # its argv again
            rec["pyspy"] = {"rc": res["rc"], "stdout": out[-65536:], "stderr": res["stderr"][-2048:],
                            "error": res.get("error")}
        dbg = _debug_file(env or {}, hostname, pid, int(job.get("debug_tail_bytes", 262144)), uid, pdir)
        if dbg:
            rec["nccl_debug_file"] = dbg
        found.append(rec)
    doc = {"hostname": hostname, "pattern": rx.pattern, "pyspy": bool(pyspy), "processes": found, "truncated": truncated}
    return {"rc": 0, "stdout": json.dumps(doc, sort_keys=True), "stderr": "", "error": None}


def _ib_counters():
    base = _host_path("/sys/class/infiniband")
    out = {}
    for dev in sorted(os.listdir(base)) if os.path.isdir(base) else []:
        pdir = os.path.join(base, dev, "ports")
        for port in sorted(os.listdir(pdir)) if os.path.isdir(pdir) else []:
            cdir = os.path.join(pdir, port, "counters")
            vals = {}
            for name in ("port_xmit_data", "port_rcv_data", "link_downed", "symbol_error", "port_rcv_errors"):
                v = _read(os.path.join(cdir, name))
                if v is not None and v.isdigit():
                    vals[name] = int(v)
            out["%s/%s" % (dev, port)] = vals
    return out


def builtin_ib_traffic(probe, config):
    """IB port counters read twice `interval_s` apart: is traffic flowing, did a link go down meanwhile?"""
    interval = float((config.get("job") or {}).get("ib_interval_s", 3.0))
    first = _ib_counters()
    if not first:
        return {"rc": 0, "stdout": "", "stderr": "", "error": "absent"}
    t0 = time.time()
    time.sleep(max(0.0, min(interval, probe["timeout_s"] / 2)))
    second = _ib_counters()
    doc = {"interval_s": round(time.time() - t0, 3), "first": first, "second": second}
    return {"rc": 0, "stdout": json.dumps(doc, sort_keys=True), "stderr": "", "error": None}


MLXLINK_PORT_S = 20.0  # one `mlxlink -m -c` (it reads the module EEPROM and PPCNT through the adapter's firmware)


def builtin_mlxlink(probe, config):
    """`mlxlink -d DEV -p PORT -m -c --json` for each port under /sys/class/infiniband: module temperature and its
    range, pre-/post-FEC BER, link-down and link-error-recovery counters. Ports one after another, each bounded,
    all of them within the probe's timeout; once mlxlink timed out it is not started again. An older MFT that does
    not answer --json with a JSON document is asked once more without it (the text layout). No mlxlink on the node
    is recorded as absent: a fact about the node, not about its links."""
    base = _host_path(probe["path"])
    if not os.path.isdir(base):
        return {"rc": 0, "stdout": json.dumps({"ports": {}, "no_ib": True}), "stderr": "", "error": None}
    tool = shutil.which("mlxlink")
    if tool is None:
        return {"rc": None, "stdout": "", "stderr": "", "error": "absent"}
    # within its own timeout and the collector's deadline, so the ports read so far come back with the others
    deadline = time.monotonic() + min(float(probe["timeout_s"]), float(config.get("deadline_s", 600))) * 0.9
    ports = {}
    for dev in sorted(os.listdir(base))[:64]:
        pdir = os.path.join(base, dev, "ports")
        for port in (sorted(os.listdir(pdir))[:8] if os.path.isdir(pdir) else []):
            key = "%s/%s" % (dev, port)
            left = deadline - time.monotonic()
            if "mlxlink" in _HUNG or left < 1.0:
                why = "mlxlink timed out on an earlier port" if "mlxlink" in _HUNG else "probe deadline reached"
                ports[key] = {"rc": None, "stdout": "", "stderr": "", "error": "not run", "note": why}
                continue
            argv = [tool, "-d", dev, "-p", port, "-m", "-c", "--json"]
            res = _run_argv(argv, min(MLXLINK_PORT_S, left))
            if res["error"] is None and not res["stdout"].lstrip().startswith("{") and deadline - time.monotonic() > 1.0:
                argv = argv[:-1]
                res = _run_argv(argv, min(MLXLINK_PORT_S, deadline - time.monotonic()))
            res["argv"] = ["mlxlink"] + argv[1:]
            ports[key] = res
    return {"rc": 0, "stdout": json.dumps({"ports": ports}, sort_keys=True), "stderr": "", "error": None}


def _ras_socket(host, port, timeout_s, deadline):
    """NCCL's RAS client protocol (src/ras/client.cc): 'CLIENT PROTOCOL 2' -> 'SERVER PROTOCOL n', 'TIMEOUT t' ->
    'OK', then 'STATUS' -> the text report until the server closes. Every read bounded by the deadline."""
    with socket.create_connection((host, port), timeout=min(5.0, timeout_s)) as sock:
        fh = sock.makefile("rwb")
        for line, want in ((b"CLIENT PROTOCOL 2\n", b"SERVER PROTOCOL"), (b"TIMEOUT %d\n" % int(timeout_s), b"OK")):
            fh.write(line)
            fh.flush()
            got = fh.readline(1024)
            if not got.upper().startswith(want):
                raise OSError("unexpected answer from the RAS service: %r" % got[:80])
        fh.write(b"STATUS\n")
        fh.flush()
        out = []
        size = 0
        while size < 4 * 1024 * 1024:
            sock.settimeout(max(0.5, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            out.append(chunk)
            size += len(chunk)
        return b"".join(out).decode("utf-8", "replace")


def builtin_ncclras(probe, config):
    """The job's NCCL RAS status (NCCL >= 2.24): the `ncclras` client where installed, else its protocol on the RAS
    client socket (NCCL_RAS_ADDR as the job sets it, default localhost:28028), both bounded by the probe timeout."""
    ras = (config.get("job") or {}).get("ras") or {}
    addr = str(ras.get("addr") or "localhost:28028")
    host, _, port_text = addr.rpartition(":")
    host = (host or "localhost").strip("[]")
    port = int(port_text) if port_text.isdigit() else 28028
    wait = max(1, int(ras.get("timeout_s", 5)))
    client = shutil.which("ncclras")
    if client:
        res = _run_argv([client, "-h", host, "-p", str(port), "-t", str(wait)], probe["timeout_s"])
        res["stderr"] = ("via ncclras %s:%d\n" % (host, port)) + (res.get("stderr") or "")[-4096:]
        return res
    deadline = time.monotonic() + probe["timeout_s"] * 0.9
    try:
        text = _ras_socket(host, port, wait, deadline)
    except (OSError, ValueError) as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: RAS service on %s:%d: %s" % (host, port, exc)}
    return {"rc": 0, "stdout": text, "stderr": "via RAS socket %s:%d" % (host, port), "error": None}


# -- on-call: PyTorch flight-recorder dumps on demand (preflight hang --dump-fr) ----------------------------
# PyTorch (torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp, struct DumpPipe): with TORCH_NCCL_DEBUG_INFO_PIPE_FILE
# set and the trace buffer on, the default process group's heartbeat-monitor thread mkfifo()s
# "<TORCH_NCCL_DEBUG_INFO_PIPE_FILE><global rank>.pipe", opens it O_RDONLY|O_NONBLOCK and, every poll, dumps the
# flight recorder when read() returns bytes. DebugInfoWriter (FlightRecorder.cpp) writes the pickle to
# "<TORCH_FR_DUMP_TEMP_FILE | TORCH_NCCL_DEBUG_INFO_TEMP_FILE><global rank>" (truncate, write, close: not atomic);
# the default prefix is /tmp/nccl_trace_rank_ (older) or ~/.cache/torch/comm_lib_trace_rank_ (newer).
FR_PIPE_ENV = "TORCH_NCCL_DEBUG_INFO_PIPE_FILE"
FR_STABLE_S = 0.5  # a dump whose size and mtime held this long is written


def _fr_rank_procs(job):
    """(pid, uid, env, pdir) of each rank (a RANK-like variable) among the job's processes, children of a rank
    (DataLoader workers inherit its environment and so its pipe) left out."""
    rx = re.compile(job.get("pattern") or r"python|torchrun|deepspeed|all_reduce_perf")
    proc_root = _host_path("/proc")
    mine = {os.getpid(), os.getppid()}
    procs = {}
    for entry in sorted((e for e in os.listdir(proc_root) if e.isdigit()), key=int)[:100000]:
        pdir = os.path.join(proc_root, entry)
        if int(entry) in mine:
            continue
        try:
            with open(os.path.join(pdir, "cmdline"), "rb") as fh:
                cmd = fh.read(8192).replace(b"\0", b" ").decode("utf-8", "replace").strip()
        except OSError:
            continue
        if not cmd or cmd in ("python3 -", "python -") or not rx.search(cmd):
            continue
        env = _proc_env(pdir) or {}
        rank = env.get("RANK", env.get("OMPI_COMM_WORLD_RANK", env.get("SLURM_PROCID")))
        if rank is None or not rank.strip().isdigit():
            continue
        uid, ppid = _proc_ids(pdir)
        procs[int(entry)] = (int(rank), uid, ppid, env, pdir)
    return [(pid, r, uid, env, pdir) for pid, (r, uid, ppid, env, pdir) in sorted(procs.items())
            if not (ppid in procs and procs[ppid][0] == r)]


def _fr_abs(path, pdir):
    """A path from a process's environment, made absolute against its cwd as the process sees it."""
    if path.startswith("/"):
        return path
    return os.path.join(os.readlink(os.path.join(pdir, "cwd")), path)


def _fr_dump_paths(env, rank, pdir):
    """Where this rank's DebugInfoWriter writes: the prefix its environment names, else both defaults."""
    prefix = env.get("TORCH_FR_DUMP_TEMP_FILE") or env.get("TORCH_NCCL_DEBUG_INFO_TEMP_FILE")
    if prefix:
        return [_fr_abs(prefix, pdir) + str(rank)]
    out = ["/tmp/nccl_trace_rank_%d" % rank]
    for base in (env.get("XDG_CACHE_HOME"), os.path.join(env["HOME"], ".cache") if env.get("HOME") else None):
        if base:
            out.append(os.path.join(base, "torch", "comm_lib_trace_rank_%d" % rank))
    return out


def _fr_stat(path):
    try:
        st = os.lstat(_host_path(path))
    except OSError:
        return None
    return (st.st_mode, st.st_uid, st.st_size, st.st_mtime_ns if hasattr(st, "st_mtime_ns") else st.st_mtime, st.st_ino)


def _fr_poke(pipe, uid):
    """Write one byte to the rank's FIFO without ever blocking: None when written, else why not (outcome, note)."""
    import errno
    import stat as _stat

    host = _host_path(pipe)
    try:
        st = os.lstat(host)
    except OSError as exc:
        return ("no_fifo", "%s: %s (the rank made no pipe: flight recorder off, its default process group not up, "
                           "or a PyTorch without it)" % (pipe, exc.strerror))
    if _stat.S_ISLNK(st.st_mode):
        return ("refused", "%s is a symlink: not followed" % pipe)
    if not _stat.S_ISFIFO(st.st_mode):
        return ("refused", "%s is not a FIFO: not written" % pipe)
    if uid is None or st.st_uid != uid:
        return ("refused", "%s is owned by uid %s, not by the process's uid %s: not written" % (pipe, st.st_uid, uid))
    try:
        fd = os.open(host, os.O_WRONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            return ("no_reader", "%s: no process has it open for reading (the rank's monitor thread is gone)" % pipe)
        return ("error", "%s: %s" % (pipe, exc))
    try:
        again = os.fstat(fd)  # the path could have been swapped between lstat and open
        if not _stat.S_ISFIFO(again.st_mode) or again.st_uid != uid:
            return ("refused", "%s changed under us: not written" % pipe)
        os.write(fd, b"1")
    except OSError as exc:
        if exc.errno == errno.EAGAIN:
            return None  # full of earlier unread triggers: the next read still dumps
        if exc.errno == errno.EPIPE:
            return ("no_reader", "%s: the reader closed it" % pipe)
        return ("error", "%s: %s" % (pipe, exc))
    finally:
        os.close(fd)
    return None


def _fr_read(path, uid, limit):
    """(record fields) of a written dump: a regular file owned by the rank's uid, at most `limit` bytes."""
    import base64
    import hashlib
    import stat as _stat

    try:
        fd = os.open(_host_path(path), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        return {"outcome": "error", "note": "%s: %s" % (path, exc)}
    try:
        st = os.fstat(fd)
        if not _stat.S_ISREG(st.st_mode):
            return {"outcome": "refused", "note": "%s is not a regular file: not read" % path}
        if uid is None or st.st_uid != uid:
            return {"outcome": "refused", "note": "%s is owned by uid %s, not by the process's uid %s: not read"
                                                  % (path, st.st_uid, uid)}
        if st.st_size > limit:
            return {"outcome": "too_big", "size": st.st_size, "note": "%s is %d bytes, over the %d-byte cap: not read"
                                                                      % (path, st.st_size, limit)}
        chunks, got = [], 0
        while got <= limit:
            chunk = os.read(fd, min(1 << 20, limit + 1 - got))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        data = b"".join(chunks)
        if len(data) > limit:
            return {"outcome": "too_big", "size": len(data), "note": "%s grew over the %d-byte cap: not read" % (path, limit)}
        return {"outcome": "collected", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                "data_b64": base64.b64encode(data).decode("ascii")}
    except OSError as exc:
        return {"outcome": "error", "note": "%s: %s" % (path, exc)}
    finally:
        os.close(fd)


def _fr_wait(pending, deadline, limit, node_cap, stable_s=FR_STABLE_S):
    """Poll every triggered rank's dump paths until each has a fresh dump that stopped growing, or the deadline.
    Each dump is read up to `limit` bytes, and all of this node's together up to `node_cap`."""
    import stat as _stat

    left = [node_cap]

    # id(rec) -> (the dump path seen changing, its stat then, since when it held still)
    stable = {}  # type: dict[int, tuple[str, tuple[int, int, int, int, int], float]]
    while pending and time.monotonic() < deadline:
        for rec, before, uid in list(pending):
            for path in rec["dump_paths"]:
                now = _fr_stat(path)
                if now is None or not _stat.S_ISREG(now[0]) or now[2] == 0 or now == before.get(path):
                    continue
                seen = stable.get(id(rec))
                if seen is None or seen[0] != path or seen[1] != now:
                    stable[id(rec)] = (path, now, time.monotonic())
                elif time.monotonic() - seen[2] >= stable_s:
                    rec["dump_path"] = path
                    rec.update(_fr_read(path, uid, min(limit, left[0])))
                    if rec.get("outcome") == "collected":
                        left[0] -= rec["size"]
                    elif rec.get("outcome") == "too_big" and left[0] < limit:
                        rec["note"] += " (what is left of the node's %d-byte cap for all its dumps)" % node_cap
                    pending.remove((rec, before, uid))
                break
        time.sleep(0.1)
    for rec, before, _uid in pending:
        seen = stable.get(id(rec))
        if seen is not None:
            rec.update(outcome="timeout", dump_path=seen[0], note="%s was still being written when the wait ended" % seen[0])
            continue
        old = [p for p in rec["dump_paths"] if before.get(p)]
        rec.update(outcome="dump_absent", note="no fresh dump at %s within the wait%s; %s" % (
            " or ".join(rec["dump_paths"]), " (an older one is there, not read)" if old else "", rec["poll_hint"]))


def _fr_poll_hint(env):
    """How often the rank reads its pipe (HeartbeatMonitor::runLoop): every TORCH_NCCL_COORD_CHECK_MILSEC with
    dump-on-timeout on, else every TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC."""
    dot = (env.get("TORCH_NCCL_DUMP_ON_TIMEOUT") or "").strip().lower()
    if dot in ("1", "true", "yes", "on"):
        return "it reads its pipe every %s ms (TORCH_NCCL_COORD_CHECK_MILSEC)" % (env.get("TORCH_NCCL_COORD_CHECK_MILSEC") or "1000")
    return ("with TORCH_NCCL_DUMP_ON_TIMEOUT %s it may read its pipe only every TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC (%s s)"
            % ("off" if dot else "unset (its default depends on the PyTorch version)",
               env.get("TORCH_NCCL_HEARTBEAT_TIMEOUT_SEC") or "480"))


def builtin_fr_dump(probe, config):
    """Trigger each rank's flight-recorder dump through its debug-info pipe, wait (bounded) and read the dumps."""
    job = config.get("job") or {}
    fr = job.get("dump_fr") or {}
    wait_s = max(0.0, min(float(fr.get("wait_s", 15.0)), probe["timeout_s"] * 0.8 - 2.0))
    limit = int(fr.get("max_bytes", 16 * 1024 * 1024))
    node_cap = int(fr.get("node_max_bytes", 64 * 1024 * 1024))
    try:
        procs = _fr_rank_procs(job)
    except (OSError, re.error) as exc:
        return {"rc": None, "stdout": "", "stderr": "", "error": "error: %s" % exc}
    records, pending, seen_pipes = [], [], set()
    for pid, rank, uid, env, pdir in procs[:512]:
        rec = {"pid": pid, "rank": rank, "uid": uid}
        records.append(rec)
        stem = env.get(FR_PIPE_ENV)
        if not stem:
            rec.update(outcome="no_pipe_named", note="%s is not in the rank's environment" % FR_PIPE_ENV)
            continue
        try:
            pipe = _fr_abs(stem, pdir) + "%d.pipe" % rank
            rec["dump_paths"] = _fr_dump_paths(env, rank, pdir)
        except OSError as exc:
            rec.update(outcome="error", note="relative path and no readable cwd: %s" % exc)
            continue
        rec["pipe"] = pipe
        if pipe in seen_pipes:
            rec.update(outcome="shared_pipe", note="another process of rank %d already triggered %s" % (rank, pipe))
            continue
        seen_pipes.add(pipe)
        before = {p: _fr_stat(p) for p in rec["dump_paths"]}
        why = _fr_poke(pipe, uid)
        if why:
            rec.update(outcome=why[0], note=why[1])
            continue
        rec["poll_hint"] = _fr_poll_hint(env)
        pending.append((rec, before, uid))
    _fr_wait(pending, time.monotonic() + wait_s, limit, node_cap, float(fr.get("stable_s", FR_STABLE_S)))
    doc = {"wait_s": wait_s, "max_bytes": limit, "node_max_bytes": node_cap, "ranks": records}
    return {"rc": 0, "stdout": json.dumps(doc, sort_keys=True), "stderr": "", "error": None}


# -- active tests (issue 13): they take the GPUs or the HCAs, so they are gated and budgeted -------------------

def _busy_gpus():
    """Compute processes on the GPUs as "pid name" strings; None when that cannot be known (no answer)."""
    if "nvidia-smi" in _HUNG or shutil.which("nvidia-smi") is None:
        return None
    res = _run_argv(["nvidia-smi", "--query-compute-apps=pid,process_name", "--format=csv,noheader"], 10.0)
    if res["error"] or res["rc"] != 0:
        return None
    return [" ".join(p.strip() for p in line.split(",")) for line in res["stdout"].splitlines() if line.strip()]


class ActiveGate(object):
    """Decides, before each active probe, whether it may start: the GPUs are free (or --force) and it fits the
    node's budget for active tests. A probe that may not start is recorded as "not run" with the reason, which
    the controller reads as a test not run, never as a pass."""

    def __init__(self, config):
        active = config.get("active") or {}
        self.budget_s = float(active.get("budget_s") or 0) or None
        self.force = bool(active.get("force"))
        self.used_s = 0.0
        self._busy = "unknown"  # type: list[str] | str | None

    def refuse(self, probe):
        """Why this test may not start (None: it may). Busy GPUs stop tests that take them; the budget
        stops any level test (the serial probes) that would not fit what is left of it."""
        if probe.get("active") and not self.force:
            if self._busy == "unknown":
                self._busy = _busy_gpus()
            if self._busy is None:
                return "the GPUs' compute processes could not be listed (nvidia-smi did not answer); --force runs anyway"
            if self._busy:
                return "GPUs busy: %s (--force runs anyway)" % ", ".join(self._busy[:8])
        if self.budget_s is not None:
            left = self.budget_s - self.used_s
            need = float(probe.get("est_s") or probe["timeout_s"])
            if need > left:
                return "would not fit the budget: needs about %ds, %ds of %ds left" % (need, max(0, left), self.budget_s)
        return None

    def timeout(self, probe):
        """The probe's own timeout, capped by what is left of the budget (a test never runs past it)."""
        if self.budget_s is None:
            return probe["timeout_s"]
        return max(1.0, min(probe["timeout_s"], self.budget_s - self.used_s))

    def spent(self, probe, seconds):
        self.used_s += seconds


def _hcas():
    root = _host_path("/sys/class/infiniband")
    try:
        return sorted(os.listdir(root))
    except OSError:
        return []


def builtin_ib_loopback(probe, config):
    """`ib_write_bw` server and client on this node per HCA (loopback through the HCA), 8 MiB messages as
    Azure's aznhc runs it, with --use_cuda=0 when GPUDirect RDMA is loaded: both outputs kept verbatim per HCA
    (units as printed). The server is killed by its process group."""
    hcas = _hcas()
    if not hcas:
        return {"rc": None, "stdout": "", "stderr": "", "error": "absent", "note": "no /sys/class/infiniband"}
    if shutil.which("ib_write_bw") is None:
        return {"rc": None, "stdout": "", "stderr": "", "error": "absent", "argv": ["ib_write_bw"]}
    gdr = os.path.isdir(_host_path("/sys/module/nvidia_peermem"))
    deadline = time.monotonic() + probe["timeout_s"]
    per = {}  # type: dict[str, dict[str, object]]
    for hca in hcas[:16]:
        left = deadline - time.monotonic()
        if left < 2:
            per[hca] = {"error": "timeout", "server": "", "client": ""}
            continue
        port = str(18515 + len(per))
        base = ["ib_write_bw", "-d", hca, "-p", port, "-F", "-s", str(probe.get("size") or 8388608),
                "-n", "5000"] + (["--use_cuda=0"] if gdr else [])
        server = subprocess.Popen(base, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True)
        with _LIVE_LOCK:
            _LIVE[server.pid] = server
        try:
            time.sleep(min(1.0, left / 4))
            client = _run_argv(base + ["localhost"], max(1.0, deadline - time.monotonic()))
            try:
                sout, _ = server.communicate(timeout=max(0.5, min(5.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                _kill_group(server.pid)
                try:
                    sout, _ = server.communicate(timeout=5)
                except subprocess.TimeoutExpired:  # stuck in the kernel: give up on its output
                    sout = b""
        finally:
            _kill_group(server.pid)
            with _LIVE_LOCK:
                _LIVE.pop(server.pid, None)
        per[hca] = {"error": client["error"], "rc": client["rc"], "client": client["stdout"] + client["stderr"],
                    "server": _cap(sout.decode("utf-8", "replace")), "gpudirect": gdr}
    return {"rc": 0, "stdout": json.dumps(per, sort_keys=True), "stderr": "", "error": None}


BUILTINS = {"ib_sysfs": builtin_ib_sysfs, "netifs": builtin_netifs, "resolve": builtin_resolve, "shm": builtin_shm, "memlock": builtin_memlock, "nvml": builtin_nvml,
            "job_procs": builtin_job_procs, "ib_traffic": builtin_ib_traffic, "ib_loopback": builtin_ib_loopback,
            "ncclras": builtin_ncclras, "fr_dump": builtin_fr_dump, "mlxlink": builtin_mlxlink}
KINDS = {"cmd": probe_cmd, "file": probe_file, "glob": probe_glob}


def run_probe(probe, config):
    start = time.monotonic()
    try:
        if probe["kind"] == "builtin":
            result = BUILTINS[probe["id"]](probe, config)
        else:
            result = KINDS[probe["kind"]](probe, config)
    except Exception as exc:  # a collector bug must not lose the other probes
        result = {"rc": None, "stdout": "", "stderr": "", "error": "collector: %s: %s" % (type(exc).__name__, exc)}
    result.setdefault("duration_s", round(time.monotonic() - start, 3))
    result["kind"] = probe["kind"]
    return result


def main(config):
    started = time.time()
    t0 = time.monotonic()
    probes = config["probes"]
    results = {}
    lock = threading.Lock()
    pending = [p for p in probes if not p.get("serial")]
    serial = [p for p in probes if p.get("serial")]

    def worker():
        while True:
            with lock:
                if not pending:
                    return
                probe = pending.pop(0)
            res = run_probe(probe, config)
            with lock:
                results[probe["id"]] = res

    workers = [threading.Thread(target=worker, daemon=True) for _ in range(min(4, len(probes)) or 1)]
    for w in workers:
        w.start()
    deadline = t0 + float(config.get("deadline_s", 600))
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    gate = ActiveGate(config)
    for probe in serial:  # benchmarks and active tests run alone so the other probes do not disturb them
        if time.monotonic() >= deadline:
            break
        why = gate.refuse(probe)
        if why:
            results[probe["id"]] = {"rc": None, "stdout": "", "stderr": "", "error": "not run", "note": why,
                                    "kind": probe["kind"], "duration_s": 0.0}
            continue
        probe = dict(probe, timeout_s=min(gate.timeout(probe), max(1.0, deadline - time.monotonic())))
        res = run_probe(probe, config)
        gate.spent(probe, float(res.get("duration_s") or 0.0))
        results[probe["id"]] = res
    kill_live_groups()  # a probe still running at the deadline must not outlive the collector
    for probe in probes:
        results.setdefault(probe["id"], {"rc": None, "stdout": "", "stderr": "", "error": "timeout",
                                         "kind": probe["kind"], "duration_s": None})
    doc = {
        "collector_version": COLLECTOR_VERSION,
        "mode": "python",
        "python": sys.version.split()[0],
        "hostname": socket.gethostname(),
        "started": started,
        "duration_s": round(time.monotonic() - t0, 3),
        "probes": results,
    }
    out = sys.stdout
    out.write(BEGIN + "\n")
    out.write(json.dumps(doc, sort_keys=True))
    out.write("\n" + END + "\n")
    out.flush()
