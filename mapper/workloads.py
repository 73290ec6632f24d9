"""Workload resolution: which workload (Deployment, StatefulSet, DaemonSet, CronJob, Job, Pod) a
calling pod belongs to; host callers become kind ``Host``.

Two sources: a pods file (the agent's YAML format) re-read when it changes, or the Kubernetes API
with a cached watch on pods and cached owner look-ups (ReplicaSet -> Deployment, Job -> CronJob).
A pod not known yet resolves to None: its calls are kept and resolved when it appears. With the
API, a deleted pod stays resolvable for a while (late reports), and a pod never seen for an hour
resolves to itself (kind ``Pod``) so that its kept calls are recorded, not kept forever.
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Protocol

from clearance.common.podsfile import FileStamp, read_pods_file, stamp

from .apierrors import describe

log = logging.getLogger("clearance.mapper.workloads")

HOST_KIND = "Host"
_RS_HASH = re.compile(r"^(?P<base>.+)-[a-z0-9]{5,10}$")


class WorkloadRef(NamedTuple):
    namespace: str
    kind: str
    name: str


class PendingPod(NamedTuple):
    """A calling pod that is not known yet."""

    namespace: str
    pod: str
    uid: str


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    owner_kind: str
    owner_name: str


class Resolver(Protocol):
    def resolve(self, namespace: str, pod: str, uid: str) -> WorkloadRef | None: ...

    def on_pod_added(self, callback: Callable[[], None]) -> None: ...

    def resolve_uid(self, uid: str) -> WorkloadRef | None:
        """The workload of the pod with this uid, when known (calls the agent sent with only a uid)."""
        ...


def top_owner(pod: PodInfo, lookup: Callable[[str, str, str], tuple[str, str] | None] | None = None) -> WorkloadRef:
    """The pod's workload. ``lookup(kind, namespace, name)`` returns the controller of a ReplicaSet/Job
    (kind, name) when the API is available; without it, a ReplicaSet's pod-template-hash is stripped."""
    kind, name = pod.owner_kind, pod.owner_name
    if not kind or not name:
        return WorkloadRef(pod.namespace, "Pod", pod.name)
    if kind in ("ReplicaSet", "Job"):
        parent = lookup(kind, pod.namespace, name) if lookup else None
        if parent is not None:
            return WorkloadRef(pod.namespace, *parent)
        if lookup is None and kind == "ReplicaSet" and (m := _RS_HASH.match(name)):
            return WorkloadRef(pod.namespace, "Deployment", m.group("base"))
    return WorkloadRef(pod.namespace, kind, name)


class PodsFileResolver:
    """Pods from a pods file (see clearance.common.podsfile; a uid is optional here), re-read (at
    most once a second) when it changes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp: FileStamp | None = None
        self._checked = 0.0
        self._by_uid: dict[str, WorkloadRef] = {}
        self._by_name: dict[tuple[str, str], WorkloadRef] = {}
        self._callbacks: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self.reload(force=True, initial=True)

    def on_pod_added(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def reload(self, force: bool = False, initial: bool = False) -> bool:
        """Re-read the file when it changed (``force``: without the once-a-second limit); True when
        pods were added, after telling the on_pod_added callbacks."""
        now = time.monotonic()
        if not force and now - self._checked < 1.0:
            return False
        self._checked = now
        current = stamp(self.path)
        if current is None and not initial:
            return False
        if current is not None and current == self._stamp:
            return False
        self._stamp = current  # a bad file is reported once, not at every check
        pods = load_pods_file(self.path)
        by_uid = {p.uid: top_owner(p) for p in pods if p.uid}
        by_name = {(p.namespace, p.name): top_owner(p) for p in pods}
        with self._lock:
            added = len(set(by_name) - set(self._by_name)) > 0
            self._by_uid, self._by_name = by_uid, by_name
        if added and not initial:
            for cb in self._callbacks:
                cb()
        return added

    def resolve(self, namespace: str, pod: str, uid: str) -> WorkloadRef | None:
        if uid and (ref := self._by_uid.get(uid.lower())) is not None:
            return ref
        return self._by_name.get((namespace, pod))

    def resolve_uid(self, uid: str) -> WorkloadRef | None:
        return self._by_uid.get(uid.lower()) if uid else None


def load_pods_file(path: Path) -> list[PodInfo]:
    """Parse the pods file (a uid is optional); raises ValueError naming the entry and field."""
    return [PodInfo(e.namespace, e.name, e.uid, e.owner_kind, e.owner_name)
            for e in read_pods_file(path, uid_required=False)]


@dataclass(slots=True)
class _Miss:
    """A pod the API did not know when asked: when it was first asked about, and when to GET again."""

    first: float
    next_try: float
    delay: float
    last_asked: float
    expired: bool = False


class KubeResolver:
    """Pods from the Kubernetes API: a background list+watch keeps a cache; owners are looked up
    once and cached.

    - A deleted pod stays resolvable for ``departed_keep_s`` (10 min, like the agent), so reports
      sent just before it went away are attributed.
    - A cache miss falls back to one GET, repeated per (namespace, pod, uid) with exponential
      backoff (``retry_initial_s`` doubling up to ``retry_max_s``), never in a hot loop.
    - A pod still unknown ``pending_expiry_s`` (1 h) after it was first asked about resolves to
      the bare pod (kind ``Pod``), with a log line: its kept calls are recorded, not kept forever.
    """

    MAX_TRACKED = 100_000

    def __init__(self, api_client: Any, *, departed_keep_s: float = 600.0, pending_expiry_s: float = 3600.0,
                 retry_initial_s: float = 5.0, retry_max_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._apps = client.AppsV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self._departed_keep = departed_keep_s
        self._pending_expiry = pending_expiry_s
        self._retry_initial = retry_initial_s
        self._retry_max = retry_max_s
        self._clock = clock
        self._pods: dict[tuple[str, str], tuple[str, WorkloadRef]] = {}  # (ns, name) -> (uid, workload)
        self._by_uid: dict[str, WorkloadRef] = {}  # uid -> workload, of cached and departed pods
        # (ns, name, uid) and (ns, name, "") -> (workload, deleted at); insertion order is deletion order
        self._departed: dict[tuple[str, str, str], tuple[WorkloadRef, float]] = {}
        self._owners: dict[tuple[str, str, str], tuple[str, str] | None] = {}
        self._misses: dict[tuple[str, str, str], _Miss] = {}
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_pod_added(self, callback: Callable[[], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch_loop, name="pod-watch", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def known(self, namespace: str, pod: str) -> bool:
        """True when the pod is in the cache (listed, watched or fetched), without asking the API."""
        return (namespace, pod) in self._pods

    def departed(self, namespace: str, pod: str) -> bool:
        """True while a deleted pod of this name is still kept resolvable."""
        with self._lock:
            self._expire_departed(self._clock())
            return (namespace, pod, "") in self._departed

    def resolve(self, namespace: str, pod: str, uid: str) -> WorkloadRef | None:
        uid = uid.lower()
        hit = self._pods.get((namespace, pod))
        if hit is not None and (not uid or hit[0] == uid or not hit[0]):
            return hit[1]
        now = self._clock()
        key = (namespace, pod, uid)
        with self._lock:
            self._expire_departed(now)
            gone = self._departed.get(key)
            if gone is not None:
                return gone[0]
            miss = self._misses.get(key)
            if miss is not None:
                miss.last_asked = now
                if miss.expired:
                    return WorkloadRef(namespace, "Pod", pod)
                if now < miss.next_try:
                    return self._expire_pending(key, miss, now)
        try:
            obj = self._core.read_namespaced_pod(pod, namespace)
        except Exception as exc:  # noqa: BLE001 - a 404 or an unreachable API: not known yet
            log.debug("pod not found", extra={"fields": {"namespace": namespace, "pod": pod, "error": describe(exc)}})
            obj = None
        if obj is not None:
            ref = self._remember(obj)
            if not uid or not obj.metadata.uid or obj.metadata.uid.lower() == uid:
                return ref
        with self._lock:
            miss = self._misses.get(key)
            if miss is None:
                if len(self._misses) >= self.MAX_TRACKED:
                    self._forget_idle_misses(now, all_but_newest=self.MAX_TRACKED // 2)
                miss = self._misses[key] = _Miss(now, now, self._retry_initial / 2, now)
            miss.delay = min(miss.delay * 2, self._retry_max)
            miss.next_try = now + miss.delay
            return self._expire_pending(key, miss, now)

    def resolve_uid(self, uid: str) -> WorkloadRef | None:
        """A cached or recently deleted pod with this uid (the API cannot be asked by uid)."""
        if not uid:
            return None
        with self._lock:
            self._expire_departed(self._clock())
            return self._by_uid.get(uid.lower())

    def _expire_pending(self, key: tuple[str, str, str], miss: _Miss, now: float) -> WorkloadRef | None:
        """None while the pod may still appear; the bare pod once it has been unknown too long (lock held)."""
        if now - miss.first < self._pending_expiry:
            return None
        miss.expired = True
        namespace, pod, uid = key
        log.warning("pod never seen in the Kubernetes API; its calls are recorded under the bare pod",
                    extra={"fields": {"namespace": namespace, "pod": pod, "uid": uid,
                                      "waited_s": round(now - miss.first)}})
        return WorkloadRef(namespace, "Pod", pod)

    def _forget_idle_misses(self, now: float, all_but_newest: int | None = None) -> None:
        """Drop misses nobody asked about for twice the pending expiry, or all but the newest (lock held)."""
        if all_but_newest is not None:
            keep = sorted(self._misses.items(), key=lambda kv: kv[1].last_asked)[-all_but_newest:]
            self._misses = dict(keep)
            return
        idle = 2 * self._pending_expiry
        for key in [k for k, m in self._misses.items() if now - m.last_asked > idle]:
            del self._misses[key]

    def _expire_departed(self, now: float) -> None:
        """Forget deleted pods kept longer than departed_keep_s (lock held)."""
        while self._departed:
            key, (_, since) = next(iter(self._departed.items()))
            if now - since < self._departed_keep and len(self._departed) <= 2 * self.MAX_TRACKED:
                break
            del self._departed[key]
            if key[2] and self._pods.get(key[:2], ("",))[0] != key[2]:
                self._by_uid.pop(key[2], None)

    def _depart(self, namespace: str, name: str) -> None:
        """The pod was deleted: keep its workload resolvable for a while."""
        held = self._pods.pop((namespace, name), None)
        if held is None:
            return
        uid, ref = held
        now = self._clock()
        with self._lock:
            for key in {(namespace, name, uid), (namespace, name, "")}:
                self._departed.pop(key, None)  # re-inserted last: the order stays the deletion order
                self._departed[key] = (ref, now)
            self._expire_departed(now)
            self._forget_idle_misses(now)

    def _remember(self, obj: Any) -> WorkloadRef:
        meta = obj.metadata
        owner = next((o for o in (meta.owner_references or []) if o.controller), None)
        uid = (meta.uid or "").lower()
        info = PodInfo(meta.namespace, meta.name, uid, owner.kind if owner else "", owner.name if owner else "")
        ref = top_owner(info, self._owner_of)
        with self._lock:
            old = self._pods.get((meta.namespace, meta.name))
            if old is not None and old[0] and old[0] != uid and (meta.namespace, meta.name, old[0]) not in self._departed:
                self._by_uid.pop(old[0], None)  # replaced by a pod of the same name
            self._pods[(meta.namespace, meta.name)] = (uid, ref)
            if uid:
                self._by_uid[uid] = ref
            self._misses.pop((meta.namespace, meta.name, uid), None)
            self._misses.pop((meta.namespace, meta.name, ""), None)
        return ref

    def _owner_of(self, kind: str, namespace: str, name: str) -> tuple[str, str] | None:
        key = (kind, namespace, name)
        if key in self._owners:
            return self._owners[key]
        try:
            if kind == "ReplicaSet":
                obj = self._apps.read_namespaced_replica_set(name, namespace)
            else:
                obj = self._batch.read_namespaced_job(name, namespace)
        except Exception:  # noqa: BLE001 - owner gone or not readable: the ReplicaSet/Job is the workload
            return None
        parent = next((o for o in (obj.metadata.owner_references or []) if o.controller), None)
        result = (parent.kind, parent.name) if parent else None
        self._owners[key] = result
        return result

    def _watch_loop(self) -> None:
        from kubernetes import watch

        while not self._stop.is_set():
            try:
                listing = self._core.list_pod_for_all_namespaces()
                added = False
                listed = set()
                for obj in listing.items:
                    key = (obj.metadata.namespace, obj.metadata.name)
                    listed.add(key)
                    added |= key not in self._pods
                    self._remember(obj)
                for key in set(self._pods) - listed:  # deleted while the watch was down
                    self._depart(*key)
                if added:
                    self._notify()
                w = watch.Watch()
                for event in w.stream(self._core.list_pod_for_all_namespaces, timeout_seconds=60,
                                      resource_version=listing.metadata.resource_version):
                    if self._stop.is_set():
                        w.stop()
                        break
                    obj = event["object"]
                    key = (obj.metadata.namespace, obj.metadata.name)
                    if event["type"] == "DELETED":
                        if key not in self._pods:
                            self._remember(obj)  # deleted before we knew it: still attribute late reports
                        self._depart(*key)
                        continue
                    new = key not in self._pods
                    self._remember(obj)
                    if new:
                        self._notify()
            except Exception as exc:  # noqa: BLE001 - the API went away: retry
                log.warning("pod watch failed; retrying", extra={"fields": {"error": describe(exc)}})
                self._stop.wait(2.0)

    def _notify(self) -> None:
        for cb in self._callbacks:
            try:
                cb()
            except Exception:  # noqa: BLE001
                log.exception("pod-added callback failed")


def host_workload(node: str) -> WorkloadRef:
    return WorkloadRef("", HOST_KIND, node or os.uname().nodename)
