"""The Kubernetes API test bed, exercised only through the official kubernetes client and kopf."""
from __future__ import annotations

import asyncio
import json
import logging
import time
import queue
import threading
from typing import Any

import kopf
import kubernetes.client as k8s
import kubernetes.config
import kubernetes.watch
import pytest
import yaml

from beds.kubeserver import KubeServer

GROUP, VERSION, PLURAL = "clearance.dev", "v1", "widgets"


def pod(name: str, labels: dict[str, str] | None = None, node: str = "node-1", sa: str = "default") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "serviceAccountName": sa, "containers": [{"name": "app", "image": "nginx"}]}}


def crd(status: bool = True) -> dict[str, Any]:
    version: dict[str, Any] = {"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": {
        "type": "object", "x-kubernetes-preserve-unknown-fields": True}}}
    if status:
        version["subresources"] = {"status": {}}
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{PLURAL}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced", "versions": [version],
                     "names": {"plural": PLURAL, "singular": "widget", "kind": "Widget", "shortNames": ["wd"]}}}


def error_of(excinfo: pytest.ExceptionInfo[k8s.ApiException]) -> dict[str, Any]:
    return json.loads(excinfo.value.body)


@pytest.fixture
def api(kube_server: KubeServer) -> Any:
    with kube_server.api_client() as client:
        yield client


def test_create_sets_server_fields_and_201(api: Any, kube_server: KubeServer) -> None:
    v1 = k8s.CoreV1Api(api)
    _, status, _ = v1.create_namespaced_pod_with_http_info("default", pod("p1"))
    assert status == 201
    created = v1.read_namespaced_pod("p1", "default")
    assert created.metadata.uid and created.metadata.resource_version and created.metadata.creation_timestamp
    assert created.metadata.namespace == "default" and created.metadata.generation == 1
    with pytest.raises(k8s.ApiException) as exc:
        v1.create_namespaced_pod("default", pod("p1"))
    assert exc.value.status == 409 and error_of(exc)["reason"] == "AlreadyExists"
    with pytest.raises(k8s.ApiException) as exc:
        v1.read_namespaced_pod("missing", "default")
    assert exc.value.status == 404 and error_of(exc) | {"details": None} == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "reason": "NotFound",
        "message": 'pods "missing" not found', "code": 404, "details": None}
    with pytest.raises(k8s.ApiException) as exc:
        v1.create_namespaced_pod("nowhere", pod("p2"))
    assert exc.value.status == 404 and "namespaces" in error_of(exc)["message"]
    assert ("POST", "/api/v1/namespaces/default/pods") in [(r.method, r.path) for r in kube_server.requests]


def test_generate_name_and_bad_input(api: Any) -> None:
    v1 = k8s.CoreV1Api(api)
    made = v1.create_namespaced_config_map("default", {"metadata": {"generateName": "cfg-"}, "data": {"a": "b"}})
    assert made.metadata.name.startswith("cfg-") and len(made.metadata.name) == 9
    with pytest.raises(k8s.ApiException) as exc:
        v1.create_namespaced_config_map("default", {"metadata": {"name": "Bad_Name"}})
    assert exc.value.status == 422 and "metadata.name" in error_of(exc)["message"]
    status, body = _raw(api, "POST", "/api/v1/namespaces/default/configmaps", b"{nope")
    assert status == 400 and "JSON" in body["message"]
    status, body = _raw(api, "PATCH", "/api/v1/namespaces/default/configmaps/" + made.metadata.name, b"{}",
                        "application/x-unknown")
    assert status == 415 and body["reason"] == "UnsupportedMediaType"
    status, body = _raw(api, "GET", "/apis/no.such.group/v1", b"")
    assert status == 404 and body["kind"] == "Status"


def _raw(api: Any, method: str, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, Any]:
    """Send raw bytes through the client's connection pool (for bodies the typed API cannot express)."""
    response = api.rest_client.pool_manager.request(method, api.configuration.host + path, body=body,
                                                    headers={"Content-Type": content_type})
    return response.status, json.loads(response.data)


def test_namespaces(api: Any) -> None:
    v1 = k8s.CoreV1Api(api)
    names = {n.metadata.name for n in v1.list_namespace().items}
    assert {"default", "kube-system"} <= names
    _, status, _ = v1.create_namespace_with_http_info({"metadata": {"name": "shop", "labels": {"team": "a"}}})
    assert status == 201
    assert v1.read_namespace("shop").status.phase == "Active"
    assert [n.metadata.name for n in v1.list_namespace(label_selector="team=a").items] == ["shop"]
    v1.create_namespaced_service_account("shop", {"metadata": {"name": "api"}})
    v1.delete_namespace("shop")
    with pytest.raises(k8s.ApiException):
        v1.read_namespace("shop")
    assert v1.list_service_account_for_all_namespaces(field_selector="metadata.namespace=shop").items == []


def test_list_with_label_and_field_selectors(api: Any, kube_server: KubeServer) -> None:
    v1 = k8s.CoreV1Api(api)
    v1.create_namespace({"metadata": {"name": "other"}})
    v1.create_namespaced_pod("default", pod("a", {"app": "web", "tier": "front"}, node="n1", sa="web"))
    v1.create_namespaced_pod("default", pod("b", {"app": "web"}, node="n2"))
    v1.create_namespaced_pod("default", pod("c", {"app": "db"}, node="n1"))
    v1.create_namespaced_pod("other", pod("d", {"app": "web"}, node="n1"))
    kube_server.set_status("v1", "Pod", "default", "a", {"phase": "Running", "podIP": "10.0.0.5"})

    def names(**kwargs: Any) -> list[str]:
        return [p.metadata.name for p in v1.list_namespaced_pod("default", **kwargs).items]
    assert names() == ["a", "b", "c"]
    assert names(label_selector="app=web") == ["a", "b"]
    assert names(label_selector="app==web,tier") == ["a"]
    assert names(label_selector="app!=web") == ["c"]
    assert names(label_selector="app in (db, cache)") == ["c"]
    assert names(label_selector="app notin (db),!tier") == ["b"]
    assert names(field_selector="spec.nodeName=n1") == ["a", "c"]
    assert names(field_selector="spec.nodeName=n1,metadata.name!=a") == ["c"]
    assert names(field_selector="spec.serviceAccountName=web") == ["a"]
    assert names(field_selector="status.phase=Running") == ["a"]
    assert names(field_selector="status.phase=Pending") == ["b", "c"]
    everywhere = v1.list_pod_for_all_namespaces(field_selector="spec.nodeName=n1")
    assert [(p.metadata.namespace, p.metadata.name) for p in everywhere.items] == [
        ("default", "a"), ("default", "c"), ("other", "d")]
    with pytest.raises(k8s.ApiException) as exc:
        v1.list_namespaced_pod("default", field_selector="spec.bogus=1")
    assert exc.value.status == 400 and "spec.bogus" in error_of(exc)["message"]
    with pytest.raises(k8s.ApiException) as exc:
        v1.list_namespaced_pod("default", label_selector="app in (web")
    assert exc.value.status == 400


def test_replace_with_resource_version_conflict(api: Any) -> None:
    apps = k8s.AppsV1Api(api)
    deployment = {"metadata": {"name": "web", "labels": {"app": "web"}}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}
    created = apps.create_namespaced_deployment("default", deployment)
    stale_rv = created.metadata.resource_version
    created.spec.replicas = 3
    replaced = apps.replace_namespaced_deployment("web", "default", created)
    assert replaced.spec.replicas == 3 and replaced.metadata.generation == 2
    assert replaced.metadata.uid == created.metadata.uid
    assert int(replaced.metadata.resource_version) > int(stale_rv)
    replaced.metadata.labels = {"app": "web", "v": "2"}
    relabelled = apps.replace_namespaced_deployment("web", "default", replaced)
    assert relabelled.metadata.generation == 2  # metadata-only changes do not bump the generation
    created.metadata.resource_version = stale_rv
    with pytest.raises(k8s.ApiException) as exc:
        apps.replace_namespaced_deployment("web", "default", created)
    assert exc.value.status == 409 and error_of(exc)["reason"] == "Conflict"


def test_patch_kinds(api: Any) -> None:
    v1 = k8s.CoreV1Api(api)
    v1.create_namespaced_pod("default", pod("p", {"a": "1", "b": "2"}))
    # strategic merge (a dict through the typed API): containers merge by name.
    patched = v1.patch_namespaced_pod("p", "default", {"metadata": {"labels": {"b": None, "c": "3"}}, "spec": {
        "containers": [{"name": "side", "image": "envoy"}]}})
    assert patched.metadata.labels == {"a": "1", "c": "3"}
    assert [c.name for c in patched.spec.containers] == ["app", "side"]
    # JSON patch (a list), incl. a failing test operation -> 422.
    patched = v1.patch_namespaced_pod("p", "default", [
        {"op": "test", "path": "/metadata/labels/a", "value": "1"},
        {"op": "replace", "path": "/metadata/labels/a", "value": "9"}])
    assert patched.metadata.labels["a"] == "9"
    with pytest.raises(k8s.ApiException) as exc:
        v1.patch_namespaced_pod("p", "default", [{"op": "test", "path": "/metadata/labels/a", "value": "1"}])
    assert exc.value.status == 422 and error_of(exc)["reason"] == "Invalid"
    # merge patch: lists are replaced wholesale.
    patched = v1.patch_namespaced_pod("p", "default", {"spec": {"containers": [{"name": "only", "image": "x"}]}},
                                      _content_type="application/merge-patch+json")
    assert [c.name for c in patched.spec.containers] == ["only"]
    with pytest.raises(k8s.ApiException) as exc:
        v1.patch_namespaced_pod("missing", "default", {"metadata": {"labels": {"x": "y"}}})
    assert exc.value.status == 404


def test_server_side_apply(api: Any) -> None:
    v1 = k8s.CoreV1Api(api)
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "labels": {"owner": "a"}},
              "data": {"x": "1", "y": "2"}}
    _, status, _ = v1.patch_namespaced_config_map_with_http_info(
        "cfg", "default", config, field_manager="tool-a", _content_type="application/apply-patch+yaml")
    assert status == 201
    made = v1.read_namespaced_config_map("cfg", "default")
    assert made.data == {"x": "1", "y": "2"}
    assert [(m.manager, m.operation) for m in made.metadata.managed_fields] == [("tool-a", "Apply")]
    # Another manager wanting a different value for an owned field: 409, unless forced.
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"x": "changed"}}
    with pytest.raises(k8s.ApiException) as exc:
        v1.patch_namespaced_config_map("cfg", "default", other, field_manager="tool-b",
                                       _content_type="application/apply-patch+yaml")
    assert exc.value.status == 409 and "tool-a" in error_of(exc)["message"]
    forced = v1.patch_namespaced_config_map("cfg", "default", other, field_manager="tool-b", force=True,
                                            _content_type="application/apply-patch+yaml")
    assert forced.data == {"x": "changed", "y": "2"}
    # Re-applying without a field this manager owned removes it; fields now owned by others stay.
    smaller = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}, "data": {"z": "3"}}
    after = v1.patch_namespaced_config_map("cfg", "default", smaller, field_manager="tool-a",
                                           _content_type="application/apply-patch+yaml")
    assert after.data == {"x": "changed", "z": "3"} and after.metadata.labels is None
    with pytest.raises(k8s.ApiException) as exc:
        v1.patch_namespaced_config_map("cfg", "default", smaller, _content_type="application/apply-patch+yaml")
    assert exc.value.status == 400 and "fieldManager" in error_of(exc)["message"]


def test_status_subresource_and_crd_crud(api: Any, kube_server: KubeServer) -> None:
    ext = k8s.ApiextensionsV1Api(api)
    custom = k8s.CustomObjectsApi(api)
    with pytest.raises(k8s.ApiException):
        custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    ext.create_custom_resource_definition(crd())
    established = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert any(c.type == "Established" and c.status == "True" for c in established.status.conditions)
    status, resources = _raw(api, "GET", f"/apis/{GROUP}/{VERSION}", b"")
    assert status == 200
    listed = {r["name"]: r for r in resources["resources"]}
    assert listed[PLURAL]["namespaced"] is True and "watch" in listed[PLURAL]["verbs"]
    assert listed[PLURAL]["kind"] == "Widget" and f"{PLURAL}/status" in listed
    assert GROUP in [g.name for g in k8s.ApisApi(api).get_api_versions().groups]

    body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": "w1"},
            "spec": {"size": 1}, "status": {"ignored": True}}
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, body)
    assert created["metadata"]["uid"] and "status" not in created
    updated = custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1",
                                                    {"spec": {"size": 2}, "status": {"also": "ignored"}})
    assert updated["spec"] == {"size": 2} and "status" not in updated and updated["metadata"]["generation"] == 2
    with_status = custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "w1",
                                                               {"status": {"ready": True}, "spec": {"size": 99}})
    assert with_status["status"] == {"ready": True} and with_status["spec"] == {"size": 2}
    assert with_status["metadata"]["generation"] == 2  # status writes do not bump the generation
    replaced = custom.replace_namespaced_custom_object_status(GROUP, VERSION, "default", PLURAL, "w1",
                                                              {**with_status, "status": {"ready": False}})
    assert replaced["status"] == {"ready": False}
    with pytest.raises(k8s.ApiException) as exc:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1", {"spec": {"size": 3}},
                                              _content_type="application/strategic-merge-patch+json")
    assert exc.value.status == 415
    listed_objs = custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)["items"]
    assert [o["metadata"]["name"] for o in listed_objs] == ["w1"]
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w1")
    assert kube_server.get(f"{GROUP}/{VERSION}", "Widget", "default", "w1") is None
    ext.delete_custom_resource_definition(f"{PLURAL}.{GROUP}")
    with pytest.raises(k8s.ApiException) as exc:
        custom.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert exc.value.status == 404


def test_invalid_crd_is_rejected(api: Any) -> None:
    bad = crd()
    bad["metadata"]["name"] = "wrong.name"
    with pytest.raises(k8s.ApiException) as exc:
        k8s.ApiextensionsV1Api(api).create_custom_resource_definition(bad)
    assert exc.value.status == 422 and "metadata.name" in error_of(exc)["message"]


def test_watch_with_resource_version_and_timeout(api: Any) -> None:
    v1 = k8s.CoreV1Api(api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "before", "labels": {"w": "yes"}}})
    listed = v1.list_namespaced_config_map("default")
    rv = listed.metadata.resource_version
    v1.create_namespaced_config_map("default", {"metadata": {"name": "after", "labels": {"w": "yes"}}})
    v1.create_namespaced_config_map("default", {"metadata": {"name": "unlabelled"}})
    v1.patch_namespaced_config_map("after", "default", {"data": {"k": "v"}})
    v1.delete_namespaced_config_map("after", "default")
    events = [(e["type"], e["object"].metadata.name) for e in kubernetes.watch.Watch().stream(
        v1.list_namespaced_config_map, "default", resource_version=rv, label_selector="w=yes", timeout_seconds=1)]
    assert events == [("ADDED", "after"), ("MODIFIED", "after"), ("DELETED", "after")]
    # Without a resourceVersion: the current state first, as ADDED events; the stream ends at the timeout.
    events = [(e["type"], e["object"].metadata.name) for e in kubernetes.watch.Watch().stream(
        v1.list_namespaced_config_map, "default", timeout_seconds=1)]
    assert events == [("ADDED", "before"), ("ADDED", "unlabelled")]


def test_watch_sees_live_changes(api: Any, kube_server: KubeServer) -> None:
    v1 = k8s.CoreV1Api(api)
    seen: queue.Queue[tuple[str, str]] = queue.Queue()

    def watch() -> None:
        for event in kubernetes.watch.Watch().stream(v1.list_namespaced_secret, "default", timeout_seconds=3,
                                                     field_selector="metadata.name=s1"):
            seen.put((event["type"], event["object"].metadata.name))
    thread = threading.Thread(target=watch)
    thread.start()
    kube_server.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s0", "namespace": "default"}})
    kube_server.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s1", "namespace": "default"}})
    assert seen.get(timeout=10) == ("ADDED", "s1")
    thread.join()
    assert seen.empty()


def test_finalizers_hold_deletion(api: Any, kube_server: KubeServer) -> None:
    v1 = k8s.CoreV1Api(api)
    v1.create_namespaced_config_map("default", {"metadata": {"name": "held", "finalizers": ["x.dev/f"],
                                                             "ownerReferences": [{"apiVersion": "v1",
                                                                                  "kind": "Pod", "name": "o",
                                                                                  "uid": "u-1"}]}})
    v1.delete_namespaced_config_map("held", "default")
    held = v1.read_namespaced_config_map("held", "default")
    assert held.metadata.deletion_timestamp is not None
    assert held.metadata.owner_references[0].uid == "u-1"
    rv = held.metadata.resource_version
    v1.patch_namespaced_config_map("held", "default", {"metadata": {"finalizers": None}},
                                   _content_type="application/merge-patch+json")
    with pytest.raises(k8s.ApiException) as exc:
        v1.read_namespaced_config_map("held", "default")
    assert exc.value.status == 404
    events = [(e["type"], e["object"].metadata.name) for e in kubernetes.watch.Watch().stream(
        v1.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=1)]
    assert events == [("MODIFIED", "held"), ("DELETED", "held")]


def test_token_review(api: Any, kube_server: KubeServer) -> None:
    kube_server.register_token("agent-token", "system:serviceaccount:clearance:agent",
                               groups=["system:serviceaccounts"])
    auth = k8s.AuthenticationV1Api(api)
    review = auth.create_token_review({"spec": {"token": "agent-token"}})
    assert review.status.authenticated is True
    assert review.status.user.username == "system:serviceaccount:clearance:agent"
    assert review.status.user.groups == ["system:serviceaccounts"]
    assert auth.create_token_review({"spec": {"token": "forged"}}).status.authenticated is False


def test_events_both_groups(api: Any) -> None:
    k8s.CoreV1Api(api).create_namespaced_event("default", {
        "metadata": {"generateName": "e-"}, "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
        "reason": "Granted", "message": "ok", "type": "Normal"})
    k8s.EventsV1Api(api).create_namespaced_event("default", {
        "metadata": {"name": "e2"}, "eventTime": "2024-01-01T00:00:00.000000Z", "reason": "Granted",
        "action": "Grant", "reportingController": "clearance", "reportingInstance": "x", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": "default"}})
    core = k8s.CoreV1Api(api).list_namespaced_event("default", field_selector="reason=Granted").items
    assert len(core) == 1 and core[0].involved_object.name == "p"
    assert [e.metadata.name for e in k8s.EventsV1Api(api).list_namespaced_event("default").items] == ["e2"]


def test_kubeconfig_and_helpers(kube_server: KubeServer) -> None:
    with open(kube_server.kubeconfig, encoding="utf-8") as f:
        assert yaml.safe_load(f)["clusters"][0]["cluster"]["server"] == kube_server.url
    client = kubernetes.config.new_client_from_config(config_file=kube_server.kubeconfig)
    kube_server.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "seeded", "namespace": "fresh"},
                        "spec": {"containers": [{"name": "c", "image": "x"}]}, "status": {"podIP": "10.1.2.3"}})
    with client:
        seeded = k8s.CoreV1Api(client).read_namespaced_pod("seeded", "fresh")
    assert seeded.status.pod_ip == "10.1.2.3"
    assert [p["metadata"]["name"] for p in kube_server.list("v1", "Pod", field_selector="status.podIP=10.1.2.3")] \
        == ["seeded"]
    assert kube_server.delete("v1", "Pod", "fresh", "seeded") is not None
    assert kube_server.get("v1", "Pod", "fresh", "seeded") is None


def test_kopf_round_trip(kube_server: KubeServer) -> None:
    kube_server.create(crd())
    log: queue.Queue[tuple[str, Any]] = queue.Queue()
    registry = kopf.OperatorRegistry()
    kopf.on.login(registry=registry)(kube_server.kopf_login)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.peering.standalone = True
        settings.posting.level = logging.WARNING
        settings.watching.server_timeout = 10
        settings.persistence.finalizer = "clearance.dev/test-finalizer"

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="created")
    def created(spec: Any, name: str, **_: Any) -> dict[str, Any]:
        log.put(("create", name))
        return {"size": spec["size"]}

    @kopf.on.update(GROUP, VERSION, PLURAL, registry=registry)
    def updated(old: Any, new: Any, **_: Any) -> None:
        log.put(("update", (old["spec"]["size"], new["spec"]["size"])))

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def deleted(name: str, **_: Any) -> None:
        log.put(("delete", name))

    ready, stop = threading.Event(), threading.Event()

    def run() -> None:
        asyncio.run(kopf.operator(registry=registry, clusterwide=True, ready_flag=ready, stop_flag=stop,
                                  standalone=True))
    thread = threading.Thread(target=run)
    thread.start()
    try:
        assert ready.wait(30)
        with kube_server.api_client() as api:
            custom = k8s.CustomObjectsApi(api)
            custom.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, {
                "apiVersion": f"{GROUP}/{VERSION}", "kind": "Widget", "metadata": {"name": "w"},
                "spec": {"size": 1}})
            assert log.get(timeout=20) == ("create", "w")
            obj = _wait_for(lambda: _fetch(custom, "w"), lambda o: o.get("status", {}).get("created"))
            assert obj["status"]["created"] == {"size": 1}
            assert "clearance.dev/test-finalizer" in obj["metadata"]["finalizers"]
            custom.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w", {"spec": {"size": 2}})
            assert log.get(timeout=20) == ("update", (1, 2))
            custom.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "w")
            assert log.get(timeout=20) == ("delete", "w")
            _wait_for(lambda: kube_server.get(f"{GROUP}/{VERSION}", "Widget", "default", "w"), lambda o: o is None)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()


def _fetch(custom: k8s.CustomObjectsApi, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name)


def _wait_for(get: Any, condition: Any, attempts: int = 200) -> Any:
    """Poll until ``condition(get())``; bounded by attempts (not a timed assertion)."""
    value = None
    for _ in range(attempts):
        value = get()
        if condition(value):
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition never held; last value: {value!r}")


def test_fault_injection_and_bookmarks(api: Any, kube_server: KubeServer) -> None:
    assert kube_server.handler is not None
    kube_server.handler["get /api/v1/namespaces/default/pods"] << 503
    v1 = k8s.CoreV1Api(api)
    with pytest.raises(k8s.ApiException) as exc:
        v1.list_namespaced_pod("default")
    assert exc.value.status == 503
    v1.create_namespaced_config_map("default", {"metadata": {"name": "a"}})
    events = [e["type"] for e in kubernetes.watch.Watch().stream(
        v1.list_namespaced_config_map, "default", timeout_seconds=1, allow_watch_bookmarks=True)]
    assert events == ["ADDED", "BOOKMARK"]
