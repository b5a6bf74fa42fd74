"""known_hosts files parsed once per content and indexed by host name, shared by every connection of a run."""

from __future__ import annotations

import threading
from pathlib import Path

import paramiko


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


def content_stamp(path: str | Path) -> tuple[int, ...] | None:
    """What tells a file's content changed without reading it (mtime, size, inode, ctime: a copy that keeps the
    mtime still changes the ctime); None when there is no such file."""
    try:
        st = Path(path).expanduser().stat()
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns)


_KNOWN_HOSTS_CACHE: dict[Path, tuple[tuple[int, ...] | None, _KnownHostsFile]] = {}
_KNOWN_HOSTS_LOCK = threading.Lock()
_KNOWN_HOSTS_LOADING = threading.Lock()  # one thread parses a changed file; the others wait for its result


def parsed_known_hosts(path: Path) -> _KnownHostsFile:
    """Each known_hosts file parsed once per content (mtime, size, inode, ctime), shared by every connection.

    Re-reading it for every node cost 51 ms per connection at 256 nodes; 32 workers starting together all
    missed the cache and parsed it 32 times, hence the loading lock.
    """
    now = content_stamp(path)
    with _KNOWN_HOSTS_LOCK:
        hit = _KNOWN_HOSTS_CACHE.get(path)
    if hit is not None and hit[0] == now:
        return hit[1]
    with _KNOWN_HOSTS_LOADING:
        now = content_stamp(path)
        with _KNOWN_HOSTS_LOCK:
            hit = _KNOWN_HOSTS_CACHE.get(path)
        if hit is not None and hit[0] == now:
            return hit[1]
        parsed = _KnownHostsFile(path)
        with _KNOWN_HOSTS_LOCK:
            _KNOWN_HOSTS_CACHE[path] = (now, parsed)
        return parsed
