"""The ClientIntents reconciler against the ARM bed (real azure-mgmt-authorization) and the kube bed."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from clearance.operator.api import parse_client_intents
from clearance.operator.azure.arm import ArmClients
from clearance.operator.azure.identities import Identities
from clearance.operator.intents.reconciler import IntentsReconciler
from test_operator_identity_harness import bed_settings, core, ensure_namespace, make_pod, make_sa

NS, SA, WL = "shop", "orders-sa", "orders"
BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
BLOB_WRITE = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"
CONTAINERS_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/read"


def intents_doc(targets: list[dict[str, Any]], name: str = "orders-intents") -> dict[str, Any]:
    return {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"workload": {"name": WL, "kind": "Deployment"}, "targets": targets}}


class Env:
    """One scenario's collaborators, all on one event loop."""

    def __init__(self, arm_server: Any, kube_server: Any, **settings: Any) -> None:
        self.arm_server = arm_server
        self.settings = bed_settings(arm_server, **settings)
        self.arm = ArmClients(self.settings, credential=arm_server.credential())
        self.identities = Identities(self.arm, self.settings)
        self.core = core(kube_server)
        self.reconciler = IntentsReconciler(self.arm, self.settings, self.identities, self.core)
        self.sub = arm_server.subscription_id
        self.rg = arm_server.resource_group

    def writes(self) -> int:
        return len([c for c in self.arm_server.calls() if c.method in ("PUT", "DELETE", "PATCH", "POST")
                    and "/oauth2/" not in c.path])

    def assignments(self, principal: str) -> list[dict[str, Any]]:
        return [b for b in self.arm_server.state.role_assignments.values()
                if b["properties"]["principalId"].lower() == principal.lower()]

    def custom_roles(self) -> list[dict[str, Any]]:
        return list(self.arm_server.state.custom_roles.values())


def run(arm_server: Any, kube_server: Any, scenario: Callable[[Env], Awaitable[None]], **settings: Any) -> None:
    env = Env(arm_server, kube_server, **settings)

    async def main() -> None:
        try:
            await scenario(env)
        finally:
            await env.arm.close()
    asyncio.run(main())


async def workload(env: Env) -> str:
    """A Deployment-style pod of the workload, its ServiceAccount and identity; returns the principal id."""
    await asyncio.to_thread(ensure_namespace, env.core, NS)
    await asyncio.to_thread(make_sa, env.core, NS, SA)
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"{WL}-7d9f-abcde", "namespace": NS, "labels": {"pod-template-hash": "7d9f"},
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": f"{WL}-7d9f",
                                              "uid": "u1", "controller": True}]},
            "spec": {"serviceAccountName": SA, "containers": [{"name": "app", "image": "busybox"}]}}
    await asyncio.to_thread(env.core.create_namespaced_pod, NS, body)
    identity = await env.identities.ensure(NS, SA)
    return identity.principal_id


def storage(env: Env, sub: str | None = None, rg: str | None = None, account: str = "shopdata",
            container: str = "invoices") -> str:
    sub, rg = sub or env.sub, rg or env.rg
    env.arm_server.add_storage_account(sub, rg, account)
    env.arm_server.add_container(sub, rg, account, container)
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{account}"


def custom_target(scope: str, *data: str, actions: tuple[str, ...] = ()) -> dict[str, Any]:
    target: dict[str, Any] = {"scope": scope, "dataActions": list(data)}
    if actions:
        target["actions"] = list(actions)
    return {"azure": target}


def test_custom_role_target_then_update_then_removal(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        principal = await workload(env)
        account = storage(env)
        partial = "/providers/Microsoft.Storage/storageAccounts/shopdata/blobServices/default/containers/invoices"
        doc = intents_doc([custom_target(partial, BLOB_READ, actions=(CONTAINERS_READ,))])
        out = await env.reconciler.reconcile(parse_client_intents(doc))
        assert [(s.type, s.reason) for s in out.states] == [("Ready", "Applied")]
        full = account + "/blobServices/default/containers/invoices"
        assert out.states[0].scope == full
        (role,) = env.custom_roles()
        props = role["properties"]
        assert props["assignableScopes"] == [full] and props["type"] == "CustomRole"
        assert props["permissions"][0]["dataActions"] == [BLOB_READ]
        assert props["permissions"][0]["actions"] == [CONTAINERS_READ]
        (assignment,) = env.assignments(principal)
        assert assignment["properties"]["scope"] == full
        assert assignment["properties"]["principalType"] == "ServicePrincipal"
        assert assignment["properties"]["roleDefinitionId"].lower().endswith(role["name"].lower())

        # a resync with nothing to do: zero writes
        before = env.writes()
        again = await env.reconciler.reconcile(parse_client_intents(doc), out.record)
        assert again.writes == 0 and env.writes() == before
        assert [s.type for s in again.states] == ["Ready"]

        # permissions added and removed: the same role updated in place, the assignment untouched
        doc2 = intents_doc([custom_target(partial, BLOB_WRITE)])
        out2 = await env.reconciler.reconcile(parse_client_intents(doc2), again.record)
        (role2,) = env.custom_roles()
        assert role2["name"] == role["name"]
        assert role2["properties"]["permissions"][0]["dataActions"] == [BLOB_WRITE]
        assert role2["properties"]["permissions"][0]["actions"] == []
        assert len(env.assignments(principal)) == 1 and out2.writes == 1

        # target removed: assignment and custom role go
        out3 = await env.reconciler.reconcile(parse_client_intents(intents_doc([])), out2.record)
        assert env.assignments(principal) == [] and env.custom_roles() == []
        assert out3.record["customRoles"] == []
    run(arm_server, kube_server, scenario)


def test_built_in_roles_and_foreign_assignments_untouched(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        principal = await workload(env)
        account = storage(env)
        # someone else's assignment to the same identity, made outside Clearance
        reader = f"/subscriptions/{env.sub}/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
        auth = env.reconciler.assignments.client(env.sub)
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters
        await auth.role_assignments.create(
            account, "11111111-2222-3333-4444-555555555555",
            RoleAssignmentCreateParameters(role_definition_id=reader, principal_id=principal,
                                           principal_type="ServicePrincipal", description="made by hand"))
        doc = intents_doc([{"azure": {"scope": account, "roles": ["Storage Blob Data Reader", "Storage Blob Delegator"]}}])
        intents = parse_client_intents(doc)
        out = await env.reconciler.reconcile(intents)
        assert [s.type for s in out.states] == ["Ready"]
        assert len(env.assignments(principal)) == 3
        assert env.custom_roles() == []
        await env.reconciler.cleanup(intents, out.record)
        (left,) = env.assignments(principal)
        assert left["name"] == "11111111-2222-3333-4444-555555555555"
    run(arm_server, kube_server, scenario)


def test_partial_storage_scopes_across_two_subscriptions(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        principal = await workload(env)
        other = env.arm_server.add_subscription(resource_group="data-rg")
        here = storage(env, account="localdata", container="c1")
        there = storage(env, sub=other, rg="data-rg", account="remotedata", container="c2")
        doc = intents_doc([
            custom_target("/providers/Microsoft.Storage/storageAccounts/localdata/blobServices/default/containers/c1", BLOB_READ),
            custom_target("/providers/Microsoft.Storage/storageAccounts/remotedata/blobServices/default/containers/c2", BLOB_READ),
        ])
        intents = parse_client_intents(doc)
        out = await env.reconciler.reconcile(intents)
        assert [s.scope for s in out.states] == [here + "/blobServices/default/containers/c1",
                                                 there + "/blobServices/default/containers/c2"]
        assert {s.type for s in out.states} == {"Ready"}
        scopes = sorted(a["properties"]["scope"] for a in env.assignments(principal))
        assert scopes == sorted(s.scope for s in out.states)
        assert sorted(out.record["subscriptions"]) == sorted([env.sub, other])
        # the account lookup is cached: reconciling again lists no resources
        env.arm_server.calls.clear()
        await env.reconciler.reconcile(intents, out.record)
        assert env.arm_server.calls(path_contains="/resources") == []
        await env.reconciler.cleanup(intents, out.record)
        assert env.assignments(principal) == [] and env.custom_roles() == []
    run(arm_server, kube_server, scenario)


def test_key_vault_policy_uses_principal_id_and_is_removed(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        principal = await workload(env)
        foreign = {"tenantId": env.arm_server.tenant_id, "objectId": "99999999-9999-9999-9999-999999999999",
                   "permissions": {"secrets": ["get"], "keys": [], "certificates": [], "storage": []}}
        env.arm_server.add_vault(env.sub, env.rg, "shop-kv", access_policies=[foreign])
        doc = intents_doc([{"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv",
                                      "keyVaultPolicy": {"secretPermissions": ["get", "list"]}}}])
        intents = parse_client_intents(doc)
        out = await env.reconciler.reconcile(intents)
        assert [s.type for s in out.states] == ["Ready"], out.states
        vault = next(iter(env.arm_server.state.vaults.values()))
        entries = {p["objectId"]: p["permissions"] for p in vault["properties"]["accessPolicies"]}
        assert entries[principal]["secrets"] == ["get", "list"]
        before = env.writes()
        assert (await env.reconciler.reconcile(intents, out.record)).writes == 0 and env.writes() == before
        await env.reconciler.cleanup(intents, out.record)
        vault = next(iter(env.arm_server.state.vaults.values()))
        assert [p["objectId"] for p in vault["properties"]["accessPolicies"]] == [foreign["objectId"]]
    run(arm_server, kube_server, scenario)


def test_principal_not_found_is_propagating_then_ready(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        env.arm_server.faults.principal_not_found_seconds = 3600
        principal = await workload(env)
        account = storage(env)
        intents = parse_client_intents(intents_doc([{"azure": {"scope": account, "roles": ["Storage Blob Data Reader"]}}]))
        out = await env.reconciler.reconcile(intents)
        assert [(s.type, s.reason) for s in out.states] == [("Propagating", "PrincipalNotFound")]
        assert out.retry and env.assignments(principal) == []
        env.arm_server.faults.principal_not_found_seconds = 0
        out = await env.reconciler.reconcile(intents, out.record)
        assert [s.type for s in out.states] == ["Ready"] and len(env.assignments(principal)) == 1
    run(arm_server, kube_server, scenario)


def test_injected_429_and_5xx_are_retried(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        principal = await workload(env)
        account = storage(env)
        env.arm_server.faults.fail_next(1, status=429, method="PUT", path="roleDefinitions", retry_after=1)
        env.arm_server.faults.fail_next(2, status=503, method="PUT", path="roleAssignments")
        env.arm_server.faults.fail_next(1, status=500, method="GET", path="roleAssignments")
        intents = parse_client_intents(intents_doc([custom_target(account, BLOB_READ)]))
        out = await env.reconciler.reconcile(intents)
        assert [s.type for s in out.states] == ["Ready"]
        assert len(env.assignments(principal)) == 1 and len(env.custom_roles()) == 1
        assert env.arm_server.calls(status=429) and env.arm_server.calls(status=503)
    run(arm_server, kube_server, scenario)


def test_guardrails_and_missing_scope(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        principal = await workload(env)
        account = storage(env)
        intents = parse_client_intents(intents_doc([
            custom_target(account, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/*"),
            {"azure": {"scope": f"/subscriptions/{env.sub}/resourceGroups/other-rg", "roles": ["Reader"]}},
            {"azure": {"scope": account + "/blobServices/default/containers/nope", "roles": ["Reader"]}},
            {"kubernetes": {"name": "svc"}},
        ]))
        out = await env.reconciler.reconcile(intents)
        assert [(s.index, s.type, s.reason) for s in out.states] == [
            (0, "Failed", "Refused"), (1, "Failed", "Refused"), (2, "Failed", "ScopeNotFound"),
            (3, "Failed", "UnsupportedTarget")]
        assert "wildcard" in out.states[0].message and "allowed scopes" in out.states[1].message
        assert env.assignments(principal) == [] and env.custom_roles() == []
    allowed = f"/subscriptions/{arm_server.subscription_id}/resourceGroups/{arm_server.resource_group}"
    run(arm_server, kube_server, scenario, allowed_scopes=(allowed,))


def test_no_pods_or_no_identity_is_reported(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        doc = intents_doc([{"azure": {"scope": "/subscriptions/x", "roles": ["Reader"]}}])
        del doc["spec"]["workload"]["kind"]  # a bare pod named like the workload
        intents = parse_client_intents(doc)
        await asyncio.to_thread(ensure_namespace, env.core, NS)
        out = await env.reconciler.reconcile(intents)
        assert [(s.type, s.reason) for s in out.states] == [("Failed", "PodsNotFound")] and out.retry
        await asyncio.to_thread(make_sa, env.core, NS, SA)
        await asyncio.to_thread(make_pod, env.core, NS, WL, SA)
        out = await env.reconciler.reconcile(intents)
        assert [(s.type, s.reason) for s in out.states] == [("Failed", "IdentityNotFound")]
    run(arm_server, kube_server, scenario)
