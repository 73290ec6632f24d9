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
from .store import PermissionRow, UnknownRow

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


def permission_status(row: PermissionRow, applied: bool) -> str:
    if applied:
        return "applied"
    if row.last_denied and row.last_denied >= row.last_allowed:
        return "denied"
    return "missing"


def build_intents(rows: Iterable[PermissionRow], applied: AppliedIndex, status: str = "") -> list[Intent]:
    """Rows (ordered by workload and scope, as the store returns them) -> entries, in that order
    and then applied, missing, denied."""
    out: list[Intent] = []
    group: dict[str, Intent] = {}
    current: tuple[str, str, str, str] | None = None
    lookup_key: tuple[str, str, str] | None = None
    wi = None
    for r in rows:
        key = (r.namespace, r.kind, r.name, r.scope)
        if key != current:
            _flush(group, out, status)
            current = key
            if (r.namespace, r.kind, r.name) != lookup_key:
                lookup_key = (r.namespace, r.kind, r.name)
                wi = applied.lookup(r.namespace, r.kind, r.name)
        st = permission_status(r, wi is not None and wi.covers(r.scope, r.permission, r.data))
        e = group.get(st)
        if e is None:
            e = group[st] = Intent(r.namespace, r.kind, r.name, r.scope, st, [], [], 0, r.first_seen, r.last_seen)
        (e.data_actions if r.data else e.actions).append(r.permission)
        if r.calls > e.calls:
            e.calls = r.calls
        if r.first_seen < e.first_seen:
            e.first_seen = r.first_seen
        if r.last_seen > e.last_seen:
            e.last_seen = r.last_seen
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
