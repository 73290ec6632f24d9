"""KubeResolver against the Kubernetes API test server: deleted pods stay resolvable for late
reports, unknown pods are looked up with backoff (no GET every few seconds), and calls of a pod
never seen are recorded under the bare pod after the pending expiry."""
from __future__ import annotations

import logging
import time

from clearance.mapper.ingest import Ingestor
from clearance.mapper.store import Store
from clearance.mapper.workloads import KubeResolver, WorkloadRef
from clearance.v1 import report_pb2
from test_mapper_kube import _owner, _pod, _seed_workloads, _wait
from test_mapper_support import BLOBS, call

WEB_POD = "web-7d4b9c6f5-abcde"


class Clock:
    """A monotonic clock the test moves by hand (the resolver's waits are hours long)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def pod_gets(kube_server, name: str) -> int:
    return sum(1 for r in kube_server.requests if r.method == "GET" and r.path.endswith(f"/pods/{name}"))


def test_a_deleted_pod_stays_resolvable_for_ten_minutes(kube_server):
    _seed_workloads(kube_server)
    uid = kube_server.get("v1", "Pod", "shop", WEB_POD)["metadata"]["uid"]
    clock = Clock()
    r = KubeResolver(kube_server.api_client(), clock=clock)
    r.start()
    try:
        _wait(lambda: r.known("shop", WEB_POD), "the watch to list the pods")
        kube_server.delete("v1", "Pod", "shop", WEB_POD)
        _wait(lambda: r.departed("shop", WEB_POD), "the watch to see the deletion")
        clock.advance(599)
        assert r.resolve("shop", WEB_POD, uid) == WorkloadRef("shop", "Deployment", "web")  # a late report
        assert r.resolve("shop", WEB_POD, "") == WorkloadRef("shop", "Deployment", "web")
        assert pod_gets(kube_server, WEB_POD) == 0  # from the tombstone, not the API
        assert r.resolve("shop", WEB_POD, "some-other-uid") is None  # another pod of that name: unknown
        clock.advance(2)
        assert not r.departed("shop", WEB_POD)
        assert r.resolve("shop", WEB_POD, uid) is None  # forgotten: the API is asked again (404)
        assert pod_gets(kube_server, WEB_POD) == 2
        assert r.resolve_uid(uid) is None
    finally:
        r.stop()


def test_resolve_uid_finds_cached_and_departed_pods_in_any_case(kube_server):
    _seed_workloads(kube_server)
    uid = kube_server.get("v1", "Pod", "shop", WEB_POD)["metadata"]["uid"]
    debug_uid = kube_server.get("v1", "Pod", "shop", "debug")["metadata"]["uid"]
    clock = Clock()
    r = KubeResolver(kube_server.api_client(), clock=clock)
    r.start()
    try:
        _wait(lambda: r.known("shop", WEB_POD), "the watch to list the pods")
        assert r.resolve_uid(uid.upper()) == WorkloadRef("shop", "Deployment", "web")
        assert r.resolve("shop", WEB_POD, uid.upper()) == WorkloadRef("shop", "Deployment", "web")
        assert r.resolve_uid(debug_uid) == WorkloadRef("shop", "Pod", "debug")
        kube_server.delete("v1", "Pod", "shop", WEB_POD)
        _wait(lambda: r.departed("shop", WEB_POD), "the watch to see the deletion")
        assert r.resolve_uid(uid) == WorkloadRef("shop", "Deployment", "web")  # a late report
        clock.advance(601)
        assert r.resolve_uid(uid) is None  # the tombstone expired
        assert r.resolve_uid(debug_uid) == WorkloadRef("shop", "Pod", "debug")  # still running
        assert r.resolve_uid("uid-not-a-pod") is None and r.resolve_uid("") is None
    finally:
        r.stop()


def test_a_pod_recreated_under_its_name_keeps_both_incarnations_apart(kube_server):
    kube_server.create(_pod("shop", "db-0", _owner("StatefulSet", "db", "apps/v1")))
    old_uid = kube_server.get("v1", "Pod", "shop", "db-0")["metadata"]["uid"]
    r = KubeResolver(kube_server.api_client())
    r.start()
    try:
        _wait(lambda: r.known("shop", "db-0"), "the watch to list the pod")
        kube_server.delete("v1", "Pod", "shop", "db-0")
        _wait(lambda: r.departed("shop", "db-0"), "the watch to see the deletion")
        kube_server.create(_pod("shop", "db-0", _owner("StatefulSet", "db-v2", "apps/v1")))
        new_uid = kube_server.get("v1", "Pod", "shop", "db-0")["metadata"]["uid"]
        _wait(lambda: r.resolve("shop", "db-0", new_uid) == WorkloadRef("shop", "StatefulSet", "db-v2"),
              "the new incarnation")
        assert r.resolve("shop", "db-0", old_uid) == WorkloadRef("shop", "StatefulSet", "db")
    finally:
        r.stop()


def test_unknown_pods_are_looked_up_with_backoff(kube_server):
    clock = Clock()
    r = KubeResolver(kube_server.api_client(), clock=clock, retry_initial_s=5, retry_max_s=20)
    gets = []
    for step in [0, 1, 4, 1, 5, 5, 9, 1, 20, 20]:  # seconds between asks
        clock.advance(step)
        assert r.resolve("shop", "ghost", "uid-ghost") is None
        gets.append(pod_gets(kube_server, "ghost"))
    # GETs at t=0, 5, 15 (delay 10), 35 (delay 20), 55 (capped at 20)
    assert gets == [1, 1, 2, 2, 2, 3, 3, 3, 4, 5]
    assert r.resolve("shop", "ghost", "another-uid") is None  # backoff is per uid
    assert pod_gets(kube_server, "ghost") == 6
    assert r.resolve("shop", "late", "") is None  # an agent that did not know the uid
    kube_server.create(_pod("shop", "late"))  # it appears: found at the next try, not before
    assert r.resolve("shop", "late", "") is None and pod_gets(kube_server, "late") == 1
    clock.advance(5)
    assert r.resolve("shop", "late", "") == WorkloadRef("shop", "Pod", "late")
    assert pod_gets(kube_server, "late") == 2


def test_calls_of_a_pod_never_seen_are_recorded_under_the_bare_pod_after_an_hour(kube_server, tmp_path, caplog):
    clock = Clock()
    resolver = KubeResolver(kube_server.api_client(), clock=clock)
    store = Store(tmp_path / "m.db")
    ingestor = Ingestor(store, resolver)
    try:
        ingestor.report(report_pb2.ReportRequest(agent_id="a", sequence=1, calls=[
            call(pod="vanished-x1", uid="uid-v", count=3)]))
        assert store.counts()["pending"] == 1
        asked = 0
        for _ in range(120):  # the mapper's pending loop, every 30 s for an hour
            clock.advance(30)
            with caplog.at_level(logging.WARNING, logger="clearance.mapper.workloads"):
                resolved = ingestor.resolve_pending()
            asked = pod_gets(kube_server, "vanished-x1")
            if resolved:
                break
        assert resolved == 1 and 3599 <= clock.now - 1000 <= 3630
        assert asked <= 12  # backoff up to 10 min, not a GET every time
        rows = store.permissions()
        assert [(r.namespace, r.kind, r.name, r.permission, r.calls) for r in rows] == [
            ("shop", "Pod", "vanished-x1", f"{BLOBS}/read", 3)]
        assert store.counts()["pending"] == 0
        lines = [rec for rec in caplog.records if "never seen" in rec.getMessage()]
        assert len(lines) == 1 and lines[0].fields["pod"] == "vanished-x1"
        # A later report of the same pod goes straight to the bare pod, without another GET.
        ingestor.report(report_pb2.ReportRequest(agent_id="a", sequence=2, calls=[
            call(pod="vanished-x1", uid="uid-v", count=1)]))
        assert store.counts()["pending"] == 0 and pod_gets(kube_server, "vanished-x1") == asked
    finally:
        store.close()


def test_a_pod_gone_from_a_listing_is_kept_resolvable(kube_server):
    """A pod known before a (re)list and absent from it was deleted unseen (a watch gap): it becomes
    a tombstone like one seen DELETED."""
    _seed_workloads(kube_server)
    r = KubeResolver(kube_server.api_client())
    assert r.resolve("shop", WEB_POD, "") == WorkloadRef("shop", "Deployment", "web")  # known by a GET
    kube_server.delete("v1", "Pod", "shop", WEB_POD)
    r.start()
    try:
        _wait(lambda: r.departed("shop", WEB_POD), "the listing to drop the pod")
        assert r.resolve("shop", WEB_POD, "") == WorkloadRef("shop", "Deployment", "web")
        assert pod_gets(kube_server, WEB_POD) == 1
    finally:
        r.stop()
