"""Discovered intents with their status: each stored permission is applied (an applied
ClientIntents grants it, at its scope or above), denied (its latest call got a 403 and it is not
applied) or missing; permissions of one (workload, scope) with the same status form one entry.

``calls`` of an entry is the highest call count among its permissions (one call may need several
permissions, so a sum would count it twice).

Entries are read from the store's in-memory aggregate (:meth:`Store.view`), either as
:class:`Intent` objects (JSON API, export) or encoded straight into ListIntentsResponse wire
bytes (:func:`encode_list`, the gRPC list) without building a message object per entry.
"""
from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from .applied import AppliedIndex
from .store import STRIDE, UnknownRow, View

STATUSES = ("applied", "missing", "denied")

Group = tuple[int, int, int, list[int], int, int, int]  # wid, sid, status index, pids, calls, first, last


@dataclass(slots=True)
class Intent:
    namespace: str
    kind: str
    name: str
    scope: str
    status: str
    actions: list[str]
    data_actions: list[str]
    calls: int
    first_seen: int
    last_seen: int

    def to_json(self) -> dict:
        return {"namespace": self.namespace, "workload": {"kind": self.kind, "name": self.name},
                "scope": self.scope, "actions": self.actions, "dataActions": self.data_actions,
                "status": self.status, "calls": self.calls, "firstSeen": self.first_seen,
                "lastSeen": self.last_seen}


def groups(view: View, applied: AppliedIndex, namespace: str = "", workload: str = "",
           status: str = "") -> Iterator[Group]:
    """(wid, sid, status, permission ids, calls, first, last) per entry, in display order."""
    perms, scopes, workloads, grants = view.permissions, view.scopes, view.workloads, view.grants
    want = STATUSES.index(status) if status else -1
    for wid in view.workload_ids(namespace, workload):
        wi = applied.lookup(*workloads[wid])
        a = grants[wid]
        n = len(a)
        j = 0
        while j < n:
            sid = a[j]
            found: list[list | None] = [None, None, None]
            scope = scopes[sid]
            while j < n and a[j] == sid:
                pd = a[j + 1]
                pid = pd >> 1
                if wi is not None and wi.covers(scope, perms[pid][0], bool(perms[pid][1])):
                    st = 0
                else:
                    st = 2 if pd & 1 else 1
                g = found[st]
                if g is None:
                    found[st] = [[pid], a[j + 2], a[j + 3], a[j + 4]]
                else:
                    g[0].append(pid)
                    if a[j + 2] > g[1]:
                        g[1] = a[j + 2]
                    if a[j + 3] < g[2]:
                        g[2] = a[j + 3]
                    if a[j + 4] > g[3]:
                        g[3] = a[j + 4]
                j += STRIDE
            for st in (0, 1, 2):
                g = found[st]
                if g is not None and (want < 0 or want == st):
                    yield wid, sid, st, g[0], g[1], g[2], g[3]


def build_intents(view: View, applied: AppliedIndex, namespace: str = "", workload: str = "",
                  status: str = "") -> list[Intent]:
    """The entries as Intent objects, ordered by namespace, workload, scope, then applied, missing, denied."""
    perms, scopes, workloads = view.permissions, view.scopes, view.workloads
    out = []
    for wid, sid, st, pids, calls, first, last in groups(view, applied, namespace, workload, status):
        ns, kind, name = workloads[wid]
        names = [perms[p] for p in pids]
        out.append(Intent(ns, kind, name, scopes[sid], STATUSES[st], [p for p, d in names if not d],
                          [p for p, d in names if d], calls, first, last))
    return out


# -- ListIntentsResponse wire bytes (field numbers of proto/clearance/v1/intents.proto) -----------

# (message, field) -> the tag byte written for it: (field number << 3) | wire type (0 varint, 2 bytes).
# tests/test_proto_wire.py checks each against intents_pb2.DESCRIPTOR.
TAGS: dict[tuple[str, str], bytes] = {
    ("ListIntentsResponse", "intents"): b"\x0a",  # 1, bytes
    ("DiscoveredIntent", "namespace"): b"\x0a",  # 1, bytes
    ("DiscoveredIntent", "workload"): b"\x12",  # 2, bytes
    ("DiscoveredIntent", "scope"): b"\x1a",  # 3, bytes
    ("DiscoveredIntent", "actions"): b"\x22",  # 4, bytes
    ("DiscoveredIntent", "data_actions"): b"\x2a",  # 5, bytes
    ("DiscoveredIntent", "status"): b"\x32",  # 6, bytes
    ("DiscoveredIntent", "calls"): b"\x38",  # 7, varint
    ("DiscoveredIntent", "first_seen_unix_ms"): b"\x40",  # 8, varint
    ("DiscoveredIntent", "last_seen_unix_ms"): b"\x48",  # 9, varint
    ("Workload", "kind"): b"\x0a",  # 1, bytes
    ("Workload", "name"): b"\x12",  # 2, bytes
}
_INTENTS = TAGS["ListIntentsResponse", "intents"]
_NAMESPACE, _WORKLOAD, _SCOPE, _ACTIONS, _DATA_ACTIONS, _STATUS, _CALLS, _FIRST, _LAST = (
    TAGS["DiscoveredIntent", f] for f in ("namespace", "workload", "scope", "actions", "data_actions", "status",
                                          "calls", "first_seen_unix_ms", "last_seen_unix_ms"))
_KIND, _NAME = TAGS["Workload", "kind"], TAGS["Workload", "name"]

_SMALL = [bytes((i,)) for i in range(128)]
_STATUS_FIELDS = [_STATUS + bytes((len(s),)) + s.encode() for s in STATUSES]


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    if n < 128:
        return _SMALL[n]
    if n < 16384:
        return bytes((n & 127 | 128, n >> 7))
    out = bytearray()
    while n >= 128:
        out.append(n & 127 | 128)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(tag: bytes, value: str) -> bytes:
    """A length-delimited field; empty (proto3 default) when ``value`` is empty."""
    if not value:
        return b""
    raw = value.encode()
    return tag + varint(len(raw)) + raw


class Encoder:
    """Writes DiscoveredIntent entries as ListIntentsResponse wire bytes, one workload at a time:
    the same bytes protobuf writes for :func:`build_intents`' entries, without a message object
    per entry. Valid while the view it reads is held."""

    def __init__(self, view: View, applied: AppliedIndex, status: str = "") -> None:
        self.view = view
        self.applied = applied
        self.want = STATUSES.index(status) if status else -1
        self._perm_fields: list[tuple[bytes, int] | None] = [None] * len(view.permissions)
        self._times: dict[int, bytes] = {}  # varints of recent times: many entries share them

    def workload(self, wid: int) -> bytes:
        """The ``intents`` fields (tag, length, DiscoveredIntent) of one workload's entries."""
        view, want, times, perm_fields = self.view, self.want, self._times, self._perm_fields
        perms, scopes = view.permissions, view.scopes
        ns, kind, name = view.workloads[wid]
        wi = self.applied.lookup(ns, kind, name)
        wl = _field(_KIND, kind) + _field(_NAME, name)
        head = _field(_NAMESPACE, ns) + _WORKLOAD + varint(len(wl)) + wl
        out: list[bytes] = []
        write = out.append

        def emit(sid: int, found: list) -> None:
            raw = scopes[sid].encode()
            scope_field = _SCOPE + (_SMALL[len(raw)] if len(raw) < 128 else varint(len(raw))) + raw
            for st in (0, 1, 2):
                g = found[st]
                if g is None or (want >= 0 and want != st):
                    continue
                acts, datas, calls, first, last = g
                if len(times) > 4096:
                    times.clear()
                t1 = times.get(first)
                if t1 is None:
                    t1 = times[first] = _FIRST + varint(first) if first else b""
                t2 = times.get(-1 - last)
                if t2 is None:
                    t2 = times[-1 - last] = _LAST + varint(last) if last else b""
                body = b"".join((head, scope_field, acts, datas, _STATUS_FIELDS[st],
                                 _CALLS + varint(calls) if calls else b"", t1, t2))
                size = len(body)
                write(_INTENTS + (bytes((size & 127 | 128, size >> 7)) if 128 <= size < 16384 else varint(size)))
                write(body)

        it = iter(view.grants[wid])
        current = -1
        found: list = []  # per status: [actions, data actions, calls, first, last]
        for sid, pd, calls, first, last in zip(it, it, it, it, it):
            if sid != current:
                if found:
                    emit(current, found)
                current = sid
                found = [None, None, None]
            pid = pd >> 1
            f = perm_fields[pid]
            if f is None:
                perm, data = perms[pid]
                f = perm_fields[pid] = (_field(_DATA_ACTIONS if data else _ACTIONS, perm), data)
            if wi is not None and wi.covers(scopes[sid], perms[pid][0], bool(f[1])):
                st = 0
            else:
                st = 2 if pd & 1 else 1
            g = found[st]
            if g is None:
                found[st] = [b"", f[0], calls, first, last] if f[1] else [f[0], b"", calls, first, last]
            else:
                g[f[1]] += f[0]
                if calls > g[2]:
                    g[2] = calls
                if first < g[3]:
                    g[3] = first
                if last > g[4]:
                    g[4] = last
        if found:
            emit(current, found)
        return b"".join(out)


def encode_list(view: View, applied: AppliedIndex, namespace: str = "", workload: str = "",
                status: str = "", unknown: bytes = b"") -> bytes:
    """The serialised ListIntentsResponse of these entries; ``unknown`` (the serialised
    ``unknown`` field of a ListIntentsResponse) is appended as is."""
    enc = Encoder(view, applied, status)
    return b"".join([*map(enc.workload, view.workload_ids(namespace, workload)), unknown])


class ListCache:
    """The unfiltered ListIntentsResponse, kept and patched: after a write, only the workloads
    whose grants changed are encoded again, the others are copied from the previous response.
    A different AppliedIndex (ClientIntents changed) encodes everything again."""

    def __init__(self) -> None:
        self._data = b""
        self._key: tuple[int, int] | None = None  # (store generation, id of the AppliedIndex)
        self._applied: AppliedIndex | None = None
        self._spans: dict[int, tuple[int, int, int]] = {}  # wid -> (start, end, generation encoded)

    def get(self, view: View, applied: AppliedIndex, unknown: bytes | Callable[[], bytes]) -> bytes:
        """The response for this view and index; ``unknown`` (its encoded unknown calls, or what
        encodes them) is only used when the kept response is out of date: every write that
        changes the unknown calls bumps the store generation."""
        if self._key == (view.generation, id(applied)) and self._applied is applied:
            return self._data
        if callable(unknown):
            unknown = unknown()
        reuse = self._applied is applied
        old = memoryview(self._data)
        spans = self._spans if reuse else {}
        self._data, self._key, self._applied, self._spans = b"", None, None, {}
        enc = Encoder(view, applied)
        changed = view.changed
        pieces: list[bytes | memoryview] = []
        new_spans = {}
        at = 0
        for wid in view.workload_ids():
            span = spans.get(wid)
            gen = changed.get(wid, 0)
            if span is not None and span[2] == gen:
                pieces.append(old[span[0]:span[1]])
                size = span[1] - span[0]
            else:
                pieces.append(enc.workload(wid))
                size = len(pieces[-1])
            new_spans[wid] = (at, at + size, gen)
            at += size
        pieces.append(unknown)
        data = b"".join(pieces)
        for p in pieces:  # the slices of ``old`` must go before it can
            if isinstance(p, memoryview):
                p.release()
        del pieces
        old.release()
        self._data, self._key, self._applied, self._spans = data, (view.generation, id(applied)), applied, new_spans
        return data


def unknown_to_json(u: UnknownRow) -> dict:
    return {"namespace": u.namespace, "workload": {"kind": u.kind, "name": u.name}, "service": u.service,
            "account": u.account, "method": u.method, "path": u.path, "queryKeys": u.query_keys,
            "calls": u.calls, "lastSeen": u.last_seen}
