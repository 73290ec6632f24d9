"""Where the agent learns which pods run on its node: a YAML file or the Kubernetes API.

A ``PodSource`` answers ``get(uid)``; ``PodsFile`` reloads its file when it changes and
``KubePods`` watches this node's pods (``fieldSelector=spec.nodeName=<node>``), keeping recently
deleted pods for a while so late calls of a terminating pod are still attributed.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from clearance.common.podsfile import PodEntry, read_pods_file, stamp, strip_runtime

log = logging.getLogger("clearance.agent.pods")


@dataclass(frozen=True, slots=True)
class Pod:
    """What the agent reports about a pod."""

    namespace: str
    name: str
    uid: str
    service_account: str = ""
    owner_kind: str = ""
    owner_name: str = ""
    containers: dict[str, str] = field(default_factory=dict)  # container id -> container name


class PodSource(Protocol):
    """Pods of this node by uid."""

    def get(self, uid: str) -> Pod | None: ...


def _pod(entry: PodEntry) -> Pod:
    return Pod(namespace=entry.namespace, name=entry.name, uid=entry.uid, service_account=entry.service_account,
               owner_kind=entry.owner_kind, owner_name=entry.owner_name, containers=dict(entry.containers))


def load_pods_file(path: Path) -> dict[str, Pod]:
    """Parse a pods file (see clearance.common.podsfile); every entry needs a uid."""
    return {e.uid: _pod(e) for e in read_pods_file(path, uid_required=True)}


class PodsFile:
    """Pods from a YAML file, reloaded (at most once a second) when the file changes."""

    def __init__(self, path: str | os.PathLike[str], *, check_interval: float = 1.0) -> None:
        self.path = Path(path)
        self._interval = check_interval
        self._stamp = stamp(self.path)
        self._pods = load_pods_file(self.path)
        self._checked = time.monotonic()
        self._lock = threading.Lock()

    def _maybe_reload(self) -> None:
        now = time.monotonic()
        if now - self._checked < self._interval:
            return
        self._checked = now
        now_stamp = stamp(self.path)
        if now_stamp == self._stamp or now_stamp is None:
            return
        self._stamp = now_stamp
        try:
            self._pods = load_pods_file(self.path)
        except ValueError as exc:
            log.warning("pods file not reloaded; keeping the previous pods", extra={"fields": {"error": str(exc)}})

    def get(self, uid: str) -> Pod | None:
        with self._lock:
            self._maybe_reload()
            return self._pods.get(uid.lower())

    def close(self) -> None:
        """Nothing to release (symmetry with KubePods)."""


def pod_from_api(obj: Any) -> Pod:
    """A Pod from a ``kubernetes.client.V1Pod``."""
    meta, spec, status = obj.metadata, obj.spec, obj.status
    owner_kind = owner_name = ""
    for ref in meta.owner_references or []:
        if getattr(ref, "controller", False) or not owner_kind:
            owner_kind, owner_name = ref.kind or "", ref.name or ""
    containers: dict[str, str] = {}
    if status is not None:
        for group in (status.container_statuses, status.init_container_statuses,
                      getattr(status, "ephemeral_container_statuses", None)):
            for cs in group or []:
                if cs.container_id:
                    containers[strip_runtime(cs.container_id)] = cs.name
    return Pod(namespace=meta.namespace or "", name=meta.name or "", uid=(meta.uid or "").lower(),
               service_account=(spec.service_account_name or "") if spec else "",
               owner_kind=owner_kind, owner_name=owner_name, containers=containers)


class KubePods:
    """This node's pods from the Kubernetes API (list, then watch; re-list when the watch expires)."""

    def __init__(self, node: str, api_client: Any, *, keep_deleted_s: float = 600.0,
                 max_deleted: int = 10000, watch_timeout_s: int = 60) -> None:
        from kubernetes import client

        self.node = node
        self._v1 = client.CoreV1Api(api_client)
        self._pods: dict[str, Pod] = {}
        self._deleted: OrderedDict[str, tuple[float, Pod]] = OrderedDict()
        self._keep_deleted = keep_deleted_s
        self._max_deleted = max_deleted
        self._watch_timeout = watch_timeout_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._watch: Any = None
        self._thread = threading.Thread(target=self._run, name="kube-pods", daemon=True)
        self._thread.start()

    def wait_synced(self, timeout: float | None = None) -> bool:
        """True once the first list has completed."""
        return self._synced.wait(timeout)

    def get(self, uid: str) -> Pod | None:
        with self._lock:
            pod = self._pods.get(uid)
            if pod is None and uid in self._deleted:
                pod = self._deleted[uid][1]
            return pod

    def close(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        self._thread.join(timeout=5)

    def _selector(self) -> str:
        return f"spec.nodeName={self.node}"

    def _on_node(self, obj: Any) -> bool:
        # a selector the server ignores must not let other nodes' pods in
        return obj.spec is not None and obj.spec.node_name == self.node

    def _put(self, obj: Any) -> None:
        pod = pod_from_api(obj)
        if pod.uid:
            self._pods[pod.uid] = pod
            self._deleted.pop(pod.uid, None)

    def _remove(self, obj: Any) -> None:
        pod = pod_from_api(obj)
        self._pods.pop(pod.uid, None)
        self._deleted[pod.uid] = (time.monotonic(), pod)
        now = time.monotonic()
        while self._deleted and (len(self._deleted) > self._max_deleted
                                 or next(iter(self._deleted.values()))[0] < now - self._keep_deleted):
            self._deleted.popitem(last=False)

    def _list(self) -> str:
        resp = self._v1.list_pod_for_all_namespaces(field_selector=self._selector())
        with self._lock:
            current = {}
            for obj in resp.items or []:
                if self._on_node(obj):
                    pod = pod_from_api(obj)
                    if pod.uid:
                        current[pod.uid] = pod
            for uid, pod in self._pods.items():
                if uid not in current:
                    self._deleted[uid] = (time.monotonic(), pod)
            self._pods = current
        self._synced.set()
        return (resp.metadata.resource_version if resp.metadata else "") or ""

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        backoff = 0.5
        rv = ""
        while not self._stop.is_set():
            try:
                if not rv:
                    rv = self._list()
                self._watch = watch.Watch()
                kwargs: dict[str, Any] = {"field_selector": self._selector(),
                                          "timeout_seconds": self._watch_timeout}
                if rv:
                    kwargs["resource_version"] = rv
                for event in self._watch.stream(self._v1.list_pod_for_all_namespaces, **kwargs):
                    if self._stop.is_set():
                        break
                    obj = event.get("object")
                    kind = event.get("type")
                    if kind == "ERROR" or obj is None or not hasattr(obj, "metadata"):
                        rv = ""
                        break
                    if obj.metadata.resource_version:
                        rv = obj.metadata.resource_version
                    if not self._on_node(obj):
                        continue
                    with self._lock:
                        if kind == "DELETED":
                            self._remove(obj)
                        else:
                            self._put(obj)
                backoff = 0.5
            except ApiException as exc:
                if exc.status == 410:
                    rv = ""
                    continue
                log.warning("pod watch failed; retrying", extra={"fields": {"status": exc.status}})
                rv = ""
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
            except Exception as exc:  # the API server went away, a bad response: retry, never die
                if self._stop.is_set():
                    break
                log.warning("pod watch failed; retrying", extra={"fields": {"error": type(exc).__name__}})
                rv = ""
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
