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

from collections.abc import Iterator
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
    perms, scopes, workloads = view.permissions, view.scopes, view.workloads
    want = STATUSES.index(status) if status else -1
    current = -1
    wi = None
    for wid, sid, a in view.entries(namespace, workload):
        if wid != current:
            current = wid
            wi = applied.lookup(*workloads[wid])
        n = len(a)
        if n == STRIDE and wi is None:  # one permission, nothing applied: the common case
            st = 2 if a[0] & 1 else 1
            if want < 0 or want == st:
                yield wid, sid, st, [a[0] >> 1], a[1], a[2], a[3]
            continue
        found: list[list | None] = [None, None, None]
        scope = scopes[sid]
        for j in range(0, n, STRIDE):
            pd = a[j]
            pid = pd >> 1
            if wi is not None and wi.covers(scope, perms[pid][0], bool(perms[pid][1])):
                st = 0
            else:
                st = 2 if pd & 1 else 1
            g = found[st]
            if g is None:
                found[st] = [[pid], a[j + 1], a[j + 2], a[j + 3]]
            else:
                g[0].append(pid)
                if a[j + 1] > g[1]:
                    g[1] = a[j + 1]
                if a[j + 2] < g[2]:
                    g[2] = a[j + 2]
                if a[j + 3] > g[3]:
                    g[3] = a[j + 3]
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

_SMALL = [bytes((i,)) for i in range(128)]
_STATUS_FIELDS = [b"\x32" + bytes((len(s),)) + s.encode() for s in STATUSES]  # DiscoveredIntent.status = 6


def varint(n: int) -> bytes:
    """Protobuf base-128 varint of a non-negative int."""
    if n < 128:
        return _SMALL[n]
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


def encode_list(view: View, applied: AppliedIndex, namespace: str = "", workload: str = "",
                status: str = "", unknown: bytes = b"") -> bytes:
    """The serialised ListIntentsResponse of these entries; ``unknown`` is appended as is (the
    serialised ``unknown`` field of a ListIntentsResponse)."""
    perms, scopes, workloads = view.permissions, view.scopes, view.workloads
    out = bytearray()
    perm_fields: dict[int, tuple[bytes, int]] = {}
    times: dict[int, bytes] = {}  # varint of recent times: many entries share them
    current = -1
    head = b""
    for wid, sid, st, pids, calls, first, last in groups(view, applied, namespace, workload, status):
        if wid != current:
            current = wid
            ns, kind, name = workloads[wid]
            wl = _field(b"\x0a", kind) + _field(b"\x12", name)
            head = _field(b"\x0a", ns) + b"\x12" + varint(len(wl)) + wl  # namespace = 1, workload = 2
        acts = b""
        datas = b""
        for p in pids:
            f = perm_fields.get(p)
            if f is None:
                perm, data = perms[p]
                f = perm_fields[p] = (_field(b"\x2a" if data else b"\x22", perm), data)  # data_actions = 5, actions = 4
            if f[1]:
                datas += f[0]
            else:
                acts += f[0]
        if len(times) > 4096:
            times.clear()
        t1 = times.get(first)
        if t1 is None:
            t1 = times[first] = b"\x40" + varint(first) if first else b""  # first_seen_unix_ms = 8
        t2 = times.get(-1 - last)
        if t2 is None:
            t2 = times[-1 - last] = b"\x48" + varint(last) if last else b""  # last_seen_unix_ms = 9
        body = b"".join((head, _field(b"\x1a", scopes[sid]), acts, datas, _STATUS_FIELDS[st],
                         b"\x38" + varint(calls) if calls else b"", t1, t2))  # scope = 3, calls = 7
        out += b"\x0a"  # ListIntentsResponse.intents = 1
        out += varint(len(body))
        out += body
    out += unknown
    return bytes(out)


def unknown_to_json(u: UnknownRow) -> dict:
    return {"namespace": u.namespace, "workload": {"kind": u.kind, "name": u.name}, "service": u.service,
            "account": u.account, "method": u.method, "path": u.path, "queryKeys": u.query_keys,
            "calls": u.calls, "lastSeen": u.last_seen}
