"""Find the TLS libraries that processes map, from /proc/<pid>/maps, safely.

A maps line is ``start-end perms offset dev inode pathname``; the pathname is *the whole rest of
the line* (a pod can name a file ``libssl.so.3 /host/lib/x``), and it is never opened: the file
is reached through ``/proc/<pid>/map_files/<start>-<end>``, which the kernel resolves to the very
mapped inode, whatever mount namespace or symlinks the process has.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LIBSSL_NAME = re.compile(r"^libssl\.so(\.[0-9.]+)?$")
NODE_NAME = re.compile(r"^(node|nodejs)(\d+)?$")  # OpenSSL linked statically into the executable


@dataclass(frozen=True, slots=True)
class Mapping:
    """One file-backed mapping of one process."""

    pid: int
    start: str
    end: str
    dev: str        # "major:minor" in hex, as in maps
    inode: int
    pathname: str   # informative only; never opened

    @property
    def key(self) -> tuple[str, int]:
        """Identity of the mapped file: (device, inode)."""
        return (self.dev, self.inode)

    def open_path(self, proc: Path = Path("/proc")) -> str:
        """The kernel-resolved path of the mapped file."""
        # map_files names are unpadded hex, maps lines are zero-padded.
        return str(proc / str(self.pid) / "map_files" / f"{int(self.start, 16):x}-{int(self.end, 16):x}")


@dataclass(frozen=True, slots=True)
class TlsLibrary:
    """A TLS library file (or an executable with OpenSSL inside) and one way to reach it."""

    key: tuple[str, int]
    kind: str       # "libssl" | "node"
    pathname: str
    open_path: str
    pid: int


def parse_maps_line(pid: int, line: str) -> Mapping | None:
    """Parse one maps line; None for anonymous or malformed lines."""
    parts = line.rstrip("\n").split(None, 5)
    if len(parts) < 6:
        return None
    addr, _perms, _offset, dev, inode_s, pathname = parts
    start, sep, end = addr.partition("-")
    if not sep or not inode_s.isdigit() or int(inode_s) == 0 or not pathname.startswith("/"):
        return None
    if not re.fullmatch(r"[0-9a-f]+", start) or not re.fullmatch(r"[0-9a-f]+", end):
        return None
    return Mapping(pid, start, end, dev, int(inode_s), pathname)


def classify(pathname: str) -> str | None:
    """'libssl', 'node' or None, from the mapped file's name."""
    name = pathname.removesuffix(" (deleted)").rsplit("/", 1)[-1]
    if LIBSSL_NAME.match(name):
        return "libssl"
    if NODE_NAME.match(name):
        return "node"
    return None


def libraries_of(pid: int, maps_text: str, proc: Path = Path("/proc")) -> list[TlsLibrary]:
    """The TLS libraries one process maps (one entry per file)."""
    found: dict[tuple[str, int], TlsLibrary] = {}
    for line in maps_text.splitlines():
        m = parse_maps_line(pid, line)
        if m is None or m.key in found:
            continue
        kind = classify(m.pathname)
        if kind:
            found[m.key] = TlsLibrary(m.key, kind, m.pathname, m.open_path(proc), pid)
    return list(found.values())


def scan(proc: Path = Path("/proc"), skip_pids: frozenset[int] = frozenset()) -> Iterator[TlsLibrary]:
    """Every TLS library mapped by any process on the node (a file may appear once per process)."""
    for entry in os.scandir(proc):
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in skip_pids:
            continue
        try:
            text = (proc / entry.name / "maps").read_text(errors="replace")
        except OSError:  # exited, or a kernel thread
            continue
        if "libssl" not in text and "node" not in text:
            continue
        yield from libraries_of(pid, text, proc)
