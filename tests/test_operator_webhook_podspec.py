"""Unit tests: workload-identity injection into pod specs, with and without Azure's webhook."""
from __future__ import annotations

import copy

from clearance.operator.identity import labels as L
from clearance.operator.identity import podspec

AUTH = "https://login.microsoftonline.com/"


def _pod(**spec: object) -> dict:
    base = {"containers": [{"name": "app", "image": "x"}]}
    base.update(spec)
    return {"metadata": {"labels": {L.POD_LABEL: "true"}}, "spec": base}


def _env(container: dict) -> dict:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


def test_fresh_pod_gets_volume_mount_and_variables() -> None:
    pod = _pod(initContainers=[{"name": "init", "image": "y"}])
    podspec.inject(pod, client_id="cid", tenant_id="tid", authority_host=AUTH)
    [vol] = pod["spec"]["volumes"]
    src = vol["projected"]["sources"][0]["serviceAccountToken"]
    assert vol["name"] == podspec.TOKEN_VOLUME and src["audience"] == "api://AzureADTokenExchange"
    for c in pod["spec"]["containers"] + pod["spec"]["initContainers"]:
        assert _env(c) == {"AZURE_CLIENT_ID": "cid", "AZURE_TENANT_ID": "tid",
                           "AZURE_FEDERATED_TOKEN_FILE": podspec.TOKEN_FILE, "AZURE_AUTHORITY_HOST": AUTH}
        assert c["volumeMounts"] == [{"name": podspec.TOKEN_VOLUME, "mountPath": podspec.TOKEN_DIR, "readOnly": True}]


def test_idempotent_and_after_azure_webhook_no_duplicates() -> None:
    # Azure's webhook ran first, before the SA had its client-id annotation: empty AZURE_CLIENT_ID.
    pod = _pod()
    podspec.inject(pod, client_id=None, tenant_id="tid", authority_host=AUTH)
    pod["spec"]["containers"][0]["env"].insert(0, {"name": "AZURE_CLIENT_ID", "value": ""})
    podspec.inject(pod, client_id="cid", tenant_id="tid", authority_host=AUTH)
    once = copy.deepcopy(pod)
    podspec.inject(pod, client_id="cid", tenant_id="tid", authority_host=AUTH)
    assert pod == once
    c = pod["spec"]["containers"][0]
    assert [e["name"] for e in c["env"]].count("AZURE_CLIENT_ID") == 1
    assert _env(c)["AZURE_CLIENT_ID"] == "cid"
    assert len(pod["spec"]["volumes"]) == 1 and len(c["volumeMounts"]) == 1


def test_existing_values_are_kept() -> None:
    pod = _pod()
    pod["spec"]["containers"][0]["env"] = [{"name": "AZURE_CLIENT_ID", "value": "users-choice"},
                                           {"name": "AZURE_TENANT_ID", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    podspec.inject(pod, client_id="cid", tenant_id="tid", authority_host=AUTH)
    env = pod["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "AZURE_CLIENT_ID", "value": "users-choice"}
    assert "value" not in env[1]


def test_without_identity_no_client_id_but_token_ready() -> None:
    pod = _pod()
    podspec.inject(pod, client_id=None, tenant_id="tid", authority_host=AUTH)
    env = _env(pod["spec"]["containers"][0])
    assert "AZURE_CLIENT_ID" not in env and env["AZURE_FEDERATED_TOKEN_FILE"] == podspec.TOKEN_FILE


def test_labels() -> None:
    assert L.wants_identity({L.POD_LABEL: "true"}, False)
    assert not L.wants_identity({L.POD_LABEL: "false"}, True)
    assert not L.wants_identity({L.OTTERIZE_POD_LABEL: "true"}, False)
    assert L.wants_identity({L.OTTERIZE_POD_LABEL: "true"}, True)
    assert not L.wants_identity(None, True)
    assert L.service_account_of({"spec": {}}) == "default"
    assert L.service_account_of({"spec": {"serviceAccountName": "sa"}}) == "sa"
