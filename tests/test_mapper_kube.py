"""The mapper against the Kubernetes API test server: workloads through owners, TokenReview,
applied vs missing from ClientIntents in the cluster, export merged with what is applied, and
server-side apply through the real kubernetes client (also via the CLI)."""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import grpc
import pytest
import yaml

from clearance.mapper.applied import AppliedIntents
from clearance.mapper.auth import DEFAULT_AGENT_SA, TokenReviewer
from clearance.mapper.commands import CommandError, apply_document
from clearance.mapper.ingest import Ingestor
from clearance.mapper.service import Mapper
from clearance.mapper.store import Store
from clearance.mapper.workloads import KubeResolver, WorkloadRef
from clearance.operator.api import crd_manifest, validate_document
from clearance.v1 import report_pb2
from test_mapper_support import BLOBS, CONTAINER_SCOPE, call, running_mapper

ROOT = Path(__file__).resolve().parent.parent


def _owner(kind: str, name: str, api_version: str) -> list[dict]:
    return [{"apiVersion": api_version, "kind": kind, "name": name, "uid": f"uid-{name}", "controller": True}]


def _pod(ns: str, name: str, owner: list[dict] | None = None) -> dict:
    meta = {"name": name, "namespace": ns}
    if owner:
        meta["ownerReferences"] = owner
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
            "spec": {"serviceAccountName": "default", "containers": [{"name": "app", "image": "app"}]}}


def _seed_workloads(kube) -> None:
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
                 "spec": {"selector": {}, "template": {}}})
    kube.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": "web-7d4b9c6f5", "namespace": "shop", "ownerReferences": _owner("Deployment", "web", "apps/v1")},
        "spec": {"selector": {}}})
    kube.create(_pod("shop", "web-7d4b9c6f5-abcde", _owner("ReplicaSet", "web-7d4b9c6f5", "apps/v1")))
    kube.create({"apiVersion": "batch/v1", "kind": "Job", "metadata": {
        "name": "nightly-29000000", "namespace": "shop",
        "ownerReferences": _owner("CronJob", "nightly", "batch/v1")}, "spec": {"template": {}}})
    kube.create(_pod("shop", "nightly-29000000-xyz12", _owner("Job", "nightly-29000000", "batch/v1")))
    kube.create(_pod("shop", "debug"))
    kube.create(_pod("shop", "db-0", _owner("StatefulSet", "db", "apps/v1")))


def _wait(cond, what: str, seconds: float = 30.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def test_pods_resolve_to_their_top_owner(kube_server):
    _seed_workloads(kube_server)
    r = KubeResolver(kube_server.api_client())
    uid = kube_server.get("v1", "Pod", "shop", "web-7d4b9c6f5-abcde")["metadata"]["uid"]  # the server's own
    assert r.resolve("shop", "web-7d4b9c6f5-abcde", uid) == WorkloadRef("shop", "Deployment", "web")
    assert r.resolve("shop", "nightly-29000000-xyz12", "") == WorkloadRef("shop", "CronJob", "nightly")
    assert r.resolve("shop", "debug", "") == WorkloadRef("shop", "Pod", "debug")
    assert r.resolve("shop", "db-0", "") == WorkloadRef("shop", "StatefulSet", "db")
    assert r.resolve("shop", "not-there", "") is None
    assert r.resolve("shop", "debug", "another-uid") is None  # a different pod of the same name


def test_calls_of_a_pod_are_kept_until_it_appears_in_the_api(kube_server, tmp_path):
    api = kube_server.api_client()
    resolver = KubeResolver(api)
    store = Store(tmp_path / "m.db")
    ingestor = Ingestor(store, resolver)
    resolver.start()
    try:
        ingestor.report(report_pb2.ReportRequest(
            agent_id="a", sequence=1, calls=[call(pod="web-7d4b9c6f5-abcde", uid="", count=2)]))
        assert store.permissions() == [] and store.counts()["pending"] == 1
        _seed_workloads(kube_server)  # the watch sees the pod and the ingestor resolves the kept call
        rows = _wait(lambda: store.permissions(), "the kept call to be resolved")
        assert [(r.kind, r.name, r.permission, r.calls) for r in rows] == [("Deployment", "web", f"{BLOBS}/read", 2)]
        assert store.counts()["pending"] == 0
    finally:
        resolver.stop()
        store.close()


def test_token_review_accepts_only_the_agent_service_account(kube_server, tmp_path):
    kube_server.register_token("agent-sa-token", DEFAULT_AGENT_SA, audiences=["clearance-mapper"])
    kube_server.register_token("other-sa-token", "system:serviceaccount:shop:default", audiences=["clearance-mapper"])
    auth = TokenReviewer(kube_server.api_client())
    with running_mapper(tmp_path, authenticator=auth) as m:
        assert m.report([call()], token="agent-sa-token").accepted == 1
        with pytest.raises(grpc.RpcError) as other:
            m.report([call()], seq=2, token="other-sa-token")
        with pytest.raises(grpc.RpcError) as forged:
            m.report([call()], seq=3, token="forged-token")
    assert other.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert "system:serviceaccount:shop:default is not the agent's ServiceAccount" in other.value.details()
    assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "TokenReview" in forged.value.details()


def _applied_doc(actions: list[str], data_actions: list[str], name: str = "web-intents") -> dict:
    return {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"workload": {"name": "web", "kind": "Deployment"}, "targets": [
                {"azure": {"scope": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/"
                                    "shopdata/blobServices/default/containers/uploads",
                           **({"actions": actions} if actions else {}), "dataActions": data_actions}},
                {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv", "roles": ["Key Vault Secrets User"]}},
            ]}}


def test_applied_missing_denied_export_and_apply(kube_server, tmp_path):
    kube_server.create(crd_manifest())
    api = kube_server.api_client()
    kube_server.create(_applied_doc([], [f"{BLOBS}/read"]))
    applied = AppliedIntents(api)
    applied.refresh()
    with running_mapper(tmp_path, applied=applied) as m:
        t = int(time.time() * 1000)
        m.report([call(count=5),  # blobs/read: applied (granted at the full-form scope)
                  call(method="PUT", headers={"x-ms-blob-type": "BlockBlob"}),  # blobs/write: missing
                  call(method="DELETE", status=403, error_code="AuthorizationPermissionMismatch", last=t, first=t)])
        got = [(i.status, tuple(i.data_actions)) for i in m.list(namespace="shop").intents]
        assert got == [("applied", (f"{BLOBS}/read",)), ("missing", (f"{BLOBS}/write",)),
                       ("denied", (f"{BLOBS}/delete",))]
        docs = m.mapper.export("shop")
        assert len(docs) == 1
        doc = docs[0].document
        assert validate_document(doc) == []
        assert doc["metadata"] == {"name": "web-intents", "namespace": "shop"}  # updates the applied one
        assert doc["spec"]["targets"] == [
            {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv", "roles": ["Key Vault Secrets User"]}},
            {"azure": {"scope": _applied_doc([], [])["spec"]["targets"][0]["azure"]["scope"],
                       "dataActions": [f"{BLOBS}/delete", f"{BLOBS}/read", f"{BLOBS}/write"]}},
        ]
        with pytest.raises(CommandError) as conflict:  # the applied one belongs to another field manager
            apply_document(api, doc)
        assert "HTTP 409" in str(conflict.value) and "--force-conflicts" in str(conflict.value)
        assert apply_document(api, doc, force=True) == "clientintents.clearance.dev/web-intents configured"
        assert apply_document(api, doc) == "clientintents.clearance.dev/web-intents unchanged"
        stored = kube_server.get("clearance.dev/v1", "ClientIntents", "shop", "web-intents")
        assert stored["spec"] == doc["spec"]
        applied.refresh()
        assert {i.status for i in m.list(namespace="shop").intents} == {"applied"}

    # A document for another workload, applied through the CLI as a user would.
    new_doc = dict(doc, metadata={"name": "client-intents-for-api", "namespace": "shop"},
                   spec=dict(doc["spec"], workload={"name": "api", "kind": "Deployment"}))
    res = subprocess.run([str(ROOT / ".venv/bin/clearance"), "intents", "apply", "-f", "-",
                          "--kubeconfig", str(kube_server.kubeconfig)], input=yaml.safe_dump(new_doc),
                         capture_output=True, text=True, timeout=120, cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "clientintents.clearance.dev/client-intents-for-api created"
    assert kube_server.get("clearance.dev/v1", "ClientIntents", "shop", "client-intents-for-api") is not None


def test_applied_intents_follow_the_watch(kube_server):
    kube_server.create(crd_manifest())
    applied = AppliedIntents(kube_server.api_client(), resync_seconds=2)
    applied.start()
    try:
        kube_server.create(_applied_doc([], [f"{BLOBS}/read"]))
        wi = _wait(lambda: applied.index.lookup("shop", "Deployment", "web"), "the watch to see the ClientIntents")
        assert wi.covers(CONTAINER_SCOPE, f"{BLOBS}/read", True)
        assert not wi.covers(CONTAINER_SCOPE, f"{BLOBS}/write", True)
        kube_server.delete("clearance.dev/v1", "ClientIntents", "shop", "web-intents")
        _wait(lambda: applied.index.lookup("shop", "Deployment", "web") is None, "the deletion to be seen")
    finally:
        applied.stop()


def test_the_watch_resumes_from_the_listed_version_and_rebuilds_only_on_change(kube_server):
    kube_server.create(crd_manifest())
    for i in range(20):
        kube_server.create(dict(_applied_doc([], [f"{BLOBS}/read"]), metadata={"name": f"d{i}", "namespace": "shop"}))
    applied = AppliedIntents(kube_server.api_client(), resync_seconds=1)
    applied.start()
    path = "/apis/clearance.dev/v1/clientintents"
    try:
        _wait(lambda: len(applied.index) == 20, "the list")
        listed = applied.index
        watches = lambda: [r for r in kube_server.requests if r.path == path and r.query.get("watch")]  # noqa: E731
        _wait(lambda: len(watches()) >= 3, "the watch to time out and resume twice")
        assert applied.index is listed and applied.rebuilds == 1  # nothing replayed, caches kept
        kube_server.create(dict(_applied_doc([], [f"{BLOBS}/write"]), metadata={"name": "d20", "namespace": "shop"}))
        _wait(lambda: len(applied.index) == 21, "the new document")
        assert applied.rebuilds == 2
        lists = [r for r in kube_server.requests if r.path == path and not r.query.get("watch")]
        assert len(lists) == 1
        assert all(int(r.query.get("resourceVersion", "0")) > 0 for r in watches())
    finally:
        applied.stop()


def test_host_calls_with_a_pod_uid_resolve_through_the_watch(kube_server, tmp_path):
    """The agent reports host=true with only a pod uid when it could not resolve the pod in time."""
    resolver = KubeResolver(kube_server.api_client())
    store = Store(tmp_path / "m.db")
    ingestor = Ingestor(store, resolver)
    resolver.start()
    try:
        kube_server.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "late-0", "namespace": "shop", "ownerReferences": _owner("StatefulSet", "late", "apps/v1")},
            "spec": {"serviceAccountName": "default", "containers": [{"name": "app", "image": "app"}]}})
        uid = kube_server.get("v1", "Pod", "shop", "late-0")["metadata"]["uid"]
        _wait(lambda: resolver.known("shop", "late-0"), "the watch to see the pod")
        c = call(count=2)
        c.caller.CopyFrom(report_pb2.Caller(host=True, node="node-1", pod_uid=uid))
        unknown = call(count=1)
        unknown.caller.CopyFrom(report_pb2.Caller(host=True, node="node-1", pod_uid="uid-not-a-pod"))
        ingestor.report(report_pb2.ReportRequest(agent_id="a", sequence=1, calls=[c, unknown]))
        rows = store.permissions()
        assert [(r.namespace, r.kind, r.name, r.calls) for r in rows] == [("shop", "StatefulSet", "late", 2)]
        assert store.counts()["pending"] == 1  # the unknown uid is kept, not given to the Host yet
    finally:
        resolver.stop()
        store.close()


def test_roles_and_wider_scopes_count_as_applied_and_export_adds_nothing_for_them(kube_server, tmp_path):
    kube_server.create(crd_manifest())
    kube_server.create({"apiVersion": "clearance.dev/v1", "kind": "ClientIntents",
                        "metadata": {"name": "web-intents", "namespace": "shop"},
                        "spec": {"workload": {"name": "web", "kind": "Deployment"}, "targets": [
                            {"azure": {"scope": "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/"
                                                "storageAccounts/shopdata", "roles": ["Storage Blob Data Reader"]}},
                            {"azure": {"scope": "/subscriptions/s1/resourceGroups/rg1",
                                       "dataActions": [f"{BLOBS}/add/action"]}},
                            {"azure": {"scope": CONTAINER_SCOPE, "roles": ["Storage Blob Data Superuser"]}}]}})
    applied = AppliedIntents(kube_server.api_client())
    applied.refresh()
    with running_mapper(tmp_path, applied=applied) as m:
        m.report([call(count=5),  # blobs/read: the role at the account
                  call(method="PUT", headers={"x-ms-blob-type": "BlockBlob", "if-none-match": "*"}),  # add: the RG
                  call(method="PUT", headers={"x-ms-blob-type": "BlockBlob"})])  # blobs/write: missing
        got = [(i.status, tuple(i.data_actions)) for i in m.list(namespace="shop").intents]
        assert got == [("applied", (f"{BLOBS}/add/action", f"{BLOBS}/read")), ("missing", (f"{BLOBS}/write",))]
        doc = m.mapper.export("shop")[0].document
    assert validate_document(doc) == []
    added = [t["azure"] for t in doc["spec"]["targets"] if t["azure"]["scope"] == CONTAINER_SCOPE and "roles" not in t["azure"]]
    assert added == [{"scope": CONTAINER_SCOPE, "dataActions": [f"{BLOBS}/write"]}]  # no read, no add/action
    assert len(doc["spec"]["targets"]) == 4  # the three applied, kept, and the one for what is missing
