"""Role definitions: Clearance's custom roles (one per identity, scope and ClientIntents) and
lookups of built-in or existing roles by name.

Every custom role Clearance creates carries ``MARKER`` in its description, with the cluster and
principal, and a deterministic GUID; a role without the marker is never updated or deleted.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from clearance.operator import naming
from clearance.operator.azure.arm import ArmClients, ArmError, is_not_found
from clearance.operator.azure.resources import subscription_of

MARKER = "Managed by Clearance (clearance.dev)"
ROLE_NAME_MAX = 200
ROLE_DEFINITIONS = "/providers/Microsoft.Authorization/roleDefinitions/"


@dataclass(frozen=True)
class CustomRole:
    """The custom role a target with actions/dataActions needs."""

    guid: str
    subscription_id: str
    role_name: str
    description: str
    assignable_scope: str
    actions: tuple[str, ...]
    data_actions: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.subscription_id}{ROLE_DEFINITIONS}{self.guid}"

    @property
    def definition_scope(self) -> str:
        return f"/subscriptions/{self.subscription_id}"


def custom_role(*, cluster: str, principal_id: str, intents: str, scope: str,
                actions: list[str], data_actions: list[str]) -> CustomRole:
    """The desired custom role for ``intents`` (``namespace/name``) at the full ``scope``."""
    key = ("clearance.dev/role", cluster, principal_id, intents, scope.lower())
    return CustomRole(
        guid=naming.deterministic_guid(*key),
        subscription_id=subscription_of(scope),
        role_name=naming.fit_name("clr-role-", (intents.replace("/", "-"), cluster), ROLE_NAME_MAX, key=key),
        description=f"{MARKER}; cluster={cluster}; principal={principal_id}; intents={intents}",
        assignable_scope=scope,
        actions=tuple(sorted(set(actions))),
        data_actions=tuple(sorted(set(data_actions))),
    )


def is_clearance_role(model: Any, cluster: str) -> bool:
    """Whether a role definition model was created by Clearance for this cluster."""
    description = getattr(model, "description", None) or ""
    return description.startswith(MARKER) and f"cluster={cluster};" in description


def _same(model: Any, role: CustomRole) -> bool:
    perms = list(getattr(model, "permissions", None) or [])
    actions = {a for p in perms for a in (p.actions or [])}
    data = {a for p in perms for a in (p.data_actions or [])}
    scopes = [s.lower() for s in (model.assignable_scopes or [])]
    return (actions == set(role.actions) and data == set(role.data_actions)
            and scopes == [role.assignable_scope.lower()] and model.role_name == role.role_name
            and model.description == role.description)


class Roles:
    """Custom role definitions and role-name lookups (cached)."""

    def __init__(self, arm: ArmClients) -> None:
        self.arm = arm
        self._by_name: dict[tuple[str, str], str] = {}
        self._name_locks: dict[tuple[str, str], asyncio.Lock] = {}

    def client(self, subscription_id: str) -> Any:
        from azure.mgmt.authorization.aio import AuthorizationManagementClient

        return self.arm.build(AuthorizationManagementClient, subscription_id=subscription_id)

    async def get(self, role: CustomRole) -> Any | None:
        """The existing definition at ``role``'s GUID, or None."""
        try:
            return await self.client(role.subscription_id).role_definitions.get(role.definition_scope, role.guid)
        except Exception as exc:
            if is_not_found(exc):
                return None
            raise ArmError.from_exception(exc, doing=f"reading role definition {role.guid}") from exc

    async def ensure(self, role: CustomRole, cluster: str) -> str:
        """Create or update ``role`` in place; returns "created", "updated" or "unchanged"."""
        existing = await self.get(role)
        if existing is not None:
            if not is_clearance_role(existing, cluster):
                raise ArmError(409, "ForeignRoleDefinition",
                               f"role definition {role.guid} exists but was not created by Clearance")
            if _same(existing, role):
                return "unchanged"
        await self.put(role)
        return "created" if existing is None else "updated"

    async def put(self, role: CustomRole) -> None:
        from azure.mgmt.authorization.v2022_04_01.models import Permission, RoleDefinition

        body = RoleDefinition(
            role_name=role.role_name, description=role.description, role_type="CustomRole",
            permissions=[Permission(actions=list(role.actions), not_actions=[],
                                    data_actions=list(role.data_actions), not_data_actions=[])],
            assignable_scopes=[role.assignable_scope],
        )
        try:
            await self.client(role.subscription_id).role_definitions.create_or_update(
                role.definition_scope, role.guid, body)
        except Exception as exc:
            raise ArmError.from_exception(exc, doing=f"writing custom role {role.role_name}") from exc

    async def delete(self, subscription_id: str, guid: str, cluster: str) -> bool:
        """Delete Clearance's role definition ``guid``; True if one was deleted."""
        client = self.client(subscription_id)
        scope = f"/subscriptions/{subscription_id}"
        try:
            existing = await client.role_definitions.get(scope, guid)
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise ArmError.from_exception(exc, doing=f"reading role definition {guid}") from exc
        if not is_clearance_role(existing, cluster):
            return False
        try:
            await client.role_definitions.delete(scope, guid)
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise ArmError.from_exception(exc, doing=f"deleting role definition {guid}") from exc
        return True

    async def list_clearance_roles(self, subscription_id: str, cluster: str, principal_id: str) -> list[Any]:
        """Clearance's custom roles for ``principal_id`` in a subscription (for cleanup)."""
        client = self.client(subscription_id)
        found = []
        try:
            async for model in client.role_definitions.list(f"/subscriptions/{subscription_id}",
                                                            filter="type eq 'CustomRole'"):
                if is_clearance_role(model, cluster) and f"principal={principal_id};" in (model.description or ""):
                    found.append(model)
        except Exception as exc:
            raise ArmError.from_exception(exc, doing="listing custom roles") from exc
        return found

    async def id_by_name(self, subscription_id: str, role_name: str) -> str:
        """The role definition ID of a built-in or existing role named ``role_name`` (cached)."""
        key = (subscription_id, role_name.lower())
        if key in self._by_name:
            return self._by_name[key]
        async with self._name_locks.setdefault(key, asyncio.Lock()):
            if key in self._by_name:
                return self._by_name[key]
            quoted = role_name.replace("'", "''")
            client = self.client(subscription_id)
            try:
                async for model in client.role_definitions.list(f"/subscriptions/{subscription_id}",
                                                                filter=f"roleName eq '{quoted}'"):
                    if (model.role_name or "").lower() == role_name.lower():
                        self._by_name[key] = _subscription_role_id(model.id, subscription_id)
                        break
            except Exception as exc:
                raise ArmError.from_exception(exc, doing=f"looking up role {role_name!r}") from exc
        if key not in self._by_name:
            raise ArmError(404, "RoleDefinitionNotFound", f"no role named {role_name!r} in subscription {subscription_id}")
        return self._by_name[key]


def _subscription_role_id(role_id: str, subscription_id: str) -> str:
    """Built-in role IDs come back as ``/providers/...``; assignments want the subscription form."""
    guid = role_id.rsplit("/", 1)[-1]
    return f"/subscriptions/{subscription_id}{ROLE_DEFINITIONS}{guid}"


def role_guid(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()
