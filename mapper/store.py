"""SQLite store (WAL) of discovered permissions, unknown calls, calls from pods not yet known,
and the (agent, sequence) pairs already acknowledged; plus an in-memory aggregate of the
discovered permissions that queries read instead of the database.

One row per discovered *permission* (workload, scope, permission), with workloads, scopes and
permission names interned to integer ids. The status (applied / missing / denied) is decided per
permission, then grouped for display. A batch is written in one transaction together with its
(agent, sequence) marker, with ``synchronous=FULL``: once :meth:`Store.ingest` returns, the batch
survives a crash. The in-memory aggregate is updated only after the commit.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS workloads (
    id INTEGER PRIMARY KEY, namespace TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
    UNIQUE (namespace, kind, name));
CREATE TABLE IF NOT EXISTS scopes (id INTEGER PRIMARY KEY, scope TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS permission_names (
    id INTEGER PRIMARY KEY, permission TEXT NOT NULL, data INTEGER NOT NULL, UNIQUE (permission, data));
CREATE TABLE IF NOT EXISTS grants (
    workload INTEGER NOT NULL, scope INTEGER NOT NULL, permission INTEGER NOT NULL,
    calls INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    last_denied INTEGER NOT NULL, last_allowed INTEGER NOT NULL,
    PRIMARY KEY (workload, scope, permission)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS unknown (
    namespace TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, service TEXT NOT NULL,
    account TEXT NOT NULL, method TEXT NOT NULL, path TEXT NOT NULL, query_keys TEXT NOT NULL,
    calls INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    PRIMARY KEY (namespace, kind, name, service, account, method, path, query_keys)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending (
    namespace TEXT NOT NULL, pod TEXT NOT NULL, uid TEXT NOT NULL, signature BLOB NOT NULL,
    calls INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    PRIMARY KEY (namespace, pod, uid, signature)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
    agent_id TEXT NOT NULL, sequence INTEGER NOT NULL, accepted INTEGER NOT NULL,
    PRIMARY KEY (agent_id, sequence)
) WITHOUT ROWID;
"""

_UPSERT_GRANT = (
    "INSERT INTO grants VALUES (?,?,?,?,?,?,?,?) "
    "ON CONFLICT DO UPDATE SET calls=calls+excluded.calls, "
    "first_seen=min(first_seen, excluded.first_seen), last_seen=max(last_seen, excluded.last_seen), "
    "last_denied=max(last_denied, excluded.last_denied), last_allowed=max(last_allowed, excluded.last_allowed)")

# Keys of the aggregate dictionaries (see Batch).
PermKey = tuple[str, str, str, str, str, int]  # namespace, kind, name, scope, permission, data(0/1)
UnknownKey = tuple[str, str, str, str, str, str, str, str]
PendingKey = tuple[str, str, str, bytes]  # namespace, pod, uid, signature
WorkloadKey = tuple[str, str, str]  # namespace, kind, name

REPORTS_KEPT_PER_AGENT = 4096
STRIDE = 5  # values per permission in a workload's grants array: scope id, permission id * 2 + denied, calls, first, last


@dataclass
class Batch:
    """One report aggregated in memory: every value is a mutable list of counters."""

    permissions: dict[PermKey, list[int]] = field(default_factory=dict)  # calls, first, last, last_denied, last_allowed
    unknown: dict[UnknownKey, list[int]] = field(default_factory=dict)  # calls, last
    pending: dict[PendingKey, list[int]] = field(default_factory=dict)  # calls, first, last


@dataclass(frozen=True, slots=True)
class PermissionRow:
    namespace: str
    kind: str
    name: str
    scope: str
    permission: str
    data: bool
    calls: int
    first_seen: int
    last_seen: int
    last_denied: int
    last_allowed: int


@dataclass(frozen=True, slots=True)
class UnknownRow:
    namespace: str
    kind: str
    name: str
    service: str
    account: str
    method: str
    path: str
    query_keys: str
    calls: int
    last_seen: int


class View:
    """The in-memory aggregate as queries see it, valid while :meth:`Store.view` is held.

    ``workloads[wid]`` is (namespace, kind, name), ``scopes[sid]`` the scope, ``permissions[pid]``
    (permission, data 0/1). ``grants[wid]`` is an array of STRIDE values per discovered permission
    of the workload, sorted by (scope, permission, data): scope id, pid * 2 + denied (its latest
    call was refused), calls, first seen, last seen.
    """

    __slots__ = ("workloads", "scopes", "permissions", "grants", "changed", "generation", "_store")

    def __init__(self, store: Store) -> None:
        self._store = store
        self.workloads = store._wl
        self.scopes = store._scopes
        self.permissions = store._perms
        self.grants = store._grants
        self.changed = store.changed  # workload id -> generation of its last change (absent: loaded)
        self.generation = store.generation

    def workload_ids(self, namespace: str = "", workload: str = "") -> list[int]:
        """Workloads with grants, ordered by (namespace, kind, name), optionally filtered."""
        order = self._store._sorted_workloads()
        if not namespace and not workload:
            return order
        wl = self.workloads
        return [w for w in order if (not namespace or wl[w][0] == namespace) and (not workload or wl[w][2] == workload)]


class Store:
    """Thread-safe: writes are serialised by a lock; each thread reads through its own connection.
    The in-memory aggregate is guarded by its own lock (see :meth:`view`)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._write_lock = threading.Lock()
        self._mem_lock = threading.Lock()
        self._local = threading.local()
        self._writer = self._connect()
        self._wl: list[WorkloadKey] = []
        self._wl_ids: dict[WorkloadKey, int] = {}
        self._scopes: list[str] = []
        self._scope_ids: dict[str, int] = {}
        self._perms: list[tuple[str, int]] = []
        self._perm_ids: dict[tuple[str, int], int] = {}
        self._grants: dict[int, array] = {}  # workload id -> see View
        self._order: list[int] | None = None
        self.generation = 0  # bumped by every write that changes what queries return
        self.changed: dict[int, int] = {}  # workload id -> the generation that last changed its grants
        try:
            self._writer.executescript(SCHEMA)
            self._load()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path!r}: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open the store {self.path!r}: {exc}") from exc
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def close(self) -> None:
        with self._write_lock:
            self._writer.close()

    # -- loading --------------------------------------------------------------------------------

    def _load(self) -> None:
        db = self._writer
        for table, target, index, width in (("workloads", self._wl, self._wl_ids, 3),
                                            ("scopes", self._scopes, self._scope_ids, 1),
                                            ("permission_names", self._perms, self._perm_ids, 2)):
            for row in db.execute(f"SELECT * FROM {table} ORDER BY id"):
                if row[0] != len(target):
                    raise StoreError(f"the store {self.path!r} is damaged: {table} ids are not dense")
                value = row[1] if width == 1 else tuple(row[1:])
                target.append(value)  # type: ignore[arg-type]
                index[value] = row[0]  # type: ignore[index]
        grants = self._grants
        cur = db.execute(
            "SELECT g.workload, g.scope, g.permission, g.calls, g.first_seen, g.last_seen, g.last_denied, "
            "g.last_allowed FROM grants g JOIN scopes s ON s.id = g.scope JOIN permission_names n ON n.id = g.permission "
            "ORDER BY g.workload, s.scope, n.permission, n.data")
        while rows := cur.fetchmany(4096):
            for w, s, p, calls, first, last, denied_at, allowed_at in rows:
                values = (s, p * 2 + (1 if denied_at and denied_at >= allowed_at else 0), calls, first, last)
                a = grants.get(w)
                if a is None:
                    grants[w] = array("q", values)
                else:
                    a.extend(values)

    # -- writes ---------------------------------------------------------------------------------

    def seen_report(self, agent_id: str, sequence: int) -> int | None:
        """The accepted count of a report already stored, or None."""
        row = self._reader().execute(
            "SELECT accepted FROM reports WHERE agent_id=? AND sequence=?", (agent_id, sequence)).fetchone()
        return None if row is None else int(row[0])

    def ingest(self, batch: Batch, *, agent_id: str | None = None, sequence: int = 0, accepted: int = 0,
               resolved_pending: Iterable[PendingKey] = ()) -> int:
        """Write ``batch`` durably in one transaction; returns ``accepted`` (or the earlier count for a retry)."""
        with self._write_lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            marks = (len(self._wl), len(self._scopes), len(self._perms))
            try:
                if agent_id is not None:
                    row = db.execute("SELECT accepted FROM reports WHERE agent_id=? AND sequence=?",
                                     (agent_id, sequence)).fetchone()
                    if row is not None:
                        db.execute("ROLLBACK")
                        return int(row[0])
                    db.execute("INSERT INTO reports VALUES (?,?,?)", (agent_id, sequence, accepted))
                    if sequence % 256 == 0:
                        db.execute("DELETE FROM reports WHERE agent_id=? AND sequence < ?",
                                   (agent_id, sequence - REPORTS_KEPT_PER_AGENT))
                rows = self._write_batch(db, batch)
                keys = list(resolved_pending)
                if keys:
                    db.executemany("DELETE FROM pending WHERE namespace=? AND pod=? AND uid=? AND signature=?", keys)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                self._forget_names(*marks)
                raise
            if rows or batch.unknown:
                self._apply(rows)
        return accepted

    @staticmethod
    def _intern(names: list, index: dict, value: object, new: list) -> int:
        i = len(names)
        names.append(value)
        index[value] = i
        new.append((i, *value) if isinstance(value, tuple) else (i, value))
        return i

    def _write_batch(self, db: sqlite3.Connection, batch: Batch) -> list[tuple[int, ...]]:
        """Upsert the batch; returns its grant rows (ids and counters) for the in-memory aggregate."""
        rows: list[tuple[int, ...]] = []
        if batch.permissions:
            new_w: list[tuple] = []
            new_s: list[tuple] = []
            new_p: list[tuple] = []
            wl, wl_ids, scopes, scope_ids, perms, perm_ids = (
                self._wl, self._wl_ids, self._scopes, self._scope_ids, self._perms, self._perm_ids)
            with self._mem_lock:  # a reader may look names up while they grow
                for (ns, kind, name, scope, perm, data), v in batch.permissions.items():
                    wk = (ns, kind, name)
                    w = wl_ids.get(wk)
                    if w is None:
                        w = self._intern(wl, wl_ids, wk, new_w)
                    s = scope_ids.get(scope)
                    if s is None:
                        s = self._intern(scopes, scope_ids, scope, new_s)
                    pk = (perm, data)
                    p = perm_ids.get(pk)
                    if p is None:
                        p = self._intern(perms, perm_ids, pk, new_p)
                    rows.append((w, s, p, *v))
            if new_w:
                db.executemany("INSERT INTO workloads VALUES (?,?,?,?)", new_w)
            if new_s:
                db.executemany("INSERT INTO scopes VALUES (?,?)", new_s)
            if new_p:
                db.executemany("INSERT INTO permission_names VALUES (?,?,?)", new_p)
            db.executemany(_UPSERT_GRANT, rows)
        if batch.unknown:
            db.executemany(
                "INSERT INTO unknown VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT DO UPDATE SET calls=calls+excluded.calls, last_seen=max(last_seen, excluded.last_seen)",
                [(*k, *v) for k, v in batch.unknown.items()])
        if batch.pending:
            db.executemany(
                "INSERT INTO pending VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT DO UPDATE SET calls=calls+excluded.calls, "
                "first_seen=min(first_seen, excluded.first_seen), last_seen=max(last_seen, excluded.last_seen)",
                [(*k, *v) for k, v in batch.pending.items()])
        return rows

    def _forget_names(self, n_wl: int, n_scopes: int, n_perms: int) -> None:
        """Drop names interned by a transaction that was rolled back."""
        with self._mem_lock:
            for names, index, n in ((self._wl, self._wl_ids, n_wl), (self._scopes, self._scope_ids, n_scopes),
                                    (self._perms, self._perm_ids, n_perms)):
                for value in names[n:]:
                    del index[value]
                del names[n:]

    def _apply(self, rows: list[tuple[int, ...]]) -> None:
        """Merge committed grant rows into the in-memory aggregate."""
        grants = self._grants
        offsets: dict[int, dict[int, int]] = {}  # per workload of this batch: sid << 32 | pid -> index
        with self._mem_lock:
            self.generation += 1
            gen = self.generation
            changed = self.changed
            for w, s, p, calls, first, last, denied_at, allowed_at in rows:
                changed[w] = gen
                denied = 1 if denied_at and denied_at >= allowed_at else 0
                a = grants.get(w)
                if a is None:
                    grants[w] = array("q", (s, p * 2 + denied, calls, first, last))
                    self._order = None
                    continue
                at = offsets.get(w)
                if at is None:
                    at = offsets[w] = {a[j] << 32 | a[j + 1] >> 1: j for j in range(0, len(a), STRIDE)}
                j = at.get(s << 32 | p)
                if j is None:  # a permission new to this (workload, scope): keep (scope, permission) order
                    j = self._find(a, s, p)
                    a[j:j] = array("q", (s, p * 2 + denied, calls, first, last))
                    del offsets[w]  # the ones after it moved
                    continue
                a[j + 2] += calls
                if first < a[j + 3]:
                    a[j + 3] = first
                if last > a[j + 4]:
                    a[j + 4] = last
                    a[j + 1] = p * 2 + denied
                elif last == a[j + 4] and denied:
                    a[j + 1] = p * 2 + 1

    def _find(self, a: array, sid: int, pid: int) -> int:
        """Index in ``a`` of (sid, pid), or where it goes to keep (scope, permission, data) order."""
        scopes, perms = self._scopes, self._perms
        scope = scopes[sid]
        lo, hi = 0, len(a) // STRIDE
        while lo < hi:  # first record whose scope is not below ``scope``
            mid = (lo + hi) // 2
            if scopes[a[mid * STRIDE]] < scope:
                lo = mid + 1
            else:
                hi = mid
        j = lo * STRIDE
        name = perms[pid]
        while j < len(a) and a[j] == sid and a[j + 1] >> 1 != pid and perms[a[j + 1] >> 1] < name:
            j += STRIDE
        return j

    # -- reads ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def view(self) -> Iterator[View]:
        """The in-memory aggregate, consistent while the context is held (writers wait)."""
        with self._mem_lock:
            yield View(self)

    def _sorted_workloads(self) -> list[int]:
        if self._order is None:
            self._order = sorted(self._grants, key=self._wl.__getitem__)
        return self._order

    def permissions(self, namespace: str = "", workload: str = "") -> list[PermissionRow]:
        """Every discovered permission, ordered by namespace, workload, scope, permission."""
        return [PermissionRow(*r) for r in self.permission_tuples(namespace, workload)]

    def permission_tuples(self, namespace: str = "", workload: str = "") -> Iterator[tuple]:
        """Like :meth:`permissions`, as plain tuples in PermissionRow's field order, streamed."""
        where, args = _filter(namespace, workload, "w.")
        return self._reader().execute(
            "SELECT w.namespace, w.kind, w.name, s.scope, n.permission, n.data, g.calls, g.first_seen, "
            "g.last_seen, g.last_denied, g.last_allowed FROM grants g JOIN workloads w ON w.id = g.workload "
            "JOIN scopes s ON s.id = g.scope JOIN permission_names n ON n.id = g.permission" + where
            + " ORDER BY w.namespace, w.kind, w.name, s.scope, n.permission, n.data", args)

    def unknown(self, namespace: str = "", workload: str = "") -> list[UnknownRow]:
        where, args = _filter(namespace, workload)
        rows = self._reader().execute("SELECT * FROM unknown" + where + " ORDER BY 1,2,3,4,5,6,7,8", args)
        return [UnknownRow(*r) for r in rows]

    def pending(self) -> Iterator[tuple[PendingKey, tuple[int, int, int]]]:
        """Calls kept for pods not yet known: ((namespace, pod, uid, signature), (calls, first, last))."""
        for ns, pod, uid, sig, calls, first, last in self._reader().execute("SELECT * FROM pending"):
            yield (ns, pod, uid, bytes(sig)), (calls, first, last)

    def has_pending(self) -> bool:
        return self._reader().execute("SELECT 1 FROM pending LIMIT 1").fetchone() is not None

    def counts(self) -> dict[str, int]:
        db = self._reader()
        out = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("grants", "unknown", "pending", "reports")}
        out["permissions"] = out.pop("grants")
        return out


class StoreError(RuntimeError):
    """The store cannot be opened or written."""


def _filter(namespace: str, workload: str, prefix: str = "") -> tuple[str, tuple[str, ...]]:
    clauses, args = [], []
    if namespace:
        clauses.append(f"{prefix}namespace=?")
        args.append(namespace)
    if workload:
        clauses.append(f"{prefix}name=?")
        args.append(workload)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)
