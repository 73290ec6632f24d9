"""Stage 5: who made a call: cgroup id -> cgroup v2 directory -> (pod uid, container id) -> pod.

``bpf_get_current_cgroup_id()`` is the inode of the process's cgroup v2 directory. The directory
is found from ``/proc/<pid>/cgroup`` while the process lives, else from an inode index of the
cgroup tree (rebuilt lazily on a miss, at most once a second, bounded). The pod uid and container
id come from kubelet's naming (systemd and cgroupfs drivers; containerd, CRI-O, Docker).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

from clearance.nodeagent.pods import PodSource
from clearance.v1 import report_pb2

Identity = tuple[str, str]  # (pod uid, container id)

_POD = re.compile(r"pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})(?:\.slice)?$")
_CONTAINER = re.compile(r"(?:^|[-:])([0-9a-f]{64})(?:\.scope)?$")
_CACHE_MAX = 16384
_INDEX_MAX = 200_000
_INDEX_DEPTH = 12


def parse_cgroup_path(path: str) -> Identity | None:
    """(pod uid, container id) from a cgroup path in kubelet's naming, else None.

    ``/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid_>.slice/cri-containerd-<id>.scope``
    and ``/kubepods/burstable/pod<uid>/<id>`` both work; a path without a pod is not a pod.
    """
    uid = ""
    container = ""
    for part in path.split("/"):
        if not part:
            continue
        m = _POD.search(part)
        if m and not container:
            uid = m.group(1).replace("_", "-")
            continue
        if uid:
            c = _CONTAINER.search(part)
            if c and not container:
                container = c.group(1)
    if not uid:
        return None
    return uid, container


def cgroup2_mount(mountinfo: str = "/proc/self/mountinfo") -> Path | None:
    """The cgroup v2 mount point, from mountinfo (hybrid hosts mount it at .../unified)."""
    try:
        text = Path(mountinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if sep and right.split(" ", 1)[0] == "cgroup2":
            fields = left.split(" ")
            if len(fields) > 4:
                mount = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
                return Path(mount)
    return None


class CgroupIndex:
    """cgroup id (inode) -> path under the v2 mount, bounded and refreshed lazily."""

    def __init__(self, root: Path | None, *, min_refresh_s: float = 1.0) -> None:
        self.root = root
        self._index: dict[int, str] = {}
        self._built = -1e9
        self._min_refresh = min_refresh_s

    def _build(self) -> None:
        self._built = time.monotonic()
        index: dict[int, str] = {}
        if self.root is None:
            self._index = index
            return
        root = str(self.root)
        stack = [(root, 0)]
        while stack and len(index) < _INDEX_MAX:
            d, depth = stack.pop()
            try:
                with os.scandir(d) as it:
                    for entry in it:
                        if entry.is_dir(follow_symlinks=False):
                            try:
                                index[entry.inode()] = entry.path[len(root):]
                            except OSError:
                                continue
                            if depth < _INDEX_DEPTH:
                                stack.append((entry.path, depth + 1))
            except OSError:
                continue
        self._index = index

    def path_of(self, cgroup_id: int) -> str | None:
        path = self._index.get(cgroup_id)
        if path is None and time.monotonic() - self._built >= self._min_refresh:
            self._build()
            path = self._index.get(cgroup_id)
        return path


class Attributor:
    """Maps a TLS event's cgroup id (and pid) to a caller; unknown processes are the host."""

    def __init__(self, pods: PodSource, node: str, *, cgroup_root: Path | None = None,
                 proc: str = "/proc") -> None:
        self.pods = pods
        self.node = node
        self.root = cgroup_root if cgroup_root is not None else cgroup2_mount()
        self._proc = proc
        self._index = CgroupIndex(self.root)
        self._cache: dict[int, Identity | None] = {}
        self._misses: dict[int, float] = {}  # cgroup ids not found, and when they were looked up

    def identity(self, cgroup_id: int, pid: int) -> Identity | None:
        """(pod uid, container id) of the process, or None for a process outside any pod."""
        try:
            return self._cache[cgroup_id]
        except KeyError:
            pass
        missed = self._misses.get(cgroup_id)
        if missed is not None and time.monotonic() - missed < 1.0:
            return None
        path = self._path_from_proc(cgroup_id, pid)
        if path is None:
            path = self._index.path_of(cgroup_id)
        if path is None:
            # not cached for good: a cgroup created later appears on a later refresh
            if len(self._misses) >= _CACHE_MAX:
                self._misses.clear()
            self._misses[cgroup_id] = time.monotonic()
            return None
        self._misses.pop(cgroup_id, None)
        ident = parse_cgroup_path(path)
        if len(self._cache) >= _CACHE_MAX:
            self._cache.clear()
        self._cache[cgroup_id] = ident
        return ident

    def _path_from_proc(self, cgroup_id: int, pid: int) -> str | None:
        if self.root is None or pid <= 0:
            return None
        try:
            with open(f"{self._proc}/{pid}/cgroup") as f:
                text = f.read(65536)
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("0::"):
                rel = line[3:]
                try:
                    if os.stat(str(self.root) + rel).st_ino == cgroup_id:
                        return rel
                except OSError:
                    return None
        return None

    def known(self, ident: Identity | None) -> bool:
        """True when ``ident`` is a pod the pod source knows."""
        return ident is not None and self.pods.get(ident[0]) is not None

    def caller(self, ident: Identity | None) -> report_pb2.Caller:
        """The proto Caller for an identity; unknown pods are reported as the host (with ids)."""
        if ident is None:
            return report_pb2.Caller(host=True, node=self.node)
        uid, container = ident
        pod = self.pods.get(uid)
        if pod is None:
            return report_pb2.Caller(host=True, node=self.node, pod_uid=uid, container=container)
        return report_pb2.Caller(namespace=pod.namespace, pod_name=pod.name, pod_uid=pod.uid,
                                 container=pod.containers.get(container, container),
                                 service_account=pod.service_account, owner_kind=pod.owner_kind,
                                 owner_name=pod.owner_name, node=self.node)
