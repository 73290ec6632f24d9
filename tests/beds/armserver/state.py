"""The bed's in-memory Azure: subscriptions, resource groups, resources, roles and assignments.

Every mutation happens under ``lock`` (the server's thread and the test's thread both touch it).
Keys are normalised ids (``ids.norm``); bodies keep the casing they were created with.
"""
from __future__ import annotations

import copy
import datetime as dt
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from .builtin_roles import BUILTIN_ROLES, BuiltInRole
from .ids import is_within, norm

IDENTITY_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities"
FIC_TYPE = "Microsoft.ManagedIdentity/userAssignedIdentities/federatedIdentityCredentials"
VAULT_TYPE = "Microsoft.KeyVault/vaults"
STORAGE_TYPE = "Microsoft.Storage/storageAccounts"
CLUSTER_TYPE = "Microsoft.ContainerService/managedClusters"
RA_TYPE = "Microsoft.Authorization/roleAssignments"
RD_TYPE = "Microsoft.Authorization/roleDefinitions"


def utc_now() -> str:
    """ARM's timestamp format."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class ArmState:
    """Everything the bed knows. Read the public dict views; change it through the seeding methods."""

    tenant_id: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    resource_groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)
    custom_roles: dict[str, dict[str, Any]] = field(default_factory=dict)  # guid -> body
    role_assignments: dict[str, dict[str, Any]] = field(default_factory=dict)
    apps: dict[str, str] = field(default_factory=dict)  # client id -> secret
    principal_born: dict[str, float] = field(default_factory=dict)  # principal id -> monotonic time

    # -- views -----------------------------------------------------------------------------
    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        """A snapshot ``{id: body}`` of the resources of one type."""
        with self.lock:
            return {b["id"]: copy.deepcopy(b) for b in self.resources.values()
                    if b["type"].lower() == resource_type.lower()}

    @property
    def identities(self) -> dict[str, dict[str, Any]]:
        return self.of_type(IDENTITY_TYPE)

    @property
    def fics(self) -> dict[str, dict[str, Any]]:
        return self.of_type(FIC_TYPE)

    @property
    def vaults(self) -> dict[str, dict[str, Any]]:
        return self.of_type(VAULT_TYPE)

    @property
    def role_definitions(self) -> dict[str, dict[str, Any]]:
        """All role definitions, built-in and custom, ``{guid: body}`` (built-ins with tenant-level ids)."""
        with self.lock:
            out = {r.guid: builtin_body(r, None) for r in BUILTIN_ROLES}
            out.update(copy.deepcopy(self.custom_roles))
            return out

    def resource(self, resource_id: str) -> dict[str, Any] | None:
        """A copy of one resource by id (case-insensitive), or ``None``."""
        with self.lock:
            body = self.resources.get(norm(resource_id))
            return copy.deepcopy(body) if body else None

    # -- seeding ---------------------------------------------------------------------------
    def add_subscription(self, subscription_id: str | None = None, display_name: str = "Clearance test") -> str:
        """Create a subscription in this tenant; returns its id."""
        sub = subscription_id or str(uuid.uuid4())
        with self.lock:
            self.subscriptions[sub.lower()] = {
                "id": f"/subscriptions/{sub}", "subscriptionId": sub, "tenantId": self.tenant_id,
                "displayName": display_name, "state": "Enabled",
                "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                         "spendingLimit": "Off"},
                "authorizationSource": "RoleBased"}
        return sub

    def add_resource_group(self, subscription_id: str, name: str, location: str = "eastus") -> dict[str, Any]:
        """Create (or replace) a resource group."""
        body = {"id": f"/subscriptions/{subscription_id}/resourceGroups/{name}", "name": name,
                "type": "Microsoft.Resources/resourceGroups", "location": location, "tags": {},
                "properties": {"provisioningState": "Succeeded"}}
        with self.lock:
            self._need_subscription(subscription_id)
            self.resource_groups[norm(body["id"])] = body
        return copy.deepcopy(body)

    def put_resource(self, body: dict[str, Any]) -> dict[str, Any]:
        """Store a resource body (its ``id`` decides where); the parent must exist."""
        from .ids import parse_resource_path  # local: avoids a cycle in type checkers
        path = parse_resource_path(body["id"].strip("/").split("/"))
        if path is None or path.is_collection:
            raise ValueError(f"not a resource id: {body['id']!r}")
        with self.lock:
            self._need_subscription(path.subscription)
            if path.resource_group and norm(f"/subscriptions/{path.subscription}/resourceGroups/{path.resource_group}") \
                    not in self.resource_groups:
                raise ValueError(f"resource group {path.resource_group!r} does not exist in {path.subscription}")
            parent = path.parent()
            if parent is not None and not self.exists(parent.id):
                raise ValueError(f"parent resource {parent.id!r} does not exist")
            self.resources[norm(body["id"])] = body
        return copy.deepcopy(body)

    def exists(self, resource_id: str) -> bool:
        """Whether a resource exists; storage ``*Services/default`` exist with their account."""
        key = norm(resource_id)
        with self.lock:
            if key in self.resources:
                return True
            head, _, last = key.rpartition("/")
            service = head.rpartition("/")[2]
            return last == "default" and service in {"blobservices", "queueservices", "tableservices",
                                                       "fileservices"} and head.rpartition("/")[0] in self.resources

    def add_storage_account(self, subscription_id: str, resource_group: str, name: str, location: str = "eastus",
                            endpoints: dict[str, str] | None = None) -> dict[str, Any]:
        """Seed a storage account; ``endpoints`` overrides primaryEndpoints (e.g. to point at Azurite)."""
        eps = {s: f"https://{name}.{s}.core.windows.net/" for s in ("blob", "queue", "table", "file", "dfs")}
        eps.update(endpoints or {})
        return self.put_resource({
            "id": f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{STORAGE_TYPE}/{name}",
            "name": name, "type": STORAGE_TYPE, "location": location, "kind": "StorageV2", "tags": {},
            "sku": {"name": "Standard_LRS", "tier": "Standard"},
            "properties": {"provisioningState": "Succeeded", "primaryEndpoints": eps, "allowSharedKeyAccess": True}})

    def add_storage_child(self, subscription_id: str, resource_group: str, account: str, service: str,
                          collection: str, name: str) -> dict[str, Any]:
        """Seed a container, queue or table under an existing storage account."""
        base = f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{STORAGE_TYPE}/{account}"
        return self.put_resource({
            "id": f"{base}/{service}/default/{collection}/{name}", "name": name,
            "type": f"{STORAGE_TYPE}/{service}/{collection}", "etag": f'"0x{uuid.uuid4().hex[:15].upper()}"',
            "properties": {"lastModifiedTime": utc_now()}})

    def add_vault(self, subscription_id: str, resource_group: str, name: str, location: str = "eastus",
                  rbac: bool = False, access_policies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Seed a Key Vault (access-policy model unless ``rbac``)."""
        return self.put_resource({
            "id": f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{VAULT_TYPE}/{name}",
            "name": name, "type": VAULT_TYPE, "location": location, "tags": {},
            "properties": {"tenantId": self.tenant_id, "sku": {"family": "A", "name": "standard"},
                           "accessPolicies": copy.deepcopy(access_policies or []),
                           "vaultUri": f"https://{name}.vault.azure.net/", "enableRbacAuthorization": rbac,
                           "enableSoftDelete": True, "provisioningState": "Succeeded"}})

    def add_managed_cluster(self, subscription_id: str, resource_group: str, name: str, issuer_url: str,
                            location: str = "eastus") -> dict[str, Any]:
        """Seed an AKS cluster with the OIDC issuer and workload identity enabled."""
        return self.put_resource({
            "id": f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{CLUSTER_TYPE}/{name}",
            "name": name, "type": CLUSTER_TYPE, "location": location, "tags": {},
            "properties": {"provisioningState": "Succeeded", "kubernetesVersion": "1.30.6",
                           "nodeResourceGroup": f"MC_{resource_group}_{name}_{location}",
                           "oidcIssuerProfile": {"enabled": True, "issuerURL": issuer_url},
                           "securityProfile": {"workloadIdentity": {"enabled": True}}}})

    def new_principal(self) -> str:
        """A fresh service-principal object id, born now (for the PrincipalNotFound delay)."""
        pid = str(uuid.uuid4())
        self.principal_born[pid.lower()] = time.monotonic()
        return pid

    def _need_subscription(self, subscription_id: str) -> None:
        if subscription_id.lower() not in self.subscriptions:
            raise ValueError(f"subscription {subscription_id!r} does not exist; add_subscription() first")

    # -- queries used by handlers ------------------------------------------------------------
    def identity_by_principal(self, principal_id: str) -> dict[str, Any] | None:
        with self.lock:
            for b in self.resources.values():
                if b["type"] == IDENTITY_TYPE and b["properties"]["principalId"].lower() == principal_id.lower():
                    return b
        return None

    def identity_by_client_id(self, client_id: str) -> dict[str, Any] | None:
        with self.lock:
            for b in self.resources.values():
                if b["type"] == IDENTITY_TYPE and b["properties"]["clientId"].lower() == client_id.lower():
                    return b
        return None

    def children(self, parent_id: str, resource_type: str) -> list[dict[str, Any]]:
        """Direct children of ``parent_id`` of one type."""
        with self.lock:
            return [b for b in self.resources.values()
                    if b["type"].lower() == resource_type.lower() and is_within(b["id"], parent_id)]


def builtin_body(role: BuiltInRole, subscription_id: str | None) -> dict[str, Any]:
    """The role definition body ARM returns for a built-in role, seen from a subscription (or tenant)."""
    prefix = f"/subscriptions/{subscription_id}" if subscription_id else ""
    return {"id": f"{prefix}/providers/{RD_TYPE}/{role.guid}", "name": role.guid, "type": RD_TYPE,
            "properties": {"roleName": role.name, "type": "BuiltInRole", "description": role.description,
                           "assignableScopes": ["/"],
                           "permissions": [{"actions": list(role.actions), "notActions": list(role.not_actions),
                                            "dataActions": list(role.data_actions),
                                            "notDataActions": list(role.not_data_actions)}],
                           "createdOn": "2015-02-02T21:55:09.8806423Z", "updatedOn": "2024-01-01T00:00:00.0000000Z",
                           "createdBy": None, "updatedBy": None}}
