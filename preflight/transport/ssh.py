"""The one place that builds SSH connections: host keys verified, timeouts on every hop.

fabric's Connection sets paramiko's AutoAddPolicy and loads no known_hosts file, so a plain
Connection accepts any host key (fabric issues #1804, #2071). Every connection preflight
opens, jump hosts included, goes through `secure_connection`, which loads the known_hosts
files and sets a rejecting policy before `open()`.

A node's ``jump_host`` may also be ``ProxyCommand=LINE`` (an Ansible inventory's
``-o ProxyCommand=...``): LINE is a shell line, as OpenSSH defines it, run with ``/bin/sh -c``
in its own process group after ``%h %p %r`` are replaced by the node's address, port and user,
each shell-quoted (``%%`` is a ``%``); nothing else is substituted. The node's host key is still
verified by this module through the proxy; the proxy's own hops are its business (an ``ssh -W``
inside it verifies the bastion by OpenSSH's rules).
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from fabric import Config, Connection

DEFAULT_KNOWN_HOSTS = ("~/.ssh/known_hosts", "/etc/ssh/ssh_known_hosts")
PROXY_COMMAND_PREFIX = "ProxyCommand="  # as preflight.inventory.model writes it into Node.jump_host


@dataclass(frozen=True)
class SshOptions:
    """Connection settings that apply to a whole run (the inventory can refine per node)."""

    known_hosts: tuple[str, ...] = ()  # extra files, loaded after the defaults
    accept_new_hostkeys: bool = False  # like OpenSSH StrictHostKeyChecking=accept-new
    connect_timeout_s: float = 10.0
    load_ssh_config: bool = True
    ssh_config_path: str | None = None
    use_default_known_hosts: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


_AEAD_FIRST = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")


class _Transport(paramiko.Transport):
    """paramiko's Transport with two costs of its Python code cut, nothing it checks changed.

    - AES-GCM preferred over AES-CTR + HMAC (paramiko's default order; the other ciphers stay, after it): GCM
      authenticates each packet in the C library, CTR + HMAC compares every packet's MAC in a Python loop.
    - A server's SSH_MSG_DEBUG is read and dropped: paramiko escapes it byte by byte in Python to log it at DEBUG,
      which preflight never shows (sshd sends one per authorized_keys option, e.g. each environment="...").
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        opts = self.get_security_options()
        have = tuple(opts.ciphers)
        opts.ciphers = tuple(c for c in _AEAD_FIRST if c in have) + tuple(c for c in have if c not in _AEAD_FIRST)

    def _parse_debug(self, m: paramiko.Message) -> None:
        m.get_boolean()
        m.get_string()
        m.get_string()


class HostKeyRejected(paramiko.SSHException):
    """The server's key is not in any known_hosts file and new keys are not accepted."""


class _RejectUnknown(paramiko.MissingHostKeyPolicy):
    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        raise HostKeyRejected(
            f"host key for {hostname} ({key.get_name()} {key.fingerprint}) is not in known_hosts; "
            "verify it and add it (ssh-keyscan) or rerun with --accept-new-hostkeys"
        )


_append_lock = threading.Lock()


class _AcceptNew(paramiko.MissingHostKeyPolicy):
    """Accept and remember a key never seen before; a *changed* key is still refused by paramiko."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        with _append_lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as fh:
                fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")
        client.get_host_keys().add(hostname, key.get_name(), key)


def known_hosts_files(options: SshOptions, ssh_config: dict[str, Any] | None = None) -> list[Path]:
    """Every known_hosts file to trust, in order: defaults, ssh_config's, inventory/CLI extras."""
    names: list[str] = list(DEFAULT_KNOWN_HOSTS) if options.use_default_known_hosts else []
    if ssh_config:
        for key in ("userknownhostsfile", "globalknownhostsfile"):
            value = ssh_config.get(key)
            if value:
                names.extend(str(value).split())
    names.extend(options.known_hosts)
    seen: list[Path] = []
    for name in names:
        path = Path(os.path.expanduser(name))
        if path not in seen:
            seen.append(path)
    return seen


class _KnownHostsFile:
    """One known_hosts file, parsed once, indexed by host name: a connection looks up its own names in a dict.

    paramiko's `HostKeys.load` is quadratic in the file's length (it checks every line against all before it) and
    its `lookup` scans every entry: at 256 nodes that was 51 ms a load and ~1 ms a lookup. The result is the same
    as `HostKeys.load(path).lookup(name)`: the same lines (parsed by paramiko's `HostKeyEntry.from_line`, a line it
    cannot parse skipped as it skips it), plain names matched exactly, hashed names (`|1|`) by their HMAC, and for
    each key type the first matching line's key.
    """

    def __init__(self, path: Path) -> None:
        self.plain: dict[str, list[tuple[int, paramiko.hostkeys.HostKeyEntry]]] = {}
        self.hashed: list[tuple[int, paramiko.hostkeys.HostKeyEntry]] = []
        with open(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line or line[0] == "#":
                    continue
                try:
                    entry = paramiko.hostkeys.HostKeyEntry.from_line(line, lineno)
                except paramiko.SSHException:
                    continue
                if entry is None or entry.key is None:
                    continue
                for name in dict.fromkeys(entry.hostnames):
                    if name.startswith("|1|"):
                        self.hashed.append((lineno, entry))
                    else:
                        self.plain.setdefault(name, []).append((lineno, entry))

    def keys_for(self, name: str) -> dict[str, paramiko.PKey]:
        """key type -> key for `name`, the first line's key of each type."""
        hits = list(self.plain.get(name, ()))
        for lineno, entry in self.hashed:
            if any(h == name or (h.startswith("|1|") and not name.startswith("|1|") and
                                 paramiko.util.constant_time_bytes_eq(paramiko.HostKeys.hash_host(name, h), h))
                   for h in entry.hostnames):
                hits.append((lineno, entry))
        hits.sort(key=lambda hit: hit[0])
        out: dict[str, paramiko.PKey] = {}
        for _lineno, entry in hits:
            out.setdefault(entry.key.get_name(), entry.key)
        return out


_KNOWN_HOSTS_CACHE: dict[Path, tuple[tuple[int, ...], _KnownHostsFile]] = {}
_KNOWN_HOSTS_LOCK = threading.Lock()
_KNOWN_HOSTS_LOADING = threading.Lock()  # one thread parses a changed file; the others wait for its result


def _parsed_known_hosts(path: Path) -> _KnownHostsFile:
    """Each known_hosts file parsed once per content (mtime, size, inode, ctime), shared by every connection.

    Re-reading it for every node cost 51 ms per connection at 256 nodes; 32 workers starting together all
    missed the cache and parsed it 32 times, hence the loading lock.
    """
    def stamp() -> tuple[int, ...]:
        st = path.stat()
        return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)  # ctime: a copy that keeps mtime still changes it

    now = stamp()
    with _KNOWN_HOSTS_LOCK:
        hit = _KNOWN_HOSTS_CACHE.get(path)
    if hit is not None and hit[0] == now:
        return hit[1]
    with _KNOWN_HOSTS_LOADING:
        now = stamp()
        with _KNOWN_HOSTS_LOCK:
            hit = _KNOWN_HOSTS_CACHE.get(path)
        if hit is not None and hit[0] == now:
            return hit[1]
        parsed = _KnownHostsFile(path)
        with _KNOWN_HOSTS_LOCK:
            _KNOWN_HOSTS_CACHE[path] = (now, parsed)
        return parsed


_KEY_CACHE: dict[str, tuple[tuple[int, int], paramiko.PKey]] = {}


def _private_key(path: str) -> paramiko.PKey | None:
    """The identity file parsed once per run (not once per node); None when it needs a passphrase or
    paramiko cannot read it here, and the connection then loads it itself as before."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    with _KNOWN_HOSTS_LOCK:
        hit = _KEY_CACHE.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    try:
        key = paramiko.PKey.from_path(path)
    except Exception:  # encrypted, unsupported type, unreadable: leave it to paramiko's own loading
        return None
    with _KNOWN_HOSTS_LOCK:
        _KEY_CACHE[path] = (stamp, key)
    return key


def _lookup_names(cxn: Connection) -> list[str]:
    """The names paramiko checks the server key under: `host`, or `[host]:port` off port 22."""
    port = int(cxn.port or 22)
    return [cxn.host] if port == 22 else [f"[{cxn.host}]:{port}", cxn.host]


def _secure(cxn: Connection, options: SshOptions) -> None:
    """Give the client the known keys of this host (every trusted file) and replace fabric's AutoAddPolicy."""
    client = cxn.client
    files = known_hosts_files(options, dict(cxn.ssh_config))
    mine = client.get_host_keys()
    names = _lookup_names(cxn)
    for path in files:
        if path.is_file():
            try:
                parsed = _parsed_known_hosts(path)
            except (OSError, paramiko.SSHException, ValueError) as exc:  # a corrupt line must not open the door
                raise HostKeyRejected(f"cannot read known_hosts file {path}: {exc}") from exc
            for name in names:
                for keytype, key in parsed.keys_for(name).items():
                    mine.add(name, keytype, key)
    if options.accept_new_hostkeys:
        writable = Path(os.path.expanduser(options.known_hosts[-1] if options.known_hosts else DEFAULT_KNOWN_HOSTS[0]))
        client.set_missing_host_key_policy(_AcceptNew(writable))
    else:
        client.set_missing_host_key_policy(_RejectUnknown())


def expand_proxy_command(template: str, host: str, port: int, user: str | None) -> str:
    """The ProxyCommand shell line with ``%h %p %r`` replaced, each value shell-quoted; ``%%`` is ``%``.

    Any other ``%`` token is refused (ValueError): the inventory reader refuses them already, so a value
    that gets here with one did not come from an inventory.
    """
    values = {"h": shlex.quote(host), "p": str(int(port)), "r": shlex.quote(user or os.environ.get("USER", "root")),
              "%": "%"}
    out: list[str] = []
    i = 0
    while i < len(template):
        ch = template[i]
        if ch != "%":
            out.append(ch)
            i += 1
            continue
        tok = template[i + 1:i + 2]
        if tok not in values:
            raise ValueError(f"ProxyCommand token %{tok} is not expanded (only %h %p %r %%)")
        out.append(values[tok])
        i += 2
    return "".join(out)


class _ShellProxy(paramiko.ProxyCommand):
    """paramiko's ProxyCommand, but the line runs as a shell line (``/bin/sh -c``, like OpenSSH; paramiko
    splits it and runs the words) in a process group of its own, killed whole when the connection closes.
    A proxy that exits is a ProxyCommandFailure at once, with the last line it printed on stderr (paramiko's
    own would read an empty pipe until the banner timeout)."""

    def __init__(self, line: str) -> None:  # not super().__init__(): it would start the split words itself
        self.cmd = ["/bin/sh", "-c", line]
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(self.cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self._stderr, bufsize=0, start_new_session=True)
        self.timeout = None

    def recv(self, size: int) -> bytes:
        assert self.process.stdout is not None
        start, buffer = time.monotonic(), b""
        while len(buffer) < size:
            wait = None if self.timeout is None else self.timeout - (time.monotonic() - start)
            if wait is not None and wait <= 0:
                if buffer:
                    return buffer
                raise TimeoutError()  # socket.timeout, which paramiko expects
            ready, _, _ = select.select([self.process.stdout], [], [], wait)
            if not ready:
                continue
            chunk = os.read(self.process.stdout.fileno(), size - len(buffer))
            if not chunk:  # the proxy closed its output: it is gone (or going)
                if buffer:
                    return buffer
                raise paramiko.ProxyCommandFailure("the ProxyCommand", self._why())
            buffer += chunk
        return buffer

    def _why(self) -> str:
        try:
            code = self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            code = None
        self._stderr.seek(0)
        said = [ln.strip() for ln in self._stderr.read()[-4096:].decode("utf-8", "replace").splitlines() if ln.strip()]
        status = f"exited with status {code}" if code is not None else "closed its output"
        return f"{status}: {said[-1]}" if said else status

    def close(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._stderr.close()


class _ProxiedConnection(Connection):  # type: ignore[misc]
    """A Connection whose socket is a ProxyCommand run by :class:`_ShellProxy` (``gateway`` holds the template)."""

    def open_gateway(self) -> _ShellProxy:
        return _ShellProxy(expand_proxy_command(str(self.gateway), self.host, int(self.port or 22), self.user))


def _config(load: bool, path: str | None, timeout: float) -> Config:
    """A fabric Config of its own for each connection: one shared by concurrent connections is not safe (invoke
    merges its config levels lazily; under 32 threads a Connection read a half-merged one and failed with
    "No attribute or config key found for 'gateway'")."""
    overrides: dict[str, Any] = {"load_ssh_configs": load, "timeouts": {"connect": timeout}}
    if path:
        overrides["ssh_config_path"] = path
    return Config(overrides=overrides)


def secure_connection(
    host: str,
    options: SshOptions,
    *,
    user: str | None = None,
    port: int | None = None,
    identity_file: str | None = None,
    jump_host: str | None = None,
    connect_timeout_s: float | None = None,
) -> Connection:
    """Build a fabric Connection whose every hop verifies host keys and times out."""
    timeout = connect_timeout_s or options.connect_timeout_s
    config = _config(options.load_ssh_config, options.ssh_config_path, timeout)
    connect_kwargs: dict[str, Any] = {"banner_timeout": timeout, "auth_timeout": timeout, "channel_timeout": timeout,
                                      "transport_factory": _Transport}
    if identity_file:
        pkey = _private_key(os.path.expanduser(identity_file))
        if pkey is not None:
            connect_kwargs["pkey"] = pkey
            connect_kwargs["look_for_keys"] = False
        else:
            connect_kwargs["key_filename"] = [os.path.expanduser(identity_file)]
    gateway: Connection | str | None = None
    kind: type[Connection] = Connection
    if jump_host and jump_host.startswith(PROXY_COMMAND_PREFIX):
        gateway, kind = jump_host[len(PROXY_COMMAND_PREFIX):], _ProxiedConnection
    elif jump_host:
        # the jump hop uses the node's key unless ssh_config names another for it
        gateway = secure_connection(jump_host, options, identity_file=identity_file, connect_timeout_s=timeout)
    cxn = kind(
        host,
        user=user,
        port=port,
        config=config,
        connect_timeout=int(max(1, round(timeout))),
        connect_kwargs=connect_kwargs,
        gateway=gateway,
    )
    hop: Any = cxn
    depth = 0
    while isinstance(hop, Connection) and depth < 16:  # ssh_config ProxyJump chains come from fabric
        _secure(hop, options)
        hop = hop.gateway
        depth += 1
    return cxn
