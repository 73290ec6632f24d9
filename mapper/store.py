"""SQLite store (WAL) of discovered permissions, unknown calls, calls from pods not yet known,
and the (agent, sequence) pairs already acknowledged.

One row per discovered *permission* (namespace, workload, scope, permission): the status
(applied / missing / denied) is decided per permission, then grouped for display.
A batch is written in one transaction together with its (agent, sequence) marker, with
``synchronous=FULL``: once :meth:`Store.ingest` returns, the batch survives a crash.
"""
from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS permissions (
    namespace TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL, scope TEXT NOT NULL,
    permission TEXT NOT NULL, data INTEGER NOT NULL,
    calls INTEGER NOT NULL, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,
    last_denied INTEGER NOT NULL, last_allowed INTEGER NOT NULL,
    PRIMARY KEY (namespace, kind, name, scope, permission, data)
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

# Keys of the aggregate dictionaries (see Batch).
PermKey = tuple[str, str, str, str, str, int]  # namespace, kind, name, scope, permission, data(0/1)
UnknownKey = tuple[str, str, str, str, str, str, str, str]
PendingKey = tuple[str, str, str, bytes]  # namespace, pod, uid, signature

REPORTS_KEPT_PER_AGENT = 4096


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


class Store:
    """Thread-safe: writes are serialised by a lock; each thread reads through its own connection."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._write_lock = threading.Lock()
        self._local = threading.local()
        self._writer = self._connect()
        self._writer.executescript(SCHEMA)

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
                self._write_batch(db, batch)
                keys = list(resolved_pending)
                if keys:
                    db.executemany("DELETE FROM pending WHERE namespace=? AND pod=? AND uid=? AND signature=?", keys)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return accepted

    @staticmethod
    def _write_batch(db: sqlite3.Connection, batch: Batch) -> None:
        if batch.permissions:
            db.executemany(
                "INSERT INTO permissions VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT DO UPDATE SET calls=calls+excluded.calls, "
                "first_seen=min(first_seen, excluded.first_seen), last_seen=max(last_seen, excluded.last_seen), "
                "last_denied=max(last_denied, excluded.last_denied), "
                "last_allowed=max(last_allowed, excluded.last_allowed)",
                [(*k, *v) for k, v in batch.permissions.items()])
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

    # -- reads ----------------------------------------------------------------------------------

    def permissions(self, namespace: str = "", workload: str = "") -> list[PermissionRow]:
        """Every discovered permission, ordered by namespace, workload, scope, permission."""
        return [PermissionRow(*r) for r in self.permission_tuples(namespace, workload)]

    def permission_tuples(self, namespace: str = "", workload: str = "") -> Iterator[tuple]:
        """Like :meth:`permissions`, as plain tuples in PermissionRow's field order, streamed."""
        where, args = _filter(namespace, workload)
        return self._reader().execute(
            "SELECT * FROM permissions" + where + " ORDER BY namespace, kind, name, scope, permission, data", args)

    def unknown(self, namespace: str = "", workload: str = "") -> list[UnknownRow]:
        where, args = _filter(namespace, workload)
        rows = self._reader().execute("SELECT * FROM unknown" + where + " ORDER BY 1,2,3,4,5,6,7,8", args)
        return [UnknownRow(*r) for r in rows]

    def pending(self) -> Iterator[tuple[PendingKey, tuple[int, int, int]]]:
        """Calls kept for pods not yet known: ((namespace, pod, uid, signature), (calls, first, last))."""
        for ns, pod, uid, sig, calls, first, last in self._reader().execute("SELECT * FROM pending"):
            yield (ns, pod, uid, bytes(sig)), (calls, first, last)

    def pending_pods(self) -> list[tuple[str, str, str]]:
        return [tuple(r) for r in self._reader().execute("SELECT DISTINCT namespace, pod, uid FROM pending")]

    def has_pending(self) -> bool:
        return self._reader().execute("SELECT 1 FROM pending LIMIT 1").fetchone() is not None

    def counts(self) -> dict[str, int]:
        db = self._reader()
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                for t in ("permissions", "unknown", "pending", "reports")}


class StoreError(RuntimeError):
    """The store cannot be opened or written."""


def _filter(namespace: str, workload: str) -> tuple[str, tuple[str, ...]]:
    clauses, args = [], []
    if namespace:
        clauses.append("namespace=?")
        args.append(namespace)
    if workload:
        clauses.append("name=?")
        args.append(workload)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), tuple(args)
