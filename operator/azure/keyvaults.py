"""Key Vault access-policy entries for a workload identity (objectId = its principal ID).

Clearance only touches the entry of an identity it created, and only on vaults a ClientIntents
names (or named): ``set`` replaces that entry's permissions, ``remove`` deletes it.
"""
from __future__ import annotations

from typing import Any

from clearance.operator.api import KeyVaultPolicy
from clearance.operator.azure.arm import ArmClients, ArmError, is_not_found

VAULT_API = "2023-07-01"

# keyVaultPolicy field -> access-policy permissions key
_FIELDS = {"certificate_permissions": "certificates", "key_permissions": "keys",
           "secret_permissions": "secrets", "storage_permissions": "storage"}


def permissions_of(policy: KeyVaultPolicy) -> dict[str, list[str]]:
    """The ``permissions`` object of an access-policy entry, normalised (sorted, lower-case)."""
    return {azure: sorted({p.lower() for p in getattr(policy, ours)}) for ours, azure in _FIELDS.items()}


def normalise(permissions: dict[str, Any] | None) -> dict[str, list[str]]:
    permissions = permissions or {}
    return {azure: sorted({str(p).lower() for p in permissions.get(azure) or []}) for azure in _FIELDS.values()}


class KeyVaults:
    """Reads a vault's entry for one principal and replaces or removes it."""

    def __init__(self, arm: ArmClients) -> None:
        self.arm = arm

    async def entry(self, vault_id: str, object_id: str) -> tuple[str, dict[str, list[str]] | None]:
        """(vault tenant, the normalised permissions of ``object_id``'s entry or None)."""
        try:
            vault = await self.arm.get_json(vault_id, VAULT_API)
        except Exception as exc:
            if is_not_found(exc):
                raise ArmError(404, "VaultNotFound", f"key vault {vault_id} not found") from exc
            raise ArmError.from_exception(exc, doing=f"reading key vault {vault_id}") from exc
        props = vault.get("properties") or {}
        for entry in props.get("accessPolicies") or []:
            if str(entry.get("objectId", "")).lower() == object_id.lower() and not entry.get("applicationId"):
                return props.get("tenantId", ""), normalise(entry.get("permissions"))
        return props.get("tenantId", ""), None

    async def set(self, vault_id: str, tenant_id: str, object_id: str, permissions: dict[str, list[str]],
                  *, existing: bool) -> None:
        await self._update(vault_id, "replace" if existing else "add", tenant_id, object_id, permissions)

    async def remove(self, vault_id: str, object_id: str) -> bool:
        """Remove ``object_id``'s entry; True if there was one."""
        try:
            tenant, current = await self.entry(vault_id, object_id)
        except ArmError as exc:
            if exc.status == 404:
                return False
            raise
        if current is None:
            return False
        await self._update(vault_id, "remove", tenant, object_id, current)
        return True

    async def _update(self, vault_id: str, kind: str, tenant_id: str, object_id: str,
                      permissions: dict[str, list[str]]) -> None:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        body = {"properties": {"accessPolicies": [
            {"tenantId": tenant_id, "objectId": object_id, "permissions": permissions}]}}
        request = HttpRequest("PUT", f"{vault_id}/accessPolicies/{kind}?api-version={VAULT_API}", json=body)
        response = await self.arm.resources().send_request(request)
        await response.read()
        if response.status_code >= 400:
            raise ArmError.from_exception(HttpResponseError(response=response),
                                          doing=f"updating access policy on {vault_id}")
