"""The mutating admission webhook over HTTPS with real AdmissionReview v1 payloads."""
from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import jsonpatch
import requests

from clearance.operator.identity import labels as L
from clearance.operator.identity import podspec
from test_operator_identity_harness import (
    core, ensure_namespace, identity_of, identity_puts, make_sa, operator_factory, pod_body, sa_annotation, wait_for,
)

__all__ = ["operator_factory"]


def review(pod: dict[str, Any], namespace: str) -> dict[str, Any]:
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "kind": {"group": "", "version": "v1", "kind": "Pod"},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "namespace": namespace, "operation": "CREATE",
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller", "groups": []},
        "object": pod, "oldObject": None, "dryRun": False,
        "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}}


def admit(op: Any, pki: Any, pod: dict[str, Any], namespace: str = "shop") -> tuple[dict[str, Any], dict[str, Any]]:
    """POST the review; return (response, pod after the patch)."""
    sent = review(pod, namespace)
    r = requests.post(op.webhook_url, json=sent, verify=str(pki.ca_cert), timeout=60)
    r.raise_for_status()
    body = r.json()
    assert body["apiVersion"] == "admission.k8s.io/v1" and body["kind"] == "AdmissionReview"
    response = body["response"]
    assert response["uid"] == sent["request"]["uid"]
    patched = pod
    if response.get("patch"):
        assert response["patchType"] == "JSONPatch"
        patched = jsonpatch.apply_patch(pod, json.loads(base64.b64decode(response["patch"])))
    return response, patched


def env_of(pod: dict[str, Any]) -> dict[str, str | None]:
    return {e["name"]: e.get("value") for e in pod["spec"]["containers"][0].get("env", [])}


def _setup(kube_server: Any) -> Any:
    api = core(kube_server)
    ensure_namespace(api, "shop")
    make_sa(api, "shop", "orders")
    return api


def nameless_pod() -> dict[str, Any]:
    pod = pod_body("shop", "ignored", "orders")
    del pod["metadata"]["name"], pod["metadata"]["namespace"]  # as a ReplicaSet creates it
    pod["metadata"]["generateName"] = "orders-"
    return pod


def test_first_pod_gets_identity_synchronously(kube_server: Any, arm_server: Any, test_pki: Any,
                                               operator_factory: Any) -> None:
    op = operator_factory()
    api = _setup(kube_server)
    response, pod = admit(op, test_pki, nameless_pod())
    assert response["allowed"] is True
    body = identity_of(arm_server, op.settings, "shop", "orders")
    assert body is not None  # created during the admission call
    env = env_of(pod)
    assert env["AZURE_CLIENT_ID"] == body["properties"]["clientId"]
    assert env["AZURE_TENANT_ID"] == arm_server.tenant_id
    assert env["AZURE_FEDERATED_TOKEN_FILE"] == podspec.TOKEN_FILE
    assert env["AZURE_AUTHORITY_HOST"] == op.settings.authority_host
    [vol] = pod["spec"]["volumes"]
    assert vol["projected"]["sources"][0]["serviceAccountToken"]["audience"] == "api://AzureADTokenExchange"
    assert sa_annotation(api, "shop", "orders") == env["AZURE_CLIENT_ID"]


def test_existing_identity_and_azure_webhook_ran_first(kube_server: Any, arm_server: Any, test_pki: Any,
                                                       operator_factory: Any) -> None:
    op = operator_factory()
    _setup(kube_server)
    admit(op, test_pki, nameless_pod())
    # Azure's webhook already mutated this one, before the SA had its annotation: empty client id.
    pod = nameless_pod()
    podspec.inject(pod, client_id=None, tenant_id=arm_server.tenant_id, authority_host=op.settings.authority_host)
    pod["spec"]["containers"][0]["env"].insert(0, {"name": "AZURE_CLIENT_ID", "value": ""})
    response, patched = admit(op, test_pki, pod)
    assert response["allowed"] is True
    c = patched["spec"]["containers"][0]
    assert [e["name"] for e in c["env"]].count("AZURE_CLIENT_ID") == 1
    assert env_of(patched)["AZURE_CLIENT_ID"] == identity_of(arm_server, op.settings, "shop", "orders")["properties"]["clientId"]
    assert len(patched["spec"]["volumes"]) == 1 and len(c["volumeMounts"]) == 1
    assert len(identity_puts(arm_server, op.settings, "shop", "orders")) == 1


def test_unlabelled_pod_untouched(kube_server: Any, arm_server: Any, test_pki: Any, operator_factory: Any) -> None:
    op = operator_factory()
    _setup(kube_server)
    pod = nameless_pod()
    pod["metadata"]["labels"] = {"app": "x"}
    response, patched = admit(op, test_pki, pod)
    assert response["allowed"] is True and not response.get("patch") and patched == pod
    assert not arm_server.state.identities


def test_azure_unreachable_admits_then_finishes_in_background(kube_server: Any, arm_server: Any, test_pki: Any,
                                                              operator_factory: Any) -> None:
    op = operator_factory(webhook_deadline=2.0)
    api = _setup(kube_server)
    arm_server.faults.unreachable = True
    response, pod = admit(op, test_pki, nameless_pod())
    assert response["allowed"] is True
    assert any("not ready" in w for w in response.get("warnings", []))
    env = env_of(pod)
    assert "AZURE_CLIENT_ID" not in env and env["AZURE_FEDERATED_TOKEN_FILE"] == podspec.TOKEN_FILE
    events = wait_for(lambda: [e for e in kube_server.list("v1", "Event", "shop")
                               if e.get("reason") == "AzureIdentityPending"], "Warning event posted")
    assert events[0]["type"] == "Warning"
    arm_server.faults.unreachable = False
    client_id = wait_for(lambda: sa_annotation(api, "shop", "orders"), "identity finished in the background")
    _, second = admit(op, test_pki, nameless_pod())  # the pod's next start is correct
    assert env_of(second)["AZURE_CLIENT_ID"] == client_id
    assert L.SA_CLIENT_ID in second["metadata"]["annotations"]
