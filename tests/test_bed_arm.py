"""The ARM + Entra ID test bed, exercised only through the real Azure SDK clients."""
from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError, ResourceExistsError,
                                   ResourceNotFoundError, ServiceRequestError, ServiceResponseError)
from azure.core.rest import HttpRequest
from azure.identity import ClientSecretCredential, WorkloadIdentityCredential
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.msi import ManagedServiceIdentityClient
from azure.mgmt.resource.resources import ResourceManagementClient

from beds.arm import ArmServer, start_arm_server
from beds import certs

BLOB_READER = "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"
RA = "Microsoft.Authorization/roleAssignments"


def msi(arm: ArmServer, **kw: Any) -> ManagedServiceIdentityClient:
    return ManagedServiceIdentityClient(arm.credential(), arm.subscription_id, **arm.client_kwargs(), **kw)


def authz(arm: ArmServer, **kw: Any) -> AuthorizationManagementClient:
    return AuthorizationManagementClient(arm.credential(), arm.subscription_id, **arm.client_kwargs(), **kw)


def rm(arm: ArmServer, **kw: Any) -> ResourceManagementClient:
    return ResourceManagementClient(arm.credential(), arm.subscription_id, **arm.client_kwargs(), **kw)


def role_id(arm: ArmServer, guid: str) -> str:
    return f"/subscriptions/{arm.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{guid}"


def assignment(arm: ArmServer, guid: str, principal: str, **extra: Any) -> dict[str, Any]:
    return {"properties": {"roleDefinitionId": role_id(arm, guid), "principalId": principal, **extra}}


def rg_scope(arm: ArmServer) -> str:
    return f"/subscriptions/{arm.subscription_id}/resourceGroups/{arm.resource_group}"


def test_identity_federated_credential_custom_role_and_assignment(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.add_storage_account(arm.subscription_id, arm.resource_group, "shopdata")
    arm.add_container(arm.subscription_id, arm.resource_group, "shopdata", "invoices")
    container = (f"{rg_scope(arm)}/providers/Microsoft.Storage/storageAccounts/shopdata/blobServices/default/"
                 "containers/invoices")
    m = msi(arm)
    ident = m.user_assigned_identities.create_or_update(arm.resource_group, "clr-shop-orders",
                                                        {"location": arm.location, "tags": {"clearance.dev/owner": "x"}})
    assert uuid.UUID(ident.client_id) and uuid.UUID(ident.principal_id) and ident.tenant_id == arm.tenant_id
    again = m.user_assigned_identities.create_or_update(arm.resource_group, "clr-shop-orders",
                                                        {"location": arm.location, "tags": {"v": "2"}})
    assert (again.client_id, again.principal_id, again.tags) == (ident.client_id, ident.principal_id, {"v": "2"})
    fic = m.federated_identity_credentials.create_or_update(
        arm.resource_group, "clr-shop-orders", "clr-fic-shop-orders",
        {"issuer": arm.oidc_issuer, "subject": "system:serviceaccount:shop:orders",
         "audiences": ["api://AzureADTokenExchange"]})
    assert fic.subject == "system:serviceaccount:shop:orders"
    assert [f.name for f in m.federated_identity_credentials.list(arm.resource_group, "clr-shop-orders")] == \
        ["clr-fic-shop-orders"]

    a = authz(arm)
    role_guid = str(uuid.uuid4())
    role = a.role_definitions.create_or_update(f"/subscriptions/{arm.subscription_id}", role_guid, {
        "role_name": "clr-orders-invoices", "description": "made by a test", "role_type": "CustomRole",
        "permissions": [{"actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
                         "data_actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]}],
        "assignable_scopes": [container]})
    assert role.id == role_id(arm, role_guid) and role.role_type == "CustomRole"
    found = list(a.role_definitions.list(f"/subscriptions/{arm.subscription_id}",
                                         filter="roleName eq 'clr-orders-invoices'"))
    assert [r.name for r in found] == [role_guid]
    ra = a.role_assignments.create(container, str(uuid.uuid4()),
                                   assignment(arm, role_guid, ident.principal_id, principalType="ServicePrincipal"))
    assert ra.scope == container and ra.principal_id == ident.principal_id

    assert len(arm.state.identities) == 1 and len(arm.state.fics) == 1
    assert [r["properties"]["scope"] for r in arm.state.role_assignments.values()] == [container]
    assert arm.state.role_definitions[role_guid]["properties"]["assignableScopes"] == [container]
    assert len(arm.calls(method="PUT", path_contains="roleAssignments", status=201)) == 1

    a.role_assignments.delete(container, ra.name)
    a.role_definitions.delete(f"/subscriptions/{arm.subscription_id}", role_guid)
    m.user_assigned_identities.delete(arm.resource_group, "clr-shop-orders")
    assert not arm.state.identities and not arm.state.fics and not arm.state.role_assignments
    with pytest.raises(ResourceNotFoundError) as e:
        m.user_assigned_identities.get(arm.resource_group, "clr-shop-orders")
    assert e.value.error.code == "ResourceNotFound"


def test_role_assignment_exists_is_409(arm_server: ArmServer) -> None:
    arm = arm_server
    ident = msi(arm).user_assigned_identities.create_or_update(arm.resource_group, "uai-a", {"location": "eastus"})
    a = authz(arm)
    a.role_assignments.create(rg_scope(arm), str(uuid.uuid4()), assignment(arm, BLOB_READER, ident.principal_id))
    with pytest.raises(ResourceExistsError) as e:
        a.role_assignments.create(rg_scope(arm), str(uuid.uuid4()), assignment(arm, BLOB_READER, ident.principal_id))
    assert e.value.status_code == 409 and e.value.error.code == "RoleAssignmentExists"
    assert len(arm.calls(method="PUT", path_contains="roleAssignments", error_code="RoleAssignmentExists")) == 1


def test_principal_not_found_while_replicating(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.faults.principal_not_found_seconds = 3600
    ident = msi(arm).user_assigned_identities.create_or_update(arm.resource_group, "uai-b", {"location": "eastus"})
    a = authz(arm)
    with pytest.raises(HttpResponseError) as e:
        a.role_assignments.create(rg_scope(arm), str(uuid.uuid4()),
                                  assignment(arm, BLOB_READER, ident.principal_id, principalType="ServicePrincipal"))
    assert e.value.status_code == 400 and e.value.error.code == "PrincipalNotFound"
    arm.faults.principal_type_skips_lookup = True
    with pytest.raises(HttpResponseError):  # without principalType the lookup still happens
        a.role_assignments.create(rg_scope(arm), str(uuid.uuid4()), assignment(arm, BLOB_READER, ident.principal_id))
    a.role_assignments.create(rg_scope(arm), str(uuid.uuid4()),
                              assignment(arm, BLOB_READER, ident.principal_id, principalType="ServicePrincipal"))
    arm.faults.principal_type_skips_lookup = False
    arm.faults.principal_not_found_seconds = 0
    a.role_assignments.create(f"/subscriptions/{arm.subscription_id}", str(uuid.uuid4()),
                              assignment(arm, BLOB_READER, ident.principal_id))
    assert len(arm.state.role_assignments) == 2


def test_write_throttle_429_retry_after_is_honoured_by_the_sdk(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.faults.throttle(burst=1, refill_per_s=1)
    m = msi(arm)
    m.user_assigned_identities.create_or_update(arm.resource_group, "uai-c1", {"location": "eastus"})
    m.user_assigned_identities.create_or_update(arm.resource_group, "uai-c2", {"location": "eastus"})
    throttled = arm.calls(method="PUT", status=429)
    # If the SDK ignored Retry-After (1 s) it would retry at once and meet an empty bucket again.
    assert len(throttled) == 1 and throttled[0].error_code == "TooManyRequests"
    assert len(arm.state.identities) == 2
    arm.faults.throttle(enabled=False)
    for i in range(5):
        m.user_assigned_identities.create_or_update(arm.resource_group, f"uai-d{i}", {"location": "eastus"})
    assert len(arm.calls(status=429)) == 1


def test_injected_5xx_is_retried_then_surfaces(arm_server: ArmServer) -> None:
    arm = arm_server
    m = msi(arm)
    m.user_assigned_identities.create_or_update(arm.resource_group, "uai-e", {"location": "eastus"})
    arm.faults.fail_next(2, status=503, method="GET", path=r"userAssignedIdentities/uai-e$")
    assert m.user_assigned_identities.get(arm.resource_group, "uai-e").name == "uai-e"
    assert [c.status for c in arm.calls(method="GET", path_contains="uai-e")] == [503, 503, 200]
    arm.faults.fail_next(1, status=500, method="PUT", path="userAssignedIdentities")
    with pytest.raises(HttpResponseError) as e:
        msi(arm, retry_total=0).user_assigned_identities.create_or_update(arm.resource_group, "uai-f",
                                                                        {"location": "eastus"})
    assert e.value.status_code == 500 and e.value.error.code == "InternalServerError"
    assert arm.identity("uai-f") is None


def test_concurrent_federated_credential_writes_conflict(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.faults.fic_write_hold_ms = 2000
    m = msi(arm, retry_total=0)
    for name in ("uai-g", "uai-h"):
        m.user_assigned_identities.create_or_update(arm.resource_group, name, {"location": "eastus"})

    def fic(identity: str, name: str) -> dict[str, Any]:
        return {"issuer": arm.oidc_issuer, "subject": f"system:serviceaccount:ns:{name}",
                "audiences": ["api://AzureADTokenExchange"]}

    first = threading.Thread(target=m.federated_identity_credentials.create_or_update,
                             args=(arm.resource_group, "uai-g", "fic-1", fic("uai-g", "fic-1")))
    first.start()
    while not arm.fic_writes_in_flight():
        time.sleep(0.01)
    other_identity = threading.Thread(target=m.federated_identity_credentials.create_or_update,
                                      args=(arm.resource_group, "uai-h", "fic-1", fic("uai-h", "fic-1")))
    other_identity.start()
    with pytest.raises(ResourceExistsError) as e:
        m.federated_identity_credentials.create_or_update(arm.resource_group, "uai-g", "fic-2", fic("uai-g", "fic-2"))
    assert e.value.error.code == "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity"
    first.join()
    other_identity.join()
    assert sorted(f["id"].split("/")[-3] + "/" + f["name"] for f in arm.state.fics.values()) == \
        ["uai-g/fic-1", "uai-h/fic-1"]


def test_list_role_assignments_with_filters(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.faults.page_size = 2
    arm.add_storage_account(arm.subscription_id, arm.resource_group, "acct")
    account = f"{rg_scope(arm)}/providers/Microsoft.Storage/storageAccounts/acct"
    sub = f"/subscriptions/{arm.subscription_id}"
    p1, p2 = str(uuid.uuid4()), str(uuid.uuid4())
    a = authz(arm)
    for scope, principal in [(sub, p1), (rg_scope(arm), p1), (account, p1), (account, p2), (rg_scope(arm), p2)]:
        a.role_assignments.create(scope, str(uuid.uuid4()), assignment(arm, BLOB_READER, principal))
    scopes = lambda items: sorted(x.scope for x in items)  # noqa: E731
    assert scopes(a.role_assignments.list_for_scope(rg_scope(arm), filter=f"principalId eq '{p1}'")) == \
        sorted([sub, rg_scope(arm), account])
    assert scopes(a.role_assignments.list_for_scope(rg_scope(arm), filter=f"atScope() and assignedTo('{p1}')")) == \
        sorted([sub, rg_scope(arm)])
    assert scopes(a.role_assignments.list_for_scope(account, filter="atScope()")) == \
        sorted([sub, rg_scope(arm), rg_scope(arm), account, account])
    assert len(list(a.role_assignments.list_for_subscription())) == 5
    assert {x.principal_id for x in a.role_assignments.list_for_subscription(filter=f"principalId eq '{p2}'")} == {p2}
    with pytest.raises(HttpResponseError) as e:
        list(a.role_assignments.list_for_scope(sub, filter="roleName eq 'x'"))
    assert e.value.status_code == 400 and e.value.error.code == "InvalidFilterInQueryString"
    assert len(arm.calls(method="GET", path_contains="roleAssignments", status=200)) >= 8  # paged at 2 per page


def test_builtin_roles_are_seeded_with_real_ids(arm_server: ArmServer) -> None:
    arm = arm_server
    a = authz(arm)
    sub = f"/subscriptions/{arm.subscription_id}"
    expected = {"Storage Blob Data Reader": BLOB_READER, "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
                "Storage Queue Data Message Sender": "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
                "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
                "Reader": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c"}
    for name, guid in expected.items():
        [role] = a.role_definitions.list(sub, filter=f"roleName eq '{name}'")
        assert (role.name, role.role_type, role.id) == (guid, "BuiltInRole", role_id(arm, guid))
    reader = a.role_definitions.get(f"{rg_scope(arm)}", BLOB_READER)
    assert reader.permissions[0].data_actions == ["Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"]
    assert list(a.role_definitions.list(sub, filter="type eq 'CustomRole'")) == []
    with pytest.raises(ResourceNotFoundError) as e:
        a.role_definitions.get(sub, str(uuid.uuid4()))
    assert e.value.error.code == "RoleDefinitionDoesNotExist"


def test_custom_role_conflicts(arm_server: ArmServer) -> None:
    arm = arm_server
    a = authz(arm)
    sub = f"/subscriptions/{arm.subscription_id}"
    body = {"role_name": "clr-same", "role_type": "CustomRole", "assignable_scopes": [rg_scope(arm)],
            "permissions": [{"data_actions": ["Microsoft.KeyVault/vaults/secrets/getSecret/action"]}]}
    guid = a.role_definitions.create_or_update(sub, str(uuid.uuid4()), body).name
    with pytest.raises(ResourceExistsError) as e:
        a.role_definitions.create_or_update(sub, str(uuid.uuid4()), body)
    assert e.value.error.code == "RoleDefinitionWithSameNameExists"
    with pytest.raises(HttpResponseError) as e2:
        a.role_assignments.create(sub, str(uuid.uuid4()), assignment(arm, guid, str(uuid.uuid4())))
    assert e2.value.status_code == 403  # subscription is outside the role's assignable scopes
    a.role_assignments.create(rg_scope(arm), str(uuid.uuid4()), assignment(arm, guid, str(uuid.uuid4())))
    with pytest.raises(ResourceExistsError) as e3:
        a.role_definitions.delete(sub, guid)
    assert e3.value.error.code == "RoleDefinitionHasAssignments"
    with pytest.raises(HttpResponseError) as e4:
        a.role_definitions.create_or_update(sub, str(uuid.uuid4()), {**body, "role_name": "other",
                                                                     "assignable_scopes": ["/"]})
    assert e4.value.status_code == 400
    assert [r.role_name for r in a.role_definitions.list(rg_scope(arm), filter="type eq 'CustomRole'")] == ["clr-same"]


def test_workload_identity_credential_through_federated_credential(arm_server: ArmServer, tmp_path: Path) -> None:
    arm = arm_server
    m = msi(arm)
    ident = m.user_assigned_identities.create_or_update(arm.resource_group, "uai-wi", {"location": "eastus"})
    m.federated_identity_credentials.create_or_update(
        arm.resource_group, "uai-wi", "fic-wi", {"issuer": arm.oidc_issuer, "subject": "system:serviceaccount:shop:api",
                                                 "audiences": ["api://AzureADTokenExchange"]})
    token_file = arm.write_service_account_token(tmp_path / "token", "shop", "api")
    wi = WorkloadIdentityCredential(tenant_id=arm.tenant_id, client_id=ident.client_id,
                                    token_file_path=str(token_file), authority=arm.url,
                                    disable_instance_discovery=True, connection_verify=str(arm.ca_cert))
    as_pod = ManagedServiceIdentityClient(wi, arm.subscription_id, **arm.client_kwargs())
    assert as_pod.user_assigned_identities.get(arm.resource_group, "uai-wi").client_id == ident.client_id
    assert arm.calls(method="GET", path_contains="uai-wi")[-1].principal == ident.principal_id

    storage_token = wi.get_token("https://storage.azure.com/.default").token
    claims = json.loads(_b64(storage_token.split(".")[1]))
    assert claims["aud"] == "https://storage.azure.com" and claims["iss"] == f"https://sts.windows.net/{arm.tenant_id}/"
    with pytest.raises(HttpResponseError) as wrong_aud:
        ManagedServiceIdentityClient(wi, arm.subscription_id, base_url=arm.url, connection_verify=str(arm.ca_cert),
                                     credential_scopes=["https://storage.azure.com/.default"], retry_total=0
                                     ).user_assigned_identities.get(arm.resource_group, "uai-wi")
    assert wrong_aud.value.status_code == 401

    stranger = arm.write_service_account_token(tmp_path / "other", "shop", "not-api")
    with pytest.raises(ClientAuthenticationError) as e:
        WorkloadIdentityCredential(tenant_id=arm.tenant_id, client_id=ident.client_id, token_file_path=str(stranger),
                                   authority=arm.url, disable_instance_discovery=True,
                                   connection_verify=str(arm.ca_cert)).get_token("https://management.azure.com/.default")
    assert "AADSTS70021" in str(e.value)


def _b64(text: str) -> bytes:
    import base64
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_client_secret_is_checked(arm_server: ArmServer) -> None:
    arm = arm_server
    bad = ClientSecretCredential(arm.tenant_id, "client", "wrong", authority=arm.url,
                                 connection_verify=str(arm.ca_cert), disable_instance_discovery=True)
    with pytest.raises(ClientAuthenticationError) as e:
        bad.get_token("https://management.azure.com/.default")
    assert "AADSTS7000215" in str(e.value)
    arm.add_app("operator", "s3cret")
    ok = ClientSecretCredential(arm.tenant_id, "operator", "s3cret", authority=arm.url,
                                connection_verify=str(arm.ca_cert), disable_instance_discovery=True)
    assert ok.get_token(arm.url + "/.default").token
    token_calls = arm.calls(method="POST", path_contains="/oauth2/v2.0/token")
    assert [(c.status, c.error_code) for c in token_calls] == [(401, "invalid_client"), (200, None)]


def test_resource_groups_resources_and_clusters(arm_server: ArmServer) -> None:
    arm = arm_server
    other_sub = arm.add_subscription(resource_group="data-rg")
    arm.add_storage_account(other_sub, "data-rg", "faraway")
    arm.add_storage_account(arm.subscription_id, arm.resource_group, "nearby")
    arm.add_container(arm.subscription_id, arm.resource_group, "nearby", "logs")
    arm.add_vault(arm.subscription_id, arm.resource_group, "shop-kv")
    r = rm(arm)
    assert r.resource_groups.get(arm.resource_group).location == arm.location
    with pytest.raises(ResourceNotFoundError) as e:
        r.resource_groups.get("nope")
    assert e.value.error.code == "ResourceGroupNotFound"
    accounts = list(r.resources.list(filter="resourceType eq 'Microsoft.Storage/storageAccounts'"))
    assert [x.name for x in accounts] == ["nearby"]
    r2 = ResourceManagementClient(arm.credential(), other_sub, **arm.client_kwargs())
    assert [x.name for x in r2.resources.list(filter="resourceType eq 'Microsoft.Storage/storageAccounts'")] == \
        ["faraway"]
    assert {x.type for x in r.resources.list_by_resource_group(arm.resource_group)} == {
        "Microsoft.Storage/storageAccounts", "Microsoft.KeyVault/vaults", "Microsoft.ContainerService/managedClusters"}

    types = {t.resource_type: t for t in r.provider_resource_types.list("Microsoft.Storage").value}
    version = types["storageAccounts/blobServices/containers"].api_versions[0]
    container_id = accounts[0].id + "/blobServices/default/containers/logs"
    assert r.resources.get_by_id(container_id, api_version=version).name == "logs"
    with pytest.raises(ResourceNotFoundError) as e2:
        r.resources.get_by_id(accounts[0].id + "/blobServices/default/containers/missing", api_version=version)
    assert e2.value.error.code == "ResourceNotFound"
    with pytest.raises(HttpResponseError) as e3:
        r.resources.get_by_id(container_id, api_version="1999-01-01")
    assert e3.value.error.code == "NoRegisteredProviderFound"

    cluster_id = (f"{rg_scope(arm)}/providers/Microsoft.ContainerService/managedClusters/{arm.cluster_name}")
    aks_version = r.providers.get("Microsoft.ContainerService").resource_types[0].api_versions[0]
    cluster = r.resources.get_by_id(cluster_id, api_version=aks_version)
    assert cluster.properties["oidcIssuerProfile"]["issuerURL"] == arm.oidc_issuer

    subs = r.send_request(HttpRequest("GET", f"{arm.url}/subscriptions?api-version=2022-12-01")).json()
    assert {s["subscriptionId"] for s in subs["value"]} == {arm.subscription_id, other_sub}
    one = r.send_request(HttpRequest("GET", f"{arm.url}/subscriptions/{other_sub}?api-version=2022-12-01")).json()
    assert one["tenantId"] == arm.tenant_id


def test_key_vault_access_policies(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.add_vault(arm.subscription_id, arm.resource_group, "shop-kv")
    r = rm(arm)
    vault_id = f"{rg_scope(arm)}/providers/Microsoft.KeyVault/vaults/shop-kv"
    oid = str(uuid.uuid4())

    def policy(kind: str, secrets: list[str], keys: list[str] | None = None) -> int:
        body = {"properties": {"accessPolicies": [{"tenantId": arm.tenant_id, "objectId": oid,
                                                   "permissions": {"secrets": secrets, "keys": keys or []}}]}}
        resp = r.send_request(HttpRequest("PUT", f"{arm.url}{vault_id}/accessPolicies/{kind}?api-version=2023-07-01",
                                          json=body))
        return resp.status_code

    assert policy("add", ["get"]) == 200
    assert policy("add", ["list"], ["decrypt"]) == 200
    vault = r.resources.get_by_id(vault_id, api_version="2023-07-01")
    [entry] = vault.properties["accessPolicies"]
    assert entry["permissions"]["secrets"] == ["get", "list"] and entry["permissions"]["keys"] == ["decrypt"]
    assert policy("replace", ["get"]) == 200
    assert arm.state.vaults[vault_id]["properties"]["accessPolicies"][0]["permissions"]["secrets"] == ["get"]
    assert policy("remove", ["get"]) == 200
    assert arm.state.vaults[vault_id]["properties"]["accessPolicies"] == []
    assert policy("delete", ["get"]) == 400
    listed = r.send_request(HttpRequest(
        "GET", f"{arm.url}{rg_scope(arm)}/providers/Microsoft.KeyVault/vaults?api-version=2023-07-01")).json()
    assert [v["name"] for v in listed["value"]] == ["shop-kv"]


def test_bad_input_gets_a_clear_arm_error(arm_server: ArmServer) -> None:
    arm = arm_server
    r = rm(arm)
    identity_url = f"{arm.url}{rg_scope(arm)}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-x"
    resp = r.send_request(HttpRequest("PUT", identity_url + "?api-version=2024-11-30", content=b"{not json",
                                      headers={"Content-Type": "application/json"}))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "InvalidRequestContent"
    resp = r.send_request(HttpRequest("GET", identity_url))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "MissingApiVersionParameter"
    resp = r.send_request(HttpRequest("PUT", identity_url.replace("uai-x", "-bad") + "?api-version=2024-11-30",
                                      json={"location": "eastus"}))
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "InvalidResourceName"
    resp = r.send_request(HttpRequest("PUT", f"{arm.url}/subscriptions/{arm.subscription_id}/resourceGroups/nope/"
                                      "providers/Microsoft.ManagedIdentity/userAssignedIdentities/uai-y"
                                      "?api-version=2024-11-30", json={"location": "eastus"}))
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "ResourceGroupNotFound"
    with pytest.raises(HttpResponseError) as e:
        msi(arm).federated_identity_credentials.create_or_update(
            arm.resource_group, "no-such-identity", "fic", {"issuer": arm.oidc_issuer, "subject": "s",
                                                            "audiences": ["api://AzureADTokenExchange"]})
    assert e.value.error.code == "ParentResourceNotFound"
    anonymous = r.send_request(HttpRequest("GET", identity_url + "?api-version=2024-11-30"),
                               )  # authenticated by the pipeline
    assert anonymous.status_code == 404
    import requests
    raw = requests.get(identity_url + "?api-version=2024-11-30", verify=str(arm.ca_cert), timeout=10)
    assert raw.status_code == 401 and raw.json()["error"]["code"] == "AuthenticationFailed"


def test_unreachable_and_latency_switches(arm_server: ArmServer) -> None:
    arm = arm_server
    m = msi(arm, retry_total=0)
    m.user_assigned_identities.create_or_update(arm.resource_group, "uai-u", {"location": "eastus"})
    arm.faults.unreachable = True
    with pytest.raises((ServiceRequestError, ServiceResponseError)):
        m.user_assigned_identities.get(arm.resource_group, "uai-u")
    arm.faults.unreachable = False
    arm.faults.latency_ms = 50
    assert m.user_assigned_identities.get(arm.resource_group, "uai-u").name == "uai-u"
    assert [c.status for c in arm.calls(method="GET", path_contains="uai-u")] == [0, 200]


def test_paged_identity_list(arm_server: ArmServer) -> None:
    arm = arm_server
    arm.faults.page_size = 2
    m = msi(arm)
    for i in range(5):
        m.user_assigned_identities.create_or_update(arm.resource_group, f"uai-p{i}", {"location": "eastus"})
    assert sorted(i.name for i in m.user_assigned_identities.list_by_resource_group(arm.resource_group)) == \
        [f"uai-p{i}" for i in range(5)]
    assert len(arm.calls(method="GET", path_contains="userAssignedIdentities")) == 3


def test_stop_frees_the_port(test_pki: certs.TestPKI) -> None:
    server = start_arm_server(test_pki)
    port = server.port
    server.stop()
    assert not server._thread.is_alive()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
