"""The mapper's gRPC services in process, with a real gRPC client, the real catalog and SQLite."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import grpc
import pytest

from clearance.mapper.store import Store
from clearance.mapper.web import serve_web
from clearance.v1 import report_pb2
from test_mapper_support import BLOBS, CONTAINER_SCOPE, TOKEN, call, pods_file, running_mapper


def _entries(resp):
    return [(i.namespace, i.workload.kind, i.workload.name, i.scope, tuple(i.actions), tuple(i.data_actions),
             i.status, i.calls) for i in resp.intents]


def test_report_is_classified_resolved_and_listed(tmp_path):
    with running_mapper(tmp_path) as m:
        t0 = int(time.time() * 1000) - 5000
        resp = m.report([
            call(method="GET", count=3, first=t0, last=t0 + 10),
            call(method="PUT", headers={"x-ms-blob-type": "BlockBlob", "if-none-match": "*"}, count=2),
        ])
        assert resp.accepted == 2
        out = m.list()
    assert _entries(out) == [("shop", "Deployment", "web", CONTAINER_SCOPE, (),
                              (f"{BLOBS}/add/action", f"{BLOBS}/read"), "missing", 3)]
    assert out.intents[0].first_seen_unix_ms == t0
    assert not out.unknown


def test_retried_batch_is_counted_once(tmp_path):
    with running_mapper(tmp_path) as m:
        batch = [call(count=5)]
        assert m.report(batch, seq=7).accepted == 1
        assert m.report(batch, seq=7).accepted == 1
        assert m.report(batch, seq=8).accepted == 1
        assert m.list().intents[0].calls == 10


def test_host_callers_and_unknown_calls_are_listed_never_dropped(tmp_path):
    with running_mapper(tmp_path) as m:
        m.report([call(host=True, node="node-7"),
                  call(method="PATCH", path="/uploads/{name}", query={"comp": "frobnicate"})])
        out = m.list()
    assert [(i.namespace, i.workload.kind, i.workload.name) for i in out.intents] == [("", "Host", "node-7")]
    assert [(u.workload.name, u.method, u.path, u.query_keys) for u in out.unknown] == [
        ("web", "PATCH", "/uploads/{name}", "comp")]


def test_denied_call_marks_permission_denied_until_it_succeeds(tmp_path):
    with running_mapper(tmp_path) as m:
        t = int(time.time() * 1000)
        m.report([call(status=403, error_code="AuthorizationPermissionMismatch", first=t - 100, last=t - 50)], seq=1)
        assert [i.status for i in m.list().intents] == ["denied"]
        assert [i.status for i in m.list(status="missing").intents] == []
        m.report([call(first=t, last=t)], seq=2)
        assert [i.status for i in m.list().intents] == ["missing"]


def test_calls_from_unknown_pods_are_kept_and_resolved_when_the_pod_appears(tmp_path):
    with running_mapper(tmp_path) as m:
        m.report([call(pod="batch-1", namespace="jobs", count=4)])
        assert not m.list().intents
        assert m.mapper.store.counts()["pending"] == 1
        pods_file(m.pods, [("shop", "web-7d4b9c6f5-abcde", "ReplicaSet", "web-7d4b9c6f5"),
                           ("jobs", "batch-1", "StatefulSet", "batch")])
        assert m.mapper.ingestor.resolver.reload(force=True)  # tells the ingestor, which resolves
        out = m.list(namespace="jobs")
        assert m.mapper.store.counts()["pending"] == 0
    assert _entries(out) == [("jobs", "StatefulSet", "batch", CONTAINER_SCOPE, (),
                              (f"{BLOBS}/read",), "missing", 4)]


def test_refuses_agents_without_the_token(tmp_path):
    with running_mapper(tmp_path) as m:
        with pytest.raises(grpc.RpcError) as missing:
            m.report([call()], token=None)
        with pytest.raises(grpc.RpcError) as wrong:
            m.report([call()], token="not-the-token-at-all")
        assert not m.list().intents
    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "authorization" in missing.value.details()
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "--agent-token-file" in wrong.value.details()
    assert TOKEN not in wrong.value.details()


@pytest.mark.parametrize("bad, message", [
    (dict(service="smtp"), "calls[1]: service 'smtp'"),
    (dict(method="get"), "calls[1]: method 'get'"),
    (dict(path="uploads"), "calls[1]: path must start with '/'"),
    (dict(count=0), "calls[1]: count must be at least 1"),
    (dict(first=20, last=10), "calls[1]: first_seen_unix_ms is after"),
    (dict(pod=""), "calls[1]: caller needs namespace and pod_name"),
])
def test_malformed_reports_are_refused_naming_the_problem(tmp_path, bad, message):
    with running_mapper(tmp_path) as m:
        with pytest.raises(grpc.RpcError) as err:
            m.report([call(), call(**bad)])
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert message in err.value.details()
        assert not m.list().intents  # nothing of a refused batch is stored
        assert m.report([call()], seq=2).accepted == 1  # and the mapper still serves


def test_oversized_reports_are_refused(tmp_path):
    with running_mapper(tmp_path, max_calls=10, max_message=16 * 1024) as m:
        with pytest.raises(grpc.RpcError) as too_many:
            m.report([call(count=1) for _ in range(11)])
        with pytest.raises(grpc.RpcError) as too_big:
            m.report([call(path="/uploads/" + "x" * 4000) for _ in range(10)])
        with pytest.raises(grpc.RpcError) as no_agent:
            m.report([call()], agent="")
        assert m.report([call()]).accepted == 1
    assert too_many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "11 calls; the limit is 10" in too_many.value.details()
    assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert no_agent.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "agent_id" in no_agent.value.details()


def test_store_survives_reopen(tmp_path):
    with running_mapper(tmp_path) as m:
        m.report([call(count=2)], seq=1)
    store = Store(tmp_path / "mapper.db")
    try:
        rows = store.permissions()
        assert [(r.name, r.permission, r.calls) for r in rows] == [("web", f"{BLOBS}/read", 2)]
        assert store.seen_report("node-1/boot", 1) == 1
    finally:
        store.close()


def test_json_api(tmp_path):
    with running_mapper(tmp_path) as m:
        m.report([call(count=2), call(host=True)])
        httpd, port = serve_web(m.mapper, "127.0.0.1", 0)
        try:
            def get(path):
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
                    return json.loads(r.read())
            intents = get("/api/intents?namespace=shop")
            export = get("/api/export?namespace=shop&format=otterize")
            graph = get("/api/graph")
            with pytest.raises(urllib.error.HTTPError) as bad:
                get("/api/intents?status=maybe")
        finally:
            httpd.shutdown()
            httpd.server_close()
    assert intents["intents"] == [{
        "namespace": "shop", "workload": {"kind": "Deployment", "name": "web"}, "scope": CONTAINER_SCOPE,
        "actions": [], "dataActions": [f"{BLOBS}/read"], "status": "missing", "calls": 2,
        "firstSeen": intents["intents"][0]["firstSeen"], "lastSeen": intents["intents"][0]["lastSeen"]}]
    assert intents["unknown"] == []
    doc = export["documents"][0]["document"]
    assert doc["apiVersion"] == "k8s.otterize.com/v2beta1"
    assert doc["metadata"] == {"name": "client-intents-for-web", "namespace": "shop"}
    assert {n["type"] for n in graph["nodes"]} == {"workload", "scope"} and len(graph["edges"]) == 2
    assert bad.value.code == 400 and "status" in json.loads(bad.value.read())["error"]


def _host_call_with_uid(uid: str, node: str = "node-7", **kw) -> report_pb2.ObservedCall:
    """A call the agent attributed to the host because it could not resolve the pod of ``uid`` in time."""
    c = call(**kw)
    c.caller.CopyFrom(report_pb2.Caller(host=True, node=node, pod_uid=uid, container="app"))
    return c


def test_host_call_with_a_known_pod_uid_goes_to_that_pods_workload(tmp_path):
    with running_mapper(tmp_path) as m:
        m.report([_host_call_with_uid("uid-web-7d4b9c6f5-abcde", count=3)])
        out = m.list()
    assert _entries(out) == [("shop", "Deployment", "web", CONTAINER_SCOPE, (),
                              (f"{BLOBS}/read",), "missing", 3)]


def test_host_call_with_an_unknown_uid_is_kept_until_the_pod_appears(tmp_path):
    with running_mapper(tmp_path) as m:
        m.report([_host_call_with_uid("uid-batch-1", count=4)])
        assert not m.list().intents  # neither the Host nor dropped: kept
        assert m.mapper.store.counts()["pending"] == 1
        pods_file(m.pods, [("shop", "web-7d4b9c6f5-abcde", "ReplicaSet", "web-7d4b9c6f5"),
                           ("jobs", "batch-1", "StatefulSet", "batch")])
        assert m.mapper.ingestor.resolver.reload(force=True)
        out = m.list()
        assert m.mapper.store.counts()["pending"] == 0
    assert _entries(out) == [("jobs", "StatefulSet", "batch", CONTAINER_SCOPE, (),
                              (f"{BLOBS}/read",), "missing", 4)]


def test_host_call_with_a_uid_never_seen_falls_back_to_the_host_after_the_expiry(tmp_path):
    with running_mapper(tmp_path) as m:
        ing = m.mapper.ingestor
        t = int(time.time() * 1000)
        m.report([_host_call_with_uid("uid-gone", node="node-9", count=2, first=t - 1000, last=t)])
        assert ing.resolve_pending() == 0  # within the expiry: still kept
        assert m.mapper.store.counts()["pending"] == 1
        ing._clock = lambda: time.time() + ing.uid_pending_expiry_s + 5  # the clock is the ingestor's own input
        assert ing.resolve_pending() == 1
        out = m.list()
        assert m.mapper.store.counts()["pending"] == 0
    assert _entries(out) == [("", "Host", "node-9", CONTAINER_SCOPE, (), (f"{BLOBS}/read",), "missing", 2)]


def test_host_call_with_an_oversized_uid_is_refused(tmp_path):
    with running_mapper(tmp_path) as m:
        with pytest.raises(grpc.RpcError) as err:
            m.report([_host_call_with_uid("u" * 300)])
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "pod_uid" in err.value.details()
