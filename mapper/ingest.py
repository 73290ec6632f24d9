"""From a report to a durable batch: validate each call, classify it (cached per call signature),
resolve its workload, and aggregate per (workload, scope, permission) in memory before one upsert.

Calls from pods not known yet are kept (in the store, as their call signature) and replayed by
:meth:`Ingestor.resolve_pending` once the pod appears. So are calls the agent sent as the host's
but with a pod uid (it could not resolve the pod in time): by uid, else the node's Host after
``uid_pending_expiry_s``.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from google.protobuf.message import DecodeError

from clearance.v1 import report_pb2

from . import wire

from .store import Batch, PendingKey, Store
from .workloads import PendingPod, PodInfo, Resolver, WorkloadRef, host_workload, top_owner

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
    unknown: tuple[str, str, str, str, str] | None  # (service, account, method, path, query keys) when unknown
    denied: bool


Classifier = Callable[[report_pb2.ObservedCall], object]


def _default_classifier() -> Classifier:
    from clearance.mapper.catalog import classify

    return classify


class Ingestor:
    """Turns reports into store batches. Thread-safe.

    The hot path works on the report's wire bytes (see ``wire``): per call it reads the caller
    bytes, count and times, and the signature bytes; callers are resolved once per batch and
    signatures validated and classified once (cached); permissions are expanded once per distinct
    (workload, signature) of the batch.
    """

    def __init__(self, store: Store, resolver: Resolver | None, *, classify: Classifier | None = None,
                 max_calls: int = 100_000, uid_pending_expiry_s: float = 3600.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.resolver = resolver
        self.max_calls = max_calls
        self.uid_pending_expiry_s = uid_pending_expiry_s
        self._clock = clock
        self._classify = classify or _default_classifier()
        self._sigs: dict[bytes, Classified | str] = {}
        self._pending_lock = threading.Lock()
        if resolver is not None:
            resolver.on_pod_added(self.resolve_pending)

    # -- reports --------------------------------------------------------------------------------

    def report(self, req: report_pb2.ReportRequest) -> int:
        """Store a report durably; returns the number of calls accepted. Raises InvalidReport."""
        return self.report_bytes(req.SerializeToString())

    def report_bytes(self, data: bytes) -> int:
        """Like :meth:`report`, from the serialised ReportRequest (what gRPC received)."""
        try:
            head, sigs = wire.split(data)
        except DecodeError:
            raise InvalidReport("the report is not a valid ReportRequest message") from None
        if not head.agent_id or len(head.agent_id) > 256:
            raise InvalidReport("agent_id must be 1-256 characters")
        n = len(sigs)
        if n > self.max_calls:
            raise InvalidReport(f"batch has {n} calls; the limit is {self.max_calls} per report")
        previous = self.store.seen_report(head.agent_id, head.sequence)
        if previous is not None:
            return previous
        now = int(time.time() * 1000)
        node = head.node
        callers: dict[bytes, int] = {}  # caller bytes -> index of its workload in refs
        ref_index: dict[WorkloadRef | PendingPod, int] = {}
        refs: list[WorkloadRef | PendingPod] = []
        per_ref: list[dict[bytes, list]] = []  # signature -> [count, first, last, Classified]
        callers_get = callers.get
        classified_get = self._sigs.get
        for hc, sig in zip(head.calls, sigs):
            count = hc.count
            first = hc.first_seen_unix_ms
            last = hc.last_seen_unix_ms
            if count < 1 or first < 0 or last < 0 or (last and first > last):
                raise InvalidReport(self._first_problem(head, sigs, now))
            if not last:
                last = now
            if not first:
                first = last
            cb = hc.caller
            r = callers_get(cb)
            if r is None:
                wl = self._caller(cb, node)
                if wl.__class__ is str:
                    raise InvalidReport(self._first_problem(head, sigs, now))
                r = ref_index.get(wl)  # type: ignore[arg-type]
                if r is None:
                    r = ref_index[wl] = len(refs)  # type: ignore[index]
                    refs.append(wl)  # type: ignore[arg-type]
                    per_ref.append({})
                callers[cb] = r
            pairs = per_ref[r]
            v = pairs.get(sig)
            if v is None:
                c = classified_get(sig)
                if c is None:
                    c = self._signature(sig)
                    if c.__class__ is str:
                        raise InvalidReport(self._first_problem(head, sigs, now))
                pairs[sig] = [count, first, last, c]
            else:
                v[0] += count
                if first < v[1]:
                    v[1] = first
                if last > v[2]:
                    v[2] = last
        batch = Batch()
        for wl, pairs in zip(refs, per_ref):
            if wl.__class__ is WorkloadRef:
                for count, first, last, c in pairs.values():
                    self._aggregate(batch, wl, c, count, first, last)  # type: ignore[arg-type]
            else:
                for sig, (count, first, last, _) in pairs.items():
                    batch.pending[(*wl, sig)] = [count, first, last]  # type: ignore[index]
        if head.lost_events:
            log.info("agent lost events", extra={"fields": {"agent": head.agent_id[:64], "lost": head.lost_events}})
        return self.store.ingest(batch, agent_id=head.agent_id, sequence=head.sequence, accepted=n)

    def _first_problem(self, head: object, sigs: list[bytes], now: int) -> str:
        """What is wrong with the first call of a refused report, checked call by call."""
        callers: dict[bytes, object] = {}
        for i, (hc, sig) in enumerate(zip(head.calls, sigs)):  # type: ignore[attr-defined]
            count, first, last = hc.count, hc.first_seen_unix_ms, hc.last_seen_unix_ms
            if count < 1 or first < 0 or last < 0 or (last and first > last):
                return f"calls[{i}]: {_counter_problem(count, first, last)}"
            wl = callers.get(hc.caller)
            if wl is None:
                wl = callers[hc.caller] = self._caller(hc.caller, head.node)  # type: ignore[attr-defined]
            if isinstance(wl, str):
                return f"calls[{i}]: {wl}"
            c = self._sigs.get(sig) or self._signature(sig)
            if isinstance(c, str):
                return f"calls[{i}]: {c}"
        return "the report cannot be stored"

    def _caller(self, raw: bytes, node: str) -> WorkloadRef | PendingPod | str:
        """The caller's workload, the PendingPod when it is not known yet, or what is wrong."""
        try:
            caller = report_pb2.Caller.FromString(raw)
        except DecodeError:
            return "caller is not a valid Caller message"
        if caller.host:
            return self._host_caller(caller.node or node, caller.pod_uid)
        if not caller.namespace or not caller.pod_name:
            return "caller needs namespace and pod_name (or host=true)"
        if len(caller.namespace) > 253 or len(caller.pod_name) > 253 or len(caller.pod_uid) > 253:
            return "caller namespace/pod_name/pod_uid longer than 253 characters"
        if self.resolver is None:  # no pod source at all: trust what the agent knew
            return top_owner(PodInfo(caller.namespace, caller.pod_name, caller.pod_uid,
                                     caller.owner_kind, caller.owner_name))
        wl = self.resolver.resolve(caller.namespace, caller.pod_name, caller.pod_uid)
        return wl if wl is not None else PendingPod(caller.namespace, caller.pod_name, caller.pod_uid)

    def _host_caller(self, node: str, uid: str) -> WorkloadRef | PendingPod | str:
        """A host caller with a pod uid is a pod the agent could not resolve in time: its workload by
        uid, else kept pending (as ``PendingPod("", node, uid)``: no pod has an empty namespace)
        until the pod appears or ``uid_pending_expiry_s`` passes, and only then the node's Host."""
        if not uid:
            return host_workload(node)
        if len(uid) > 253 or len(node) > 253:
            return "caller pod_uid/node longer than 253 characters"
        by_uid = getattr(self.resolver, "resolve_uid", None)
        if by_uid is None:  # no pod source that knows uids
            return host_workload(node)
        wl = by_uid(uid)
        return wl if wl is not None else PendingPod("", node, uid)

    def _signature(self, sig: bytes) -> Classified | str:
        """Validate and classify one call signature (cached)."""
        call = report_pb2.ObservedCall.FromString(sig)
        err = validate_signature(call)
        if err is not None:
            return err  # not cached: bad input must not fill the cache
        c = self._classify(call)
        perms = []
        for g in c.grants:
            perms.extend((g.scope, a, 0) for a in sorted(g.actions))
            perms.extend((g.scope, d, 1) for d in sorted(g.data_actions))
        unknown = (call.service, call.account, call.method, call.path,
                   ",".join(sorted(call.query.keys()))) if c.unknown else None
        result = Classified(tuple(perms), unknown, bool(c.denied))
        if len(self._sigs) >= CACHE_SIZE:
            self._sigs.clear()
        self._sigs[sig] = result
        return result

    @staticmethod
    def _aggregate(batch: Batch, wl: WorkloadRef, cls: Classified, count: int, first: int, last: int) -> None:
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
                v[1] = min(v[1], first)
                v[2] = max(v[2], last)
                v[3] = max(v[3], denied_at)
                v[4] = max(v[4], allowed_at)
        if cls.unknown is not None:
            ukey = (ns, kind, name, *cls.unknown)
            u = batch.unknown.get(ukey)
            if u is None:
                batch.unknown[ukey] = [count, last]
            else:
                u[0] += count
                u[1] = max(u[1], last)

    # -- calls from pods that were not known ----------------------------------------------------

    def resolve_pending(self) -> int:
        """Replay kept calls whose pod is now known; returns how many call signatures were resolved."""
        if self.resolver is None:
            return 0
        with self._pending_lock:
            batch = Batch()
            done: list[PendingKey] = []
            expired_before = int((self._clock() - self.uid_pending_expiry_s) * 1000)
            for (ns, pod, uid, sig), (calls, first, last) in self.store.pending():
                if ns:
                    wl = self.resolver.resolve(ns, pod, uid)
                else:  # a host caller with a uid (see _host_caller); ``pod`` holds the node
                    by_uid = getattr(self.resolver, "resolve_uid", None)
                    wl = by_uid(uid) if by_uid is not None else None
                    if wl is None and first < expired_before:
                        wl = host_workload(pod)
                if wl is None:
                    continue
                try:
                    c = self._sigs.get(sig) or self._signature(sig)
                except Exception:  # noqa: BLE001 - a catalog failure must not lose the others
                    log.exception("cannot classify a kept call")
                    continue
                if isinstance(c, Classified):
                    self._aggregate(batch, wl, c, calls, first, last)
                done.append((ns, pod, uid, sig))
            if done:
                self.store.ingest(batch, resolved_pending=done)
                log.info("resolved calls of pods that appeared", extra={"fields": {"signatures": len(done)}})
            return len(done)


def _counter_problem(count: int, first: int, last: int) -> str:
    if count < 1:
        return "count must be at least 1"
    if first < 0 or last < 0:
        return "first/last seen must not be negative"
    return "first_seen_unix_ms is after last_seen_unix_ms"


def validate_signature(call: report_pb2.ObservedCall) -> str | None:
    """None when the call's signature fields can be stored, else what is wrong with them."""
    if call.service not in SERVICES:
        return f"service {call.service[:40]!r} is not one of {', '.join(sorted(SERVICES))}"
    m = call.method
    if not m or len(m) > 16 or not m.isalpha() or not m.isupper():
        return f"method {m[:20]!r} is not an upper-case HTTP method"
    if not call.path.startswith("/") or len(call.path) > MAX_PATH:
        return f"path must start with '/' and be at most {MAX_PATH} characters"
    if len(call.query) > MAX_MAP_ENTRIES or len(call.headers) > MAX_MAP_ENTRIES:
        return f"at most {MAX_MAP_ENTRIES} query keys and headers"
    for k, v in (*call.query.items(), *call.headers.items()):
        if len(k) > MAX_TEXT or len(v) > MAX_TEXT:
            return f"query key or header {k[:40]!r} longer than {MAX_TEXT} characters"
    if len(call.account) > MAX_TEXT or len(call.host) > MAX_TEXT or len(call.error_code) > MAX_TEXT:
        return f"account, host and error_code must be at most {MAX_TEXT} characters"
    return None
