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

from preflight.transport.known_hosts import content_stamp, parsed_known_hosts

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
    - Its socket polls every 0.5 s, not every 0.1 s, for a close from another thread: each poll is a Python
      loop turn in its read thread, ~20 a second-long collector run per node while nothing arrives. A close or a
      handshake or banner timeout is seen at most 0.5 s later.
    """

    _active_check_timeout = 0.5

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


_KEY_CACHE: dict[str, tuple[tuple[int, ...], paramiko.PKey]] = {}
_KEY_LOCK = threading.Lock()


def _private_key(path: str) -> paramiko.PKey | None:
    """The identity file parsed once per run (not once per node); None when it needs a passphrase or
    paramiko cannot read it here, and the connection then loads it itself as before."""
    stamp = content_stamp(path)
    if stamp is None:
        return None
    with _KEY_LOCK:
        hit = _KEY_CACHE.get(path)
        if hit is not None and hit[0] == stamp:
            return hit[1]
    try:
        key = paramiko.PKey.from_path(path)
    except Exception:  # encrypted, unsupported type, unreadable: leave it to paramiko's own loading
        return None
    with _KEY_LOCK:
        _KEY_CACHE[path] = (stamp, key)
    return key


def _lookup_names(cxn: Connection | _DirectConnection) -> list[str]:
    """The names paramiko checks the server key under: `host`, or `[host]:port` off port 22."""
    port = int(cxn.port or 22)
    return [cxn.host] if port == 22 else [f"[{cxn.host}]:{port}", cxn.host]


def _secure(cxn: Connection | _DirectConnection, options: SshOptions) -> None:
    """Give the client the known keys of this host (every trusted file) and replace fabric's AutoAddPolicy."""
    client = cxn.client
    files = known_hosts_files(options, dict(cxn.ssh_config))
    mine = client.get_host_keys()
    names = _lookup_names(cxn)
    for path in files:
        if path.is_file():
            try:
                parsed = parsed_known_hosts(path)
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


_FABRIC_FILES = tuple(f"{prefix}fabric.{ext}" for prefix in ("/etc/", "~/.") for ext in ("yaml", "yml", "json", "py"))


@dataclass(frozen=True)
class _Defaults:
    """What a fabric Config would give every Connection, read once per content of the files it reads.

    Building a fabric Config (and its invoke merge) for every node cost ~0.7 ms of controller CPU a node, more
    under 32 threads. These are the only values a Connection takes from it for a host with no gateway.
    """

    ssh_config: paramiko.SSHConfig
    user: str
    port: int
    key_filenames: tuple[str, ...]  # fabric.yaml's connect_kwargs.key_filename
    plain: bool  # no gateway and no auth strategy configured in fabric.yaml


_DEFAULTS: dict[tuple[bool, str | None], tuple[tuple[tuple[int, ...] | None, ...], _Defaults]] = {}
_DEFAULTS_LOCK = threading.Lock()


def _defaults(load: bool, path: str | None) -> _Defaults:
    ssh_files = ((path,) if path else ("~/.ssh/config", "/etc/ssh/ssh_config")) if load else ()
    stamp = tuple(content_stamp(name) for name in ssh_files + _FABRIC_FILES)
    with _DEFAULTS_LOCK:
        hit = _DEFAULTS.get((load, path))
        if hit is not None and hit[0] == stamp:
            return hit[1]
        config = _config(load, path, 10.0)
        keys = config.connect_kwargs.get("key_filename", [])
        strategy = config.authentication.get("strategy_class") if "authentication" in config else None
        made = _Defaults(
            ssh_config=config.base_ssh_config, user=str(config.user), port=int(config.port),
            key_filenames=(keys,) if isinstance(keys, str) else tuple(keys),
            plain=config.gateway is None and strategy is None,
        )
        _DEFAULTS[(load, path)] = (stamp, made)
        return made


class _DirectConnection:
    """A node reached straight over paramiko: what fabric's Connection does for a host with no gateway, without
    building a fabric Config and Connection for each node.

    The host's ssh_config entry is read as fabric reads it (Hostname, User, Port, IdentityFile; the connect timeout
    is always given), and `open()` makes the same `SSHClient.connect` call. A host whose ssh_config has ProxyJump or
    ProxyCommand, an inventory jump host, or a fabric.yaml that sets a gateway or an auth strategy goes through
    fabric as before. Unlike fabric's, `close()` also ends a connection still in its handshake (the run deadline).
    """

    def __init__(self, host: str, user: str, port: int, ssh_config: dict[str, Any], connect_timeout: int,
                 connect_kwargs: dict[str, Any]) -> None:
        self.host = str(ssh_config.get("hostname", host))
        self.user = user
        self.port = port
        self.ssh_config = ssh_config
        self.connect_timeout = connect_timeout
        self.connect_kwargs = connect_kwargs
        self.client = paramiko.SSHClient()
        self.transport: paramiko.Transport | None = None

    @property
    def is_connected(self) -> bool:
        return self.transport is not None and self.transport.is_active()

    def open(self) -> None:
        if self.is_connected:
            return
        self.client.connect(**self.connect_kwargs, username=self.user, hostname=self.host, port=self.port,
                            timeout=self.connect_timeout)
        self.transport = self.client.get_transport()

    def close(self) -> None:
        self.client.close()


def _direct(host: str, defaults: _Defaults, user: str | None, port: int | None, timeout: int,
            connect_kwargs: dict[str, Any]) -> _DirectConnection | None:
    """A direct connection when fabric would add nothing to it, else None (fabric's Connection is used)."""
    if not defaults.plain or "@" in host or host.count(":") == 1:  # fabric's user@host:port shorthand
        return None
    entry = defaults.ssh_config.lookup(host)
    if "proxyjump" in entry or "proxycommand" in entry:
        return None
    keys = list(defaults.key_filenames) + list(connect_kwargs.get("key_filename", [])) + list(entry.get("identityfile", []))
    if keys:
        connect_kwargs["key_filename"] = keys
    return _DirectConnection(host, user or str(entry.get("user", defaults.user)),
                             port or int(entry.get("port", defaults.port)), dict(entry), timeout, connect_kwargs)


def secure_connection(
    host: str,
    options: SshOptions,
    *,
    user: str | None = None,
    port: int | None = None,
    identity_file: str | None = None,
    jump_host: str | None = None,
    connect_timeout_s: float | None = None,
    direct: bool = True,
) -> Connection | _DirectConnection:
    """Build a connection whose every hop verifies host keys and times out: a paramiko one where fabric would add
    nothing (`_DirectConnection`), fabric's Connection where there is a gateway (a jump host is always fabric's)."""
    timeout = connect_timeout_s or options.connect_timeout_s
    connect_kwargs: dict[str, Any] = {"banner_timeout": timeout, "auth_timeout": timeout, "channel_timeout": timeout,
                                      "transport_factory": _Transport}
    if identity_file:
        pkey = _private_key(os.path.expanduser(identity_file))
        if pkey is not None:
            connect_kwargs["pkey"] = pkey
            connect_kwargs["look_for_keys"] = False
        else:
            connect_kwargs["key_filename"] = [os.path.expanduser(identity_file)]
    connect_timeout = int(max(1, round(timeout)))
    if direct and not jump_host:
        made = _direct(host, _defaults(options.load_ssh_config, options.ssh_config_path), user, port, connect_timeout,
                       connect_kwargs)
        if made is not None:
            _secure(made, options)
            return made
    config = _config(options.load_ssh_config, options.ssh_config_path, timeout)
    gateway: Connection | str | None = None
    kind: type[Connection] = Connection
    if jump_host and jump_host.startswith(PROXY_COMMAND_PREFIX):
        gateway, kind = jump_host[len(PROXY_COMMAND_PREFIX):], _ProxiedConnection
    elif jump_host:
        # the jump hop uses the node's key unless ssh_config names another for it
        gateway = secure_connection(jump_host, options, identity_file=identity_file, connect_timeout_s=timeout,
                                    direct=False)
    cxn = kind(
        host,
        user=user,
        port=port,
        config=config,
        connect_timeout=connect_timeout,
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
