"""The mapper's query side on a real SQLite store: the in-memory aggregate against the rows in
SQLite, the hand-written ListIntentsResponse bytes against protobuf's own, applied status through
parent scopes and wildcards, the export merge."""
from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from clearance.mapper.applied import AppliedIndex
from clearance.mapper.export import export
from clearance.mapper.intents import STATUSES, ListCache, build_intents, encode_list, varint
from clearance.mapper.service import to_proto, unknown_to_proto
from clearance.mapper.store import Batch, Store
from clearance.operator.api import parse_client_intents
from clearance.v1 import intents_pb2

ACCT = "/providers/Microsoft.Storage/storageAccounts/shopdata"
CONT = ACCT + "/blobServices/default/containers/uploads"
OTHER = ACCT + "/blobServices/default/containers/archive"
QUEUE = ACCT + "/queueServices/default/queues/jobs"
C = "Microsoft.Storage/storageAccounts/blobServices/containers"
B = C + "/blobs"
Q = "Microsoft.Storage/storageAccounts/queueServices/queues/messages"
T = 1_733_340_000_000


def _applied(*targets: dict, workload: str = "web", kind: str = "Deployment", name: str = "web-intents") -> dict:
    return {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents", "metadata": {"name": name, "namespace": "shop"},
            "spec": {"workload": {"name": workload, "kind": kind}, "targets": [{"azure": t} for t in targets]}}


def _fill(store: Store) -> None:
    """Three ingests that add, update, deny and then allow again."""
    b = Batch()
    w = ("shop", "Deployment", "web")
    b.permissions[(*w, CONT, f"{B}/read", 1)] = [3, T, T + 10, 0, T + 10]
    b.permissions[(*w, CONT, f"{B}/write", 1)] = [1, T, T + 5, T + 5, 0]  # denied
    b.permissions[(*w, CONT, f"{C}/read", 0)] = [2, T + 1, T + 2, 0, T + 2]
    b.permissions[(*w, OTHER, f"{B}/read", 1)] = [1, T, T, 0, T]
    b.permissions[(*w, QUEUE, f"{Q}/read", 1)] = [9, T, T, 0, T]
    b.permissions[("shop", "CronJob", "nightly", CONT, f"{B}/delete", 1)] = [1, T, T, T, 0]
    b.permissions[("", "Host", "node-1", ACCT + "/blobServices/default", f"{C}/read", 0)] = [200, 0, 0, 0, 0]
    b.permissions[("zeta", "Pod", "debug", "/providers/Microsoft.KeyVault/vaults/kv" + "x" * 200, "Microsoft.KeyVault/vaults/secrets/getSecret/action", 1)] = [1, T, T, 0, T]
    store.ingest(b, agent_id="a", sequence=1, accepted=8)
    b = Batch()
    b.permissions[(*w, CONT, f"{B}/read", 1)] = [4, T - 50, T + 20, T + 15, T + 20]  # allowed is latest
    b.permissions[(*w, CONT, f"{B}/add/action", 1)] = [1, T + 30, T + 30, 0, T + 30]  # new, sorts first
    b.permissions[(*w, OTHER, f"{B}/read", 1)] = [1, T + 40, T + 40, T + 40, 0]  # now denied
    store.ingest(b, agent_id="a", sequence=2, accepted=3)
    b = Batch()
    b.permissions[(*w, CONT, f"{B}/write", 1)] = [1, T + 50, T + 50, 0, T + 50]  # allowed again
    b.permissions[(*w, OTHER, f"{B}/read", 1)] = [1, T + 40, T + 40, 0, T + 40]  # tie: stays denied
    b.permissions[(*w, QUEUE, f"{Q}/read", 1)] = [1, T, T, T, 0]  # tie: becomes denied
    b.unknown[("shop", "Deployment", "web", "blob", "shopdata", "PATCH", "/uploads/{name}", "comp")] = [2, T]
    store.ingest(b, agent_id="a", sequence=3, accepted=3)


def _sql_view(store: Store) -> list[tuple]:
    """What the aggregate must hold, from SQLite: (ns, kind, name, scope, perm, data, calls, first, last, denied)."""
    return [(*r[:9], bool(r[9] and r[9] >= r[10])) for r in store.permission_tuples()]


def _mem_view(store: Store) -> list[tuple]:
    out = []
    with store.view() as v:
        for wid in v.workload_ids():
            a = v.grants[wid]
            for j in range(0, len(a), 5):
                perm, data = v.permissions[a[j + 1] >> 1]
                out.append((*v.workloads[wid], v.scopes[a[j]], perm, data, a[j + 2], a[j + 3], a[j + 4],
                            bool(a[j + 1] & 1)))
    return out


def test_memory_aggregate_equals_the_rows_in_sqlite_before_and_after_reopen(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        _fill(store)
        expected = _sql_view(store)
        assert _mem_view(store) == expected
        assert ("shop", "Deployment", "web", OTHER, f"{B}/read", 1, 3, T, T + 40, True) in expected
        assert ("shop", "Deployment", "web", CONT, f"{B}/read", 1, 7, T - 50, T + 20, False) in expected
        assert ("shop", "Deployment", "web", CONT, f"{B}/write", 1, 2, T, T + 50, False) in expected
        assert ("shop", "Deployment", "web", QUEUE, f"{Q}/read", 1, 10, T, T, True) in expected
        assert store.ingest(Batch(), agent_id="a", sequence=3, accepted=99) == 3  # a retry changes nothing
        assert _mem_view(store) == expected
    finally:
        store.close()
    reopened = Store(tmp_path / "m.db")
    try:
        assert _mem_view(reopened) == expected
    finally:
        reopened.close()


def test_a_failed_transaction_leaves_no_names_behind(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        _fill(store)
        before = _mem_view(store), store.generation
        b = Batch()
        b.permissions[("new", "Deployment", "api", "/providers/x/new-scope", "Microsoft.X/new/read", 0)] = [1, T, T, 0, T]
        b.pending[("ns", "pod", "uid", b"sig")] = [1, T, T]
        store._writer.execute("CREATE TRIGGER boom BEFORE INSERT ON pending BEGIN SELECT RAISE(ABORT, 'boom'); END")
        with pytest.raises(sqlite3.IntegrityError):
            store.ingest(b, agent_id="a", sequence=9, accepted=1)
        store._writer.execute("DROP TRIGGER boom")
        assert (_mem_view(store), store.generation) == before
        del b.pending[("ns", "pod", "uid", b"sig")]
        store.ingest(b, agent_id="a", sequence=9, accepted=1)
        assert _mem_view(store) == _sql_view(store)
    finally:
        store.close()
    reopened = Store(tmp_path / "m.db")  # ids stayed dense
    reopened.close()


WILDCARD = _applied(
    {"scope": "/subscriptions/s/resourceGroups/rg" + ACCT, "dataActions": [f"{B}/read"]},  # parent scope, full form
    {"scope": QUEUE.upper(), "dataActions": ["Microsoft.Storage/storageAccounts/queueServices/queues/*"]},
    {"scope": CONT, "actions": [f"{C}/read"]},
    {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv", "roles": ["Key Vault Secrets User"]},
)


def test_applied_through_a_parent_scope_and_a_wildcard_missing_and_denied_otherwise(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    try:
        _fill(store)
        index = AppliedIndex([parse_client_intents(WILDCARD)])
        with store.view() as v:
            got = [(e.kind, e.scope, e.status, e.actions, e.data_actions, e.calls, e.first_seen, e.last_seen)
                   for e in build_intents(v, index, namespace="shop")]
            denied = [(e.name, e.status) for e in build_intents(v, index, status="denied")]
    finally:
        store.close()
    assert got == [
        ("CronJob", CONT, "denied", [], [f"{B}/delete"], 1, T, T),
        ("Deployment", OTHER, "applied", [], [f"{B}/read"], 3, T, T + 40),  # via the account, despite the 403
        ("Deployment", CONT, "applied", [f"{C}/read"], [f"{B}/read"], 7, T - 50, T + 20),
        ("Deployment", CONT, "missing", [], [f"{B}/add/action", f"{B}/write"], 2, T, T + 50),
        ("Deployment", QUEUE, "applied", [], [f"{Q}/read"], 10, T, T),  # wildcard, scope in upper case
    ]
    assert denied == [("nightly", "denied")]


@pytest.mark.parametrize("flt", [{}, {"namespace": "shop"}, {"workload": "web"}, {"namespace": "zeta"},
                                 {"namespace": "nowhere"}] + [{"status": s} for s in STATUSES])
def test_list_bytes_are_what_protobuf_writes(tmp_path: Path, flt: dict) -> None:
    store = Store(tmp_path / "m.db")
    try:
        _fill(store)
        index = AppliedIndex([parse_client_intents(WILDCARD)])
        unknown = intents_pb2.ListIntentsResponse(unknown=[unknown_to_proto(u) for u in store.unknown()])
        with store.view() as v:
            ours = encode_list(v, index, **flt, unknown=unknown.SerializeToString())
            theirs = intents_pb2.ListIntentsResponse(
                intents=[to_proto(e) for e in build_intents(v, index, **flt)], unknown=unknown.unknown)
    finally:
        store.close()
    assert ours == theirs.SerializeToString()
    parsed = intents_pb2.ListIntentsResponse.FromString(ours)
    assert parsed == theirs
    if not flt:
        assert len(parsed.intents) == 7 and parsed.unknown[0].path == "/uploads/{name}"
        assert parsed.intents[0].workload.kind == "Host" and parsed.intents[0].namespace == ""


@pytest.mark.parametrize("n", [0, 1, 127, 128, 300, 16383, 16384, 2**35, T, 2**63 - 1])
def test_varint(n: int) -> None:
    from google.protobuf.internal.encoder import _VarintBytes

    assert varint(n) == _VarintBytes(n)


def test_export_merges_applied_targets_with_discovered_permissions(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    applied = _applied(
        {"scope": "/subscriptions/s/resourceGroups/rg" + CONT, "dataActions": [f"{B}/read", f"{B}/tags/read"]},
        {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv", "roles": ["Key Vault Secrets User"]},
    )
    applied["spec"]["targets"].append({"service": {"name": "backend"}})  # a non-Azure target is kept as is
    try:
        _fill(store)
        index = AppliedIndex([parse_client_intents(applied)])
        with store.view() as v:
            intents = build_intents(v, index, namespace="shop")
    finally:
        store.close()
    docs = export(intents, index)
    assert [(d.kind, d.name, d.document["metadata"]["name"]) for d in docs] == [
        ("CronJob", "nightly", "client-intents-for-nightly"), ("Deployment", "web", "web-intents")]
    web = docs[1].document
    assert web["spec"]["workload"] == {"name": "web", "kind": "Deployment"}
    assert web["spec"]["targets"] == [
        {"service": {"name": "backend"}},
        {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv", "roles": ["Key Vault Secrets User"]}},
        {"azure": {"scope": OTHER, "dataActions": [f"{B}/read"]}},
        {"azure": {"scope": "/subscriptions/s/resourceGroups/rg" + CONT, "actions": [f"{C}/read"],
                   "dataActions": [f"{B}/add/action", f"{B}/read", f"{B}/tags/read", f"{B}/write"]}},
        {"azure": {"scope": QUEUE, "dataActions": [f"{Q}/read"]}},
    ]
    assert export(intents, index) == docs  # deterministic
    otterize = export(intents, index, "otterize")[1].document
    assert otterize["apiVersion"] == "k8s.otterize.com/v2beta1" and otterize["spec"] == web["spec"]


def test_the_kept_list_is_patched_to_exactly_what_a_fresh_encoding_gives(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    cache = ListCache()
    index = AppliedIndex()

    def both(applied: AppliedIndex) -> tuple[bytes, bytes]:
        with store.view() as v:
            return cache.get(v, applied, b"\x12\x00"), encode_list(v, applied, unknown=b"\x12\x00")

    try:
        _fill(store)
        kept, fresh = both(index)
        assert kept == fresh and len(intents_pb2.ListIntentsResponse.FromString(kept).intents) == 6
        assert both(index)[0] is kept  # nothing changed: the same response
        b = Batch()
        b.permissions[("shop", "CronJob", "nightly", CONT, f"{B}/delete", 1)] = [5, T + 99, T + 99, 0, T + 99]
        b.permissions[("aaa", "Deployment", "first", CONT, f"{B}/read", 1)] = [1, T, T, 0, T]  # a new workload
        store.ingest(b)
        kept, fresh = both(index)
        assert kept == fresh
        got = intents_pb2.ListIntentsResponse.FromString(kept)
        assert [i.workload.name for i in got.intents][:3] == ["node-1", "first", "nightly"]
        assert got.intents[2].status == "missing" and got.intents[2].calls == 6
        kept, fresh = both(AppliedIndex([parse_client_intents(WILDCARD)]))  # ClientIntents changed
        assert kept == fresh and b"applied" in kept
    finally:
        store.close()


def test_the_unknown_calls_are_encoded_only_when_the_kept_list_is_out_of_date(tmp_path: Path) -> None:
    store = Store(tmp_path / "m.db")
    cache = ListCache()
    index = AppliedIndex()
    asked: list[int] = []

    def unknown() -> bytes:
        asked.append(1)
        return b"\x12\x00"

    try:
        _fill(store)
        with store.view() as v:
            first = cache.get(v, index, unknown)
        with store.view() as v:
            assert cache.get(v, index, unknown) is first
        assert len(asked) == 1  # a hit reuses the kept unknown calls too
        b = Batch()
        b.unknown[("shop", "Deployment", "web", "blob", "acct", "GET", "/x", "")] = [1, T]
        store.ingest(b)
        with store.view() as v:
            assert cache.get(v, index, unknown) == encode_list(v, index, unknown=b"\x12\x00")
        assert len(asked) == 2  # a new unknown call bumps the generation: encoded again
    finally:
        store.close()


@pytest.mark.parametrize("kind, name", [("Deployment", "web"), ("", "node-1"), ("Pod", ""), ("", ""),
                                        ("Job", "n" * 200), ("K" * 130, "x"), ("Pod", "naïve-ünïcode")])
def test_workload_label_reads_any_serialised_workload(kind: str, name: str) -> None:
    from clearance.mapper.commands import _workload_label

    raw = intents_pb2.Workload(kind=kind, name=name).SerializeToString()
    assert _workload_label(raw) == f"{kind}/{name}"
    assert _workload_label(raw + b"\x18\x01") == f"{kind}/{name}"  # an unknown field: the parser's way


def test_lists_taken_while_batches_are_written_are_each_a_consistent_state(tmp_path: Path) -> None:
    """Every response equals a fresh encoding of some committed state; the last one, the final state."""
    import threading

    store = Store(tmp_path / "m.db")
    cache = ListCache()
    index = AppliedIndex()
    done = threading.Event()
    listed = threading.Event()  # the writer goes on once a list was taken since its last batch
    failures: list[BaseException] = []
    seen: set[int] = set()

    def writer() -> None:
        try:
            for n in range(30):
                listed.wait(30)
                listed.clear()
                b = Batch()
                for w in range(n % 7, n % 7 + 5):
                    b.permissions[(f"ns{w % 3}", "Deployment", f"app{w}", f"{CONT}{n % 11}", f"{B}/read", 1)] = \
                        [1, T + n, T + n, T + n if n % 5 == 0 else 0, 0 if n % 5 == 0 else T + n]
                store.ingest(b, agent_id="w", sequence=n + 1, accepted=5)
        except BaseException as exc:  # noqa: BLE001 - reported by the test below
            failures.append(exc)
        finally:
            done.set()

    t = threading.Thread(target=writer)
    t.start()
    try:
        while not done.is_set():
            with store.view() as v:
                kept, fresh = cache.get(v, index, b""), encode_list(v, index)
                seen.add(v.generation)
            listed.set()
            assert kept == fresh
        t.join()
        assert not failures
        with store.view() as v:
            assert cache.get(v, index, b"") == encode_list(v, index)
            final = build_intents(v, index)
    finally:
        store.close()
    assert len(seen) > 10  # the lists really were taken between writes
    assert sum(e.calls for e in final) == 30 * 5
