"""Applied vs missing, row by row: scopes expanded as the operator does (account, resource group,
subscription ancestors) and built-in roles with Azure's wildcard matching."""
from __future__ import annotations

import logging

import pytest

from clearance.mapper.applied import AppliedIndex
from clearance.mapper.builtin_roles import BUILTIN_ROLES, builtin_role, matches
from clearance.operator.api import parse_client_intents

SA = "Microsoft.Storage/storageAccounts"
BLOBS = f"{SA}/blobServices/containers/blobs"
QUEUE = f"{SA}/queueServices/queues"
KV = "Microsoft.KeyVault/vaults"
CONTAINER = f"/providers/{SA}/shopdata/blobServices/default/containers/uploads"
QUEUE_SCOPE = f"/providers/{SA}/shopdata/queueServices/default/queues/orders"
VAULT_SECRET = f"/providers/{KV}/shop-kv/secrets/db"
FULL_ACCOUNT = f"/subscriptions/s1/resourceGroups/rg1/providers/{SA}/shopdata"


def _doc(*targets: dict, workload: str = "web", name: str = "web-intents") -> dict:
    return {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"workload": {"name": workload, "kind": "Deployment"},
                     "targets": [{"azure": t} for t in targets]}}


def _index(*docs: dict) -> AppliedIndex:
    return AppliedIndex([parse_client_intents(d) for d in docs])


def _covers(index: AppliedIndex, scope: str, permission: str, data: bool = True, workload: str = "web") -> bool:
    wi = index.lookup("shop", "Deployment", workload)
    return wi is not None and wi.covers(scope, permission, data)


# -- scopes ---------------------------------------------------------------------------------------

TEACH = {"scope": f"{FULL_ACCOUNT}/blobServices/default/containers/other", "dataActions": [f"{BLOBS}/read"]}


@pytest.mark.parametrize("grant_scope, teach, covered", [
    (CONTAINER, False, True),  # same scope, partial form
    (f"{FULL_ACCOUNT}/blobServices/default/containers/uploads", False, True),  # same scope, full form
    (f"/providers/{SA}/ShopData", False, True),  # the account, partial form, any case
    (FULL_ACCOUNT, False, True),  # the account, full form
    ("/subscriptions/s1/resourceGroups/rg1", True, True),  # RG, mapping learned from a full-form scope
    ("/subscriptions/S1/resourcegroups/RG1", True, True),  # RG, in another case
    ("/subscriptions/s1", True, True),  # subscription, mapping learned
    ("/subscriptions/s1/resourceGroups/rg1", False, False),  # RG, mapping unknown: suffix only
    ("/subscriptions/s1", False, False),  # subscription, mapping unknown
    ("/subscriptions/s1/resourceGroups/rg2", True, False),  # another RG
    ("/subscriptions/s2", True, False),  # another subscription
    (f"/providers/{SA}/shopdata/blobServices/default/containers/other", False, False),  # a sibling container
    (f"/providers/{SA}/shopdata2", False, False),  # an account whose name extends this one
])
def test_grant_scope_rows(grant_scope, teach, covered):
    targets = [{"scope": grant_scope, "dataActions": [f"{BLOBS}/write"]}]
    if teach:
        targets.append(TEACH)
    assert _covers(_index(_doc(*targets)), CONTAINER, f"{BLOBS}/write") is covered


def test_mapping_is_learned_from_any_workloads_document():
    idx = _index(_doc({"scope": "/subscriptions/s1/resourceGroups/rg1", "dataActions": [f"{BLOBS}/write"]}),
                 _doc(TEACH, workload="api", name="api-intents"))
    assert _covers(idx, CONTAINER, f"{BLOBS}/write")
    assert not _covers(idx, CONTAINER, f"{BLOBS}/write", workload="api")  # api has no write anywhere


def test_a_full_form_discovered_scope_names_its_own_resource_group():
    idx = _index(_doc({"scope": "/subscriptions/s1/resourceGroups/rg1", "actions": [f"{SA}/read"]}))
    assert _covers(idx, FULL_ACCOUNT, f"{SA}/read", data=False)
    assert not _covers(idx, f"/subscriptions/s1/resourceGroups/rg9/providers/{SA}/shopdata", f"{SA}/read", data=False)


def test_conflicting_mappings_are_treated_as_unknown():
    other = {"scope": f"/subscriptions/s2/resourceGroups/rg2/providers/{SA}/shopdata", "dataActions": [f"{BLOBS}/read"]}
    idx = _index(_doc({"scope": "/subscriptions/s1", "dataActions": [f"{BLOBS}/write"]}, TEACH, other))
    assert not _covers(idx, CONTAINER, f"{BLOBS}/write")


def test_vault_scopes_expand_like_storage_accounts():
    idx = _index(_doc({"scope": "/subscriptions/s1/resourceGroups/rg1", "dataActions": [f"{KV}/secrets/getSecret/action"]},
                      {"scope": f"/subscriptions/s1/resourceGroups/rg1/providers/{KV}/shop-kv", "actions": [f"{KV}/read"]}))
    assert _covers(idx, VAULT_SECRET, f"{KV}/secrets/getSecret/action")
    assert not _covers(idx, f"/providers/{KV}/other-kv/secrets/db", f"{KV}/secrets/getSecret/action")


def test_listed_wildcards_and_data_versus_control_plane():
    idx = _index(_doc({"scope": CONTAINER, "actions": [f"{SA}/blobServices/containers/read"],
                       "dataActions": [f"{SA}/blobServices/containers/blobs/*"]}))
    assert _covers(idx, CONTAINER, f"{BLOBS}/tags/write")
    assert not _covers(idx, CONTAINER, f"{BLOBS}/read", data=False)  # a data permission is not an action
    assert _covers(idx, CONTAINER, f"{SA}/blobServices/containers/read", data=False)
    assert not _covers(idx, CONTAINER, f"{SA}/blobServices/containers/read", data=True)


# -- built-in roles -------------------------------------------------------------------------------

@pytest.mark.parametrize("role, scope, permission, data, covered", [
    ("Storage Blob Data Reader", CONTAINER, f"{BLOBS}/read", True, True),
    ("Storage Blob Data Reader", CONTAINER, f"{BLOBS}/write", True, False),
    ("Storage Blob Data Reader", CONTAINER, f"{SA}/blobServices/containers/read", False, True),
    ("Storage Blob Data Contributor", CONTAINER, f"{BLOBS}/add/action", True, True),
    ("Storage Blob Data Contributor", CONTAINER, f"{BLOBS}/move/action", True, True),
    ("Storage Blob Data Contributor", CONTAINER, f"{BLOBS}/tags/write", True, False),  # no tags
    ("Storage Blob Data Contributor", CONTAINER, f"{BLOBS}/permanentDelete/action", True, False),
    ("Storage Blob Data Contributor", CONTAINER, f"{BLOBS}/deleteBlobVersion/action", True, False),
    ("Storage Blob Data Owner", CONTAINER, f"{BLOBS}/tags/write", True, True),  # blobs/* wildcard
    ("Storage Blob Data Owner", CONTAINER, f"{BLOBS}/permanentDelete/action", True, True),
    ("Storage Blob Data Owner", CONTAINER, f"{SA}/blobServices/containers/setAcl/action", False, True),
    ("storage blob data reader", CONTAINER, f"{BLOBS}/read", True, True),  # names in any case
    ("Storage Queue Data Reader", QUEUE_SCOPE, f"{QUEUE}/messages/read", True, True),
    ("Storage Queue Data Reader", QUEUE_SCOPE, f"{QUEUE}/messages/delete", True, False),
    ("Storage Queue Data Contributor", QUEUE_SCOPE, f"{QUEUE}/messages/process/action", True, True),
    ("Storage Queue Data Contributor", QUEUE_SCOPE, f"{QUEUE}/write", False, True),
    ("Storage Queue Data Message Sender", QUEUE_SCOPE, f"{QUEUE}/messages/add/action", True, True),
    ("Storage Queue Data Message Sender", QUEUE_SCOPE, f"{QUEUE}/messages/read", True, False),
    ("Storage Queue Data Message Processor", QUEUE_SCOPE, f"{QUEUE}/messages/process/action", True, True),
    ("Storage Queue Data Message Processor", QUEUE_SCOPE, f"{QUEUE}/messages/add/action", True, False),
    ("Storage Table Data Reader", f"/providers/{SA}/shopdata/tableServices/default/tables/t",
     f"{SA}/tableServices/tables/entities/read", True, True),
    ("Storage Table Data Contributor", f"/providers/{SA}/shopdata/tableServices/default/tables/t",
     f"{SA}/tableServices/tables/entities/update/action", True, True),
    ("Storage Table Data Reader", f"/providers/{SA}/shopdata/tableServices/default/tables/t",
     f"{SA}/tableServices/tables/entities/write", True, False),
    ("Key Vault Secrets User", VAULT_SECRET, f"{KV}/secrets/getSecret/action", True, True),
    ("Key Vault Secrets User", VAULT_SECRET, f"{KV}/secrets/setSecret/action", True, False),
    ("Key Vault Secrets Officer", VAULT_SECRET, f"{KV}/secrets/setSecret/action", True, True),
    ("Key Vault Secrets Officer", VAULT_SECRET, f"{KV}/keys/read", True, False),
    ("Key Vault Secrets Officer", VAULT_SECRET, f"{KV}/read", False, False),  # vaults/*/read needs a segment
    ("Key Vault Crypto User", f"/providers/{KV}/shop-kv/keys/k", f"{KV}/keys/decrypt/action", True, True),
    ("Key Vault Crypto User", f"/providers/{KV}/shop-kv/keys/k", f"{KV}/keys/delete", True, False),
    ("Key Vault Certificates Officer", f"/providers/{KV}/shop-kv", f"{KV}/certificates/import/action", True, True),
    ("Key Vault Certificates Officer", f"/providers/{KV}/shop-kv", f"{KV}/secrets/getSecret/action", True, False),
    ("Key Vault Reader", VAULT_SECRET, f"{KV}/secrets/readMetadata/action", True, True),
    ("Key Vault Reader", VAULT_SECRET, f"{KV}/secrets/getSecret/action", True, False),
    ("Key Vault Reader", f"/providers/{KV}/shop-kv", f"{KV}/keys/read", True, True),
    ("Reader", CONTAINER, f"{SA}/blobServices/containers/read", False, True),
    ("Reader", CONTAINER, f"{BLOBS}/read", True, False),  # control-plane roles give no data access
    ("Reader", CONTAINER, f"{SA}/blobServices/containers/write", False, False),
    ("Contributor", CONTAINER, f"{SA}/blobServices/containers/write", False, True),
    ("Contributor", "/subscriptions/s1", "Microsoft.Authorization/roleAssignments/write", False, False),  # notActions
    ("Contributor", "/subscriptions/s1", "Microsoft.Authorization/roleAssignments/read", False, True),
    ("Contributor", CONTAINER, f"{BLOBS}/read", True, False),
])
def test_builtin_role_rows(role, scope, permission, data, covered):
    grant_scope = scope.split("/blobServices/")[0] if "/blobServices/" in scope else scope
    assert _covers(_index(_doc({"scope": grant_scope, "roles": [role]})), scope, permission, data) is covered


def test_role_at_resource_group_covers_a_container_once_the_mapping_is_known():
    role = {"scope": "/subscriptions/s1/resourceGroups/rg1", "roles": ["Storage Blob Data Reader"]}
    assert not _covers(_index(_doc(role)), CONTAINER, f"{BLOBS}/read")
    assert _covers(_index(_doc(role, TEACH)), CONTAINER, f"{BLOBS}/write") is False
    assert _covers(_index(_doc(role, {"scope": FULL_ACCOUNT, "actions": [f"{SA}/read"]})), CONTAINER, f"{BLOBS}/read")


def test_unknown_role_leaves_the_permission_missing_and_is_logged_once(caplog):
    caplog.set_level(logging.INFO, logger="clearance.mapper.applied")
    doc = parse_client_intents(_doc({"scope": CONTAINER, "roles": ["Storage Blob Data Superuser"]}))
    seen: set[str] = set()  # what a live AppliedIntents shares between its rebuilds
    assert not AppliedIndex([doc, doc], seen).lookup("shop", "Deployment", "web").covers(CONTAINER, f"{BLOBS}/read", True)
    assert len(AppliedIndex([doc], seen)) == 1
    logged = [r for r in caplog.records if "does not know" in r.getMessage()]
    assert len(logged) == 1 and logged[0].levelno == logging.INFO
    assert logged[0].fields == {"role": "Storage Blob Data Superuser"}
    caplog.clear()
    AppliedIndex([doc])  # a separate index logs on its own, whatever ran before
    assert [r.fields for r in caplog.records if "does not know" in r.getMessage()] == [
        {"role": "Storage Blob Data Superuser"}]


@pytest.mark.parametrize("permission, pattern, expected", [
    (f"{BLOBS}/read", f"{BLOBS}/*", True),
    (f"{BLOBS}/tags/write", f"{BLOBS}/*", True),  # '*' crosses '/'
    (f"{BLOBS}/read", "*/read", True),
    (f"{BLOBS}/read", f"{BLOBS}/READ", True),  # case-insensitive
    (f"{BLOBS}", f"{BLOBS}/*", False),
    (f"{SA}/blobServices/containers/read", f"{BLOBS}/*", False),
    ("Microsoft.Storage/storageAccounts/x[1]/read", "Microsoft.Storage/storageAccounts/x[1]/read", True),
    ("Microsoft.Storage/storageAccounts/x1/read", "Microsoft.Storage/storageAccounts/x[1]/read", False),  # no globbing
    (f"{KV}/secrets/read", f"{KV}/*/read", True),
])
def test_wildcard_rows(permission, pattern, expected):
    assert matches(permission, pattern) is expected


def test_role_table_names_the_requested_roles():
    want = {"Storage Blob Data Reader", "Storage Blob Data Contributor", "Storage Blob Data Owner",
            "Storage Queue Data Reader", "Storage Queue Data Contributor", "Storage Queue Data Message Sender",
            "Storage Queue Data Message Processor", "Storage Table Data Reader", "Storage Table Data Contributor",
            "Key Vault Secrets User", "Key Vault Secrets Officer", "Key Vault Crypto User",
            "Key Vault Certificates Officer", "Key Vault Reader", "Reader", "Contributor"}
    assert {r.name for r in BUILTIN_ROLES} == want
    assert builtin_role("  reader ") is builtin_role("Reader")
    assert builtin_role("Owner") is None


def test_roles_equal_the_arm_test_beds_for_the_roles_both_define():
    """Ids and permissions, as Azure defines them (reference: azure-permissions.md §4)."""
    from beds.armserver.builtin_roles import BUILTIN_ROLES as BED_ROLES

    bed = {r.name: r for r in BED_ROLES}
    shared = [r for r in BUILTIN_ROLES if r.name in bed]
    assert len(shared) >= 15  # all but Key Vault Certificates Officer, which the bed does not serve
    for r in shared:
        b = bed[r.name]
        assert (r.id, sorted(r.actions), sorted(r.not_actions), sorted(r.data_actions), sorted(r.not_data_actions)) == (
            b.guid, sorted(b.actions), sorted(b.not_actions), sorted(b.data_actions), sorted(b.not_data_actions)), r.name
    assert len({r.id for r in BUILTIN_ROLES}) == len(BUILTIN_ROLES)
