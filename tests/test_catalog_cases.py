"""Subtle cases, unknown calls, denials, sovereign clouds, emulators, ARM, and odd input."""
from __future__ import annotations

import pytest

from test_catalog_support import ACCT, CONT, SECRET, VAULT, G, call
from clearance.mapper.catalog import classify
from clearance.v1.report_pb2 import ObservedCall

BB = "blobServices/containers/blobs/"
UPLOADS = ACCT + "/blobServices/default/containers/uploads"


# --- the tutorial ------------------------------------------------------------------------------

def test_tutorial_download_needs_read_on_downloads() -> None:
    got = classify(call("blob", "GET", "/downloads/{name}"))
    assert got.operation == "blob:GetBlob"
    assert got.grants == (G(ACCT + "/blobServices/default/containers/downloads", d=[BB + "read"]),)


def test_tutorial_overwriting_upload_needs_write_only() -> None:
    """`az storage blob upload --overwrite` sends Put Blob without If-None-Match: blobs/write
    alone covers create and overwrite (docs/catalog.md explains why add/action is not added)."""
    got = classify(call("blob", "PUT", "/uploads/{name}", headers="x-ms-blob-type=BlockBlob"))
    assert got.grants == (G(UPLOADS, d=[BB + "write"]),)


def test_create_only_upload_needs_add_only() -> None:
    got = classify(call("blob", "PUT", "/uploads/{name}", headers="x-ms-blob-type=BlockBlob&if-none-match=*"))
    assert got.grants == (G(UPLOADS, d=[BB + "add/action"]),)


def test_if_none_match_other_than_star_is_not_create_only() -> None:
    got = classify(call("blob", "PUT", "/uploads/{name}", headers='x-ms-blob-type=BlockBlob&if-none-match="0x8D"'))
    assert got.grants == (G(UPLOADS, d=[BB + "write"]),)


# --- account scope, actions vs dataActions ---------------------------------------------------

@pytest.mark.parametrize("service,path,query,action", [
    ("blob", "/", "comp=list", "blobServices/containers/read"),
    ("queue", "/", "comp=list", "queueServices/queues/read"),
    ("table", "/Tables", "", "tableServices/tables/read"),
    ("file", "/", "comp=list", "fileServices/shares/read"),
    ("dfs", "/", "resource=account", "blobServices/containers/read"),
])
def test_list_operations_are_actions_at_account_scope(service: str, path: str, query: str, action: str) -> None:
    got = classify(call(service, "GET", path, query))
    assert got.grants == (G(ACCT, a=[action]),)


def test_container_create_read_getacl_are_actions() -> None:
    for query, method in (("restype=container", "PUT"), ("restype=container", "GET"),
                          ("restype=container&comp=acl", "GET")):
        (grant,) = classify(call("blob", method, "/c1", query)).grants
        assert grant.actions and not grant.data_actions


# --- versions, snapshots, permanent delete -------------------------------------------------------

@pytest.mark.parametrize("query,needed", [
    ("", "delete"),
    ("snapshot=*", "delete"),
    ("versionid=*", "deleteBlobVersion/action"),
    ("deletetype=permanent&versionid=*", "permanentDelete/action"),
    ("deletetype=permanent&snapshot=*", "permanentDelete/action"),
])
def test_delete_variants(query: str, needed: str) -> None:
    assert classify(call("blob", "DELETE", "/c1/{name}", query)).grants == (G(CONT, d=[BB + needed]),)


def test_reading_a_version_or_snapshot_is_still_read() -> None:
    for query in ("versionid=*", "snapshot=*"):
        assert classify(call("blob", "GET", "/c1/{name}", query)).grants == (G(CONT, d=[BB + "read"]),)
    assert classify(call("blob", "GET", "/c1/{name}", "comp=tags&versionid=*")).grants == \
        (G(CONT, d=[BB + "tags/read"]),)


# --- copy: read on the source -------------------------------------------------------------------

def test_copy_within_one_container_merges_into_one_grant() -> None:
    got = classify(call("blob", "PUT", "/c1/{name}", headers="x-ms-copy-source=https://acct.blob.core.windows.net/c1"))
    assert got.grants == (G(CONT, d=[BB + "write", BB + "read"]),)


def test_copy_from_another_account_without_source_authorization_needs_no_source_role() -> None:
    """A cross-account source is public or SAS-authorized; RBAC on it is not what was used."""
    got = classify(call("blob", "PUT", "/c1/{name}", headers="x-ms-copy-source=https://other.blob.core.windows.net/pub"))
    assert got.grants == (G(CONT, d=[BB + "write"]),)


def test_copy_from_another_account_with_bearer_source_authorization_needs_read_there() -> None:
    got = classify(call("blob", "PUT", "/c1/{name}", headers=(
        "x-ms-copy-source=https://other.blob.core.windows.net/src&x-ms-blob-type=BlockBlob"
        "&x-ms-copy-source-authorization=*")))
    assert got.operation == "blob:PutBlobFromURL"
    assert set(got.grants) == {
        G(CONT, d=[BB + "write"]),
        G("/providers/Microsoft.Storage/storageAccounts/other/blobServices/default/containers/src", d=[BB + "read"])}


@pytest.mark.parametrize("source", [
    "https://acct.blob.core.usgovcloudapi.net/src",
    "https://acct.blob.core.chinacloudapi.cn/src",
    "https://acct.blob.localhost:10000/src",
    "https://127.0.0.1:10000/acct/src",
    "https://acct.dfs.core.windows.net/src",
])
def test_copy_source_forms(source: str) -> None:
    got = classify(call("blob", "PUT", "/c1/{name}", headers=f"x-ms-copy-source={source}"))
    assert G(ACCT + "/blobServices/default/containers/src", d=[BB + "read"]) in got.grants


@pytest.mark.parametrize("source", ["not a url", "https://example.com/file.txt", "ftp://acct.blob.core.windows.net/x",
                                    "https://acct.blob.core.windows.net/", "https://[::1/x"])
def test_copy_source_that_is_not_storage_adds_nothing(source: str) -> None:
    got = classify(call("blob", "PUT", "/c1/{name}", headers=f"x-ms-copy-source={source}"))
    assert got.operation == "blob:CopyBlob"
    assert got.grants == (G(CONT, d=[BB + "write"]),)


# --- batch --------------------------------------------------------------------------------------

def test_batch_subrequests_are_classified_one_by_one() -> None:
    """The agent splits a batch; each sub-request is Delete Blob or Set Blob Tier on its own."""
    assert classify(call("blob", "DELETE", "/c1/{name}")).operation == "blob:DeleteBlob"
    assert classify(call("blob", "PUT", "/c1/{name}", "comp=tier")).operation == "blob:SetBlobTier"
    assert classify(call("table", "POST", "/$batch")).grants == ()


# --- table If-Match and X-HTTP-Method --------------------------------------------------------------

def test_table_merge_tunnelled_through_post() -> None:
    got = classify(call("table", "POST", "/t1(PartitionKey='{key}',RowKey='{key}')", headers="x-http-method=MERGE&if-match=*"))
    assert got.operation == "table:MergeEntity"


# --- unknowns -------------------------------------------------------------------------------------

@pytest.mark.parametrize("service,method,path,query,headers", [
    ("blob", "GET", "/c1/{name}", "comp=nosuchthing", ""),
    ("blob", "PUT", "/c1/{name}", "", ""),                     # no blob type, no copy source
    ("blob", "POST", "/c1", "restype=container", ""),
    ("blob", "TRACE", "/", "", ""),
    ("queue", "GET", "/q1/messages/{name}/extra", "", ""),
    ("queue", "GET", "/q1/other", "", ""),
    ("table", "GET", "/t1/extra", "", ""),
    ("table", "GET", "/t-1()", "", ""),
    ("vault", "GET", "/storage/x", "", ""),
    ("vault", "POST", "/secrets/s1", "", ""),
    ("vault", "GET", "/keys/k1/{version}/encrypt/more", "", ""),
    ("smtp", "GET", "/", "", ""),
    ("arm", "GET", "/", "", ""),
    ("arm", "PUT", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts", "", ""),
    ("arm", "GET", "/subscriptions/s/../x", "", ""),
    ("arm", "GET", "/tenants", "", ""),
])
def test_unknown_calls_are_reported_unknown(service: str, method: str, path: str, query: str, headers: str) -> None:
    got = classify(call(service, method, path, query, headers))
    assert (got.operation, got.grants, got.unknown) == ("unknown", (), True)


def test_redacted_container_name_is_unknown_not_widened() -> None:
    got = classify(call("blob", "GET", "/{name}/{name}"))
    assert got.unknown and got.grants == ()


def test_missing_account_is_unknown_not_widened() -> None:
    got = classify(call("blob", "GET", "/c1/{name}", account="", host="10.0.0.4:443"))
    assert got.unknown and got.grants == ()


def test_redacted_vault_object_name_falls_back_to_the_vault() -> None:
    got = classify(call("vault", "GET", "/keys/{name}/{version}"))
    assert got.grants == (G(VAULT, d=["keys/read"]),)


def test_certificate_private_key_is_a_secret_read() -> None:
    assert classify(call("vault", "GET", "/secrets/c1")).grants == \
        (G(VAULT + "/secrets/c1", d=["secrets/getSecret/action"]),)


def test_kv_names_and_paths_are_case_insensitive_for_words_only() -> None:
    got = classify(call("vault", "GET", "/Secrets/S1/Versions"))
    assert got.operation == "vault:GetSecretVersions"
    assert got.grants == (G(VAULT + "/secrets/S1", d=["secrets/readMetadata/action"]),)


# --- denied ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("service,path,code", [
    ("blob", "/c1/{name}", "AuthorizationPermissionMismatch"),
    ("vault", "/secrets/s1", "ForbiddenByRbac"),
    ("arm", "/subscriptions/s/resourceGroups/rg", "AuthorizationFailed"),
])
def test_denied_calls_keep_their_grants(service: str, path: str, code: str) -> None:
    got = classify(call(service, "GET", path, status=403, error_code=code))
    assert got.denied and not got.unknown and got.grants


@pytest.mark.parametrize("status,code", [(403, "AuthorizationFailure"), (403, "ForbiddenByConnection"),
                                         (404, "AuthorizationPermissionMismatch"), (200, "")])
def test_other_failures_are_not_denials(status: int, code: str) -> None:
    assert not classify(call("blob", "GET", "/c1/{name}", status=status, error_code=code)).denied


def test_unknown_denied_call_is_still_marked_denied() -> None:
    got = classify(call("blob", "GET", "/c1/{name}", "comp=weird", status=403, error_code="AuthorizationPermissionMismatch"))
    assert got.unknown and got.denied


# --- sovereign clouds, DNS zones, emulators ----------------------------------------------------------

@pytest.mark.parametrize("host", [
    "acct.blob.core.windows.net", "acct.blob.core.usgovcloudapi.net", "acct.blob.core.chinacloudapi.cn",
    "acct.z12.blob.storage.azure.net", "acct.blob.localhost:10000",
])
def test_blob_hosts_of_every_cloud(host: str) -> None:
    got = classify(call("blob", "GET", "/c1/{name}", host=host))
    assert got.grants == (G(CONT, d=[BB + "read"]),)


@pytest.mark.parametrize("host", ["kv1.vault.azure.net", "kv1.vault.usgovcloudapi.net", "kv1.vault.azure.cn"])
def test_vault_hosts_of_every_cloud(host: str) -> None:
    assert classify(call("vault", "GET", "/secrets/s1", host=host)).grants == \
        (G(SECRET, d=["secrets/getSecret/action"]),)


@pytest.mark.parametrize("host", ["management.azure.com", "management.usgovcloudapi.net", "management.chinacloudapi.cn"])
def test_arm_hosts_of_every_cloud(host: str) -> None:
    got = classify(call("arm", "GET", "/subscriptions/s/resourceGroups/rg", host=host, account=""))
    assert got.operation == "arm:Microsoft.Resources/subscriptions/resourceGroups/read"


def test_service_and_account_from_the_host_when_the_agent_left_them_empty() -> None:
    got = classify(call("", "GET", "/q1/messages", account="", host="acct.queue.core.usgovcloudapi.net"))
    assert got.operation == "queue:GetMessages"
    assert got.grants[0].scope == ACCT + "/queueServices/default/queues/q1"


def test_path_style_emulator_account_segment_is_skipped() -> None:
    got = classify(call("blob", "GET", "/acct/c1", "restype=container&comp=list", host="127.0.0.1:10000"))
    assert got.grants == (G(CONT, d=[BB + "read"]),)


def test_container_named_like_the_account_on_a_product_host_is_kept() -> None:
    got = classify(call("blob", "GET", "/acct/{name}", host="acct.blob.core.windows.net"))
    assert got.grants == (G(ACCT + "/blobServices/default/containers/acct", d=[BB + "read"]),)


# --- ARM --------------------------------------------------------------------------------------------

RG = "/subscriptions/s1/resourceGroups/rg1"
SA_ID = RG + "/providers/Microsoft.Storage/storageAccounts/a1"


@pytest.mark.parametrize("method,path,status,action,scope", [
    ("GET", SA_ID, 200, "Microsoft.Storage/storageAccounts/read", SA_ID),
    ("HEAD", RG, 204, "Microsoft.Resources/subscriptions/resourceGroups/read", RG),
    ("PATCH", SA_ID, 200, "Microsoft.Storage/storageAccounts/write", SA_ID),
    ("PUT", SA_ID, 200, "Microsoft.Storage/storageAccounts/write", SA_ID),
    ("PUT", SA_ID, 201, "Microsoft.Storage/storageAccounts/write", RG),
    ("PUT", SA_ID, 0, "Microsoft.Storage/storageAccounts/write", RG),
    ("DELETE", SA_ID, 200, "Microsoft.Storage/storageAccounts/delete", SA_ID),
    ("POST", SA_ID + "/listKeys", 200, "Microsoft.Storage/storageAccounts/listkeys/action", SA_ID),
    ("POST", SA_ID + "/regenerateKey", 200, "Microsoft.Storage/storageAccounts/regeneratekey/action", SA_ID),
    ("POST", SA_ID + "/ListAccountSas", 200, "Microsoft.Storage/storageAccounts/listAccountSas/action", SA_ID),
    ("POST", SA_ID + "/revokeUserDelegationKeys", 200, "Microsoft.Storage/storageAccounts/revokeUserDelegationKeys/action", SA_ID),
    ("GET", SA_ID + "/blobServices/default", 200, "Microsoft.Storage/storageAccounts/blobServices/read", SA_ID + "/blobServices/default"),
    ("GET", SA_ID + "/blobServices/default/containers", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/read", SA_ID + "/blobServices/default"),
    ("PUT", SA_ID + "/blobServices/default/containers/c1", 201, "Microsoft.Storage/storageAccounts/blobServices/containers/write", SA_ID + "/blobServices/default"),
    ("POST", SA_ID + "/blobServices/default/containers/c1/lease", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/lease/action", SA_ID + "/blobServices/default/containers/c1"),
    ("POST", SA_ID + "/blobServices/default/containers/c1/setLegalHold", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/setLegalHold/action", SA_ID + "/blobServices/default/containers/c1"),
    ("POST", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default/lock", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies/lock/action", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default"),
    ("POST", SA_ID + "/ListServiceSas", 200, "Microsoft.Storage/storageAccounts/listServiceSas/action", SA_ID),
    ("PUT", SA_ID + "/blobServices/default", 200, "Microsoft.Storage/storageAccounts/blobServices/write", SA_ID + "/blobServices/default"),
    ("GET", SA_ID + "/blobServices/default/containers/c1", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/read", SA_ID + "/blobServices/default/containers/c1"),
    ("DELETE", SA_ID + "/blobServices/default/containers/c1", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/delete", SA_ID + "/blobServices/default/containers/c1"),
    ("POST", SA_ID + "/blobServices/default/containers/c1/clearLegalHold", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/clearLegalHold/action", SA_ID + "/blobServices/default/containers/c1"),
    ("PUT", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default", 201, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies/write", SA_ID + "/blobServices/default/containers/c1"),
    ("GET", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies/read", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default"),
    ("DELETE", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies/delete", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default"),
    ("POST", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default/extend", 200, "Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies/extend/action", SA_ID + "/blobServices/default/containers/c1/immutabilityPolicies/default"),
    ("GET", "/subscriptions/s1/providers/Microsoft.Storage/storageAccounts", 200, "Microsoft.Storage/storageAccounts/read", "/subscriptions/s1"),
    ("POST", "/subscriptions/s1/providers/Microsoft.Storage/checkNameAvailability", 200, "Microsoft.Storage/checknameavailability/read", "/subscriptions/s1"),
    ("POST", "/subscriptions/s1/providers/Microsoft.Storage/register", 200, "Microsoft.Storage/register/action", "/subscriptions/s1"),
    ("GET", "/subscriptions/s1", 200, "Microsoft.Resources/subscriptions/read", "/subscriptions/s1"),
    ("GET", "/subscriptions/s1/resourcegroups", 200, "Microsoft.Resources/subscriptions/resourceGroups/read", "/subscriptions/s1"),
    ("PUT", "/subscriptions/s1/resourcegroups/rg1", 201, "Microsoft.Resources/subscriptions/resourceGroups/write", "/subscriptions/s1"),
    ("GET", RG + "/resources", 200, "Microsoft.Resources/subscriptions/resourceGroups/resources/read", RG),
    ("PUT", SA_ID + "/providers/Microsoft.Authorization/roleAssignments/g1", 201, "Microsoft.Authorization/roleAssignments/write", SA_ID),
    ("GET", SA_ID + "/providers/Microsoft.Authorization/roleAssignments", 200, "Microsoft.Authorization/roleAssignments/read", SA_ID),
    ("PUT", RG + "/providers/Microsoft.KeyVault/vaults/kv1/accessPolicies/add", 200, "Microsoft.KeyVault/vaults/accessPolicies/write", RG + "/providers/Microsoft.KeyVault/vaults/kv1/accessPolicies/add"),
    ("PUT", RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1/federatedIdentityCredentials/f1", 201, "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials/write", RG + "/providers/Microsoft.ManagedIdentity/userAssignedIdentities/id1"),
    ("GET", "/providers/Microsoft.Management/managementGroups/mg1", 200, "Microsoft.Management/managementGroups/read", "/providers/Microsoft.Management/managementGroups/mg1"),
])
def test_arm(method: str, path: str, status: int, action: str, scope: str) -> None:
    got = classify(call("arm", method, path, status=status, account=""))
    assert got.operation == "arm:" + action
    assert got.grants == (G(scope, a=[action]),)


def test_arm_namespace_and_words_are_emitted_canonical_names_are_kept() -> None:
    path = "/SUBSCRIPTIONS/S1/RESOURCEGROUPS/Rg1/PROVIDERS/microsoft.storage/STORAGEACCOUNTS/MyAcct"
    got = classify(call("arm", "GET", path, account=""))
    assert got.operation == "arm:Microsoft.Storage/storageAccounts/read"
    assert got.grants[0].scope == "/subscriptions/S1/resourceGroups/Rg1/providers/Microsoft.Storage/storageAccounts/MyAcct"


# --- odd input ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("kw", [
    {},
    {"service": "blob"},
    {"service": "blob", "method": "get", "path": "c1/{name}", "account": "acct"},
    {"service": "BLOB", "method": "GET", "path": "/" + "x/" * 5000, "account": "acct"},
    {"service": "blob", "method": "GET", "path": "/c1/\x00\ud7ff", "account": "acct"},
    {"service": "table", "method": "GET", "path": "/Tables('')", "account": "acct"},
    {"service": "vault", "method": "GET", "path": "//secrets//", "account": "kv1"},
    {"service": "arm", "method": "POST", "path": "/subscriptions"},
    {"service": "arm", "method": "GET", "path": "/providers/x"},
])
def test_odd_input_never_raises(kw: dict) -> None:
    got = classify(ObservedCall(**kw))
    assert got.unknown == (got.operation == "unknown")


def test_lower_case_method_and_path_without_leading_slash() -> None:
    got = classify(ObservedCall(service="blob", method="get", path="c1/{name}", account="acct"))
    assert got.operation == "blob:GetBlob"


def test_same_signature_gives_the_same_object() -> None:
    a = classify(call("blob", "GET", "/c1/{name}"))
    b = classify(call("blob", "GET", "/c1/{name}"))
    assert a is b


def test_no_tie_between_rows_that_disagree() -> None:
    """For every row-test case, each candidate with the winning score gives the same result
    (otherwise declaration order, not the data, would decide)."""
    from test_catalog_rows import EXPANDED

    from clearance.mapper.catalog import CATALOG, explain
    from clearance.mapper.catalog.matcher import DISCRIMINATORS, _score
    from clearance.mapper.catalog.paths import locate, segments

    for method, service, path, query, headers, *_ in EXPANDED:
        if service == "vault":
            continue
        c = call(service, method, path, query, headers)
        winner = explain(c)
        where = locate(service, segments(c.path, c.account, c.host))
        q, h = dict(c.query), dict(c.headers)
        scored = []
        for row in CATALOG._index.get((service, method, where.level), ()):
            if any(k not in row.query for k in q if k in DISCRIMINATORS):
                continue
            a, b = _score(row.query, q), _score(row.headers, h)
            if a >= 0 and b >= 0:
                scored.append((a + b, row))
        best = max(s for s, _ in scored)
        for s, row in scored:
            if s == best:
                assert (row.operation, row.actions, row.data_actions, row.scope) == \
                    (winner.operation, winner.actions, winner.data_actions, winner.scope), (c, row)
