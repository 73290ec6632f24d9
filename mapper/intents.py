"""Discovered intents with their status: each stored permission is applied (an applied
ClientIntents grants it, at its scope or above), denied (its latest call got a 403 and it is not
applied) or missing; permissions of one (workload, scope) with the same status form one entry.

``calls`` of an entry is the highest call count among its permissions (one call may need several
permissions, so a sum would count it twice).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .applied import AppliedIndex
from .store import UnknownRow

STATUSES = ("applied", "missing", "denied")


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


def build_intents(rows: Iterable[tuple], applied: AppliedIndex, status: str = "") -> list[Intent]:
    """Permission tuples (PermissionRow's field order, sorted by workload and scope as the store
    returns them) -> entries, in that order and then applied, missing, denied."""
    out: list[Intent] = []
    group: dict[str, Intent] = {}
    current: tuple | None = None
    lookup_key: tuple | None = None
    wi = None
    for ns, kind, name, scope, perm, data, calls, first, last, last_denied, last_allowed in rows:
        key = (ns, kind, name, scope)
        if key != current:
            if group:
                _flush(group, out, status)
            current = key
            if key[:3] != lookup_key:
                lookup_key = key[:3]
                wi = applied.lookup(ns, kind, name)
        if wi is not None and wi.covers(scope, perm, bool(data)):
            st = "applied"
        elif last_denied and last_denied >= last_allowed:
            st = "denied"
        else:
            st = "missing"
        e = group.get(st)
        if e is None:
            e = group[st] = Intent(ns, kind, name, scope, st, [], [], calls, first, last)
        else:
            if calls > e.calls:
                e.calls = calls
            if first < e.first_seen:
                e.first_seen = first
            if last > e.last_seen:
                e.last_seen = last
        (e.data_actions if data else e.actions).append(perm)
    _flush(group, out, status)
    return out


def _flush(group: dict[str, Intent], out: list[Intent], status: str) -> None:
    for st in STATUSES:
        e = group.get(st)
        if e is not None and (not status or status == st):
            out.append(e)
    group.clear()


def unknown_to_json(u: UnknownRow) -> dict:
    return {"namespace": u.namespace, "workload": {"kind": u.kind, "name": u.name}, "service": u.service,
            "account": u.account, "method": u.method, "path": u.path, "queryKeys": u.query_keys,
            "calls": u.calls, "lastSeen": u.last_seen}
