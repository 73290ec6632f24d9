"""From a report to a durable batch: validate each call, classify it (cached per call signature),
resolve its workload, and aggregate per (workload, scope, permission) in memory before one upsert.

Calls from pods not known yet are kept (in the store, as their call signature) and replayed by
:meth:`Ingestor.resolve_pending` once the pod appears.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from clearance.v1 import report_pb2

from .store import Batch, PendingKey, Store
from .workloads import PodInfo, Resolver, WorkloadRef, host_workload, top_owner

log = logging.getLogger("clearance.mapper.ingest")

SERVICES = frozenset({"blob", "queue", "table", "file", "dfs", "vault", "arm"})
MAX_PATH = 4096
MAX_MAP_ENTRIES = 64
MAX_TEXT = 1024
CACHE_SIZE = 65536


class InvalidReport(ValueError):
    """A report that cannot be stored; the message names the call and the field."""


@dataclass(frozen=True, slots=True)
class Classified:
    """What the catalog said about one call signature, flattened for the hot loop."""

    permissions: tuple[tuple[str, str, int], ...]  # (scope, permission, data 0/1)
    unknown: bool
    denied: bool


Classifier = Callable[[report_pb2.ObservedCall], object]


def _default_classifier() -> Classifier:
    from clearance.mapper.catalog import classify

    return classify


class Ingestor:
    """Turns reports into store batches. Thread-safe."""

    def __init__(self, store: Store, resolver: Resolver | None, *, classify: Classifier | None = None,
                 max_calls: int = 100_000) -> None:
        self.store = store
        self.resolver = resolver
        self.max_calls = max_calls
        self._classify = classify or _default_classifier()
        self._cache: dict[tuple, Classified] = {}
        self._pending_lock = threading.Lock()
        if resolver is not None:
            resolver.on_pod_added(self.resolve_pending)

    # -- reports --------------------------------------------------------------------------------

    def report(self, req: report_pb2.ReportRequest) -> int:
        """Store a report durably; returns the number of calls accepted. Raises InvalidReport."""
        if not req.agent_id or len(req.agent_id) > 256:
            raise InvalidReport("agent_id must be 1-256 characters")
        if len(req.calls) > self.max_calls:
            raise InvalidReport(f"batch has {len(req.calls)} calls; the limit is {self.max_calls} per report")
        previous = self.store.seen_report(req.agent_id, req.sequence)
        if previous is not None:
            return previous
        batch = Batch()
        now = int(time.time() * 1000)
        for i, call in enumerate(req.calls):
            err = validate_call(call)
            if err:
                raise InvalidReport(f"calls[{i}]: {err}")
            self._add(batch, call, req.node, now)
        return self.store.ingest(batch, agent_id=req.agent_id, sequence=req.sequence, accepted=len(req.calls))

    def _add(self, batch: Batch, call: report_pb2.ObservedCall, node: str, now: int) -> None:
        caller = call.caller
        count = call.count
        last = call.last_seen_unix_ms or now
        first = call.first_seen_unix_ms or last
        if caller.host:
            wl: WorkloadRef | None = host_workload(caller.node or node)
        else:
            if self.resolver is not None:
                wl = self.resolver.resolve(caller.namespace, caller.pod_name, caller.pod_uid)
            else:  # no pod source at all: trust what the agent knew
                wl = top_owner(PodInfo(caller.namespace, caller.pod_name, caller.pod_uid,
                                       caller.owner_kind, caller.owner_name))
        if wl is None:
            key: PendingKey = (caller.namespace, caller.pod_name, caller.pod_uid, signature(call))
            v = batch.pending.get(key)
            if v is None:
                batch.pending[key] = [count, first, last]
            else:
                v[0] += count
                v[1] = min(v[1], first)
                v[2] = max(v[2], last)
            return
        self._aggregate(batch, wl, call, count, first, last)

    def _aggregate(self, batch: Batch, wl: WorkloadRef, call: report_pb2.ObservedCall,
                   count: int, first: int, last: int) -> None:
        cls = self.classify(call)
        ns, kind, name = wl.namespace, wl.kind, wl.name
        denied_at, allowed_at = (last, 0) if cls.denied else (0, last)
        perms = batch.permissions
        for scope, perm, data in cls.permissions:
            key = (ns, kind, name, scope, perm, data)
            v = perms.get(key)
            if v is None:
                perms[key] = [count, first, last, denied_at, allowed_at]
            else:
                v[0] += count
                if first < v[1]:
                    v[1] = first
                if last > v[2]:
                    v[2] = last
                if denied_at > v[3]:
                    v[3] = denied_at
                if allowed_at > v[4]:
                    v[4] = allowed_at
        if cls.unknown:
            ukey = (ns, kind, name, call.service, call.account, call.method, call.path,
                    ",".join(sorted(call.query.keys())))
            u = batch.unknown.get(ukey)
            if u is None:
                batch.unknown[ukey] = [count, last]
            else:
                u[0] += count
                u[1] = max(u[1], last)

    def classify(self, call: report_pb2.ObservedCall) -> Classified:
        """The catalog's answer for this call signature (cached; the caller does not matter)."""
        key = (call.service, call.account, call.host, call.method, call.path,
               tuple(sorted(call.query.items())), tuple(sorted(call.headers.items())), call.status, call.error_code)
        hit = self._cache.get(key)
        if hit is not None:
            return hit
        c = self._classify(call)
        perms = []
        for g in c.grants:
            perms.extend((g.scope, a, 0) for a in sorted(g.actions))
            perms.extend((g.scope, d, 1) for d in sorted(g.data_actions))
        hit = Classified(tuple(perms), bool(c.unknown), bool(c.denied))
        if len(self._cache) >= CACHE_SIZE:
            self._cache.clear()
        self._cache[key] = hit
        return hit

    # -- calls from pods that were not known ----------------------------------------------------

    def resolve_pending(self) -> int:
        """Replay kept calls whose pod is now known; returns how many call signatures were resolved."""
        if self.resolver is None:
            return 0
        with self._pending_lock:
            batch = Batch()
            done: list[PendingKey] = []
            for (ns, pod, uid, sig), (calls, first, last) in self.store.pending():
                wl = self.resolver.resolve(ns, pod, uid)
                if wl is None:
                    continue
                call = report_pb2.ObservedCall.FromString(sig)
                try:
                    self._aggregate(batch, wl, call, calls, first, last)
                except Exception:  # noqa: BLE001 - a catalog failure must not lose the others
                    log.exception("cannot classify a kept call", extra={"fields": {"service": call.service}})
                    continue
                done.append((ns, pod, uid, sig))
            if done:
                self.store.ingest(batch, resolved_pending=done)
                log.info("resolved calls of pods that appeared", extra={"fields": {"signatures": len(done)}})
            return len(done)


def signature(call: report_pb2.ObservedCall) -> bytes:
    """The call without caller, count and times: what is kept for a pod not known yet."""
    c = report_pb2.ObservedCall()
    c.CopyFrom(call)
    c.ClearField("caller")
    c.count = 0
    c.first_seen_unix_ms = 0
    c.last_seen_unix_ms = 0
    return c.SerializeToString(deterministic=True)


def validate_call(call: report_pb2.ObservedCall) -> str | None:
    """None when the call can be stored, else what is wrong with it."""
    if call.service not in SERVICES:
        return f"service {call.service[:40]!r} is not one of {', '.join(sorted(SERVICES))}"
    m = call.method
    if not m or len(m) > 16 or not m.isalpha() or not m.isupper():
        return f"method {m[:20]!r} is not an upper-case HTTP method"
    if not call.path.startswith("/") or len(call.path) > MAX_PATH:
        return f"path must start with '/' and be at most {MAX_PATH} characters"
    if call.count < 1:
        return "count must be at least 1"
    if call.first_seen_unix_ms < 0 or call.last_seen_unix_ms < 0:
        return "first/last seen must not be negative"
    if call.last_seen_unix_ms and call.first_seen_unix_ms > call.last_seen_unix_ms:
        return "first_seen_unix_ms is after last_seen_unix_ms"
    if len(call.query) > MAX_MAP_ENTRIES or len(call.headers) > MAX_MAP_ENTRIES:
        return f"at most {MAX_MAP_ENTRIES} query keys and headers"
    if len(call.account) > MAX_TEXT or len(call.host) > MAX_TEXT or len(call.error_code) > MAX_TEXT:
        return f"account, host and error_code must be at most {MAX_TEXT} characters"
    caller = call.caller
    if not caller.host and (not caller.namespace or not caller.pod_name):
        return "caller needs namespace and pod_name (or host=true)"
    if len(caller.namespace) > 253 or len(caller.pod_name) > 253:
        return "caller namespace/pod_name longer than 253 characters"
    return None
