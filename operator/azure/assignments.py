"""Role assignments on a workload identity: deterministic names, idempotent creates, listing by
principal (never by paging a whole subscription), and deleting only Clearance's own.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from clearance.operator import naming
from clearance.operator.azure.arm import ArmClients, ArmError, is_not_found, iter_codes
from clearance.operator.azure.resources import subscription_of
from clearance.operator.azure.roles import MARKER, role_guid


class PrincipalPropagating(ArmError):
    """Azure does not know the principal yet (replication delay after the identity was created)."""


@dataclass(frozen=True)
class Assignment:
    """One role assignment Clearance wants (or has) on an identity."""

    scope: str
    role_definition_id: str
    principal_id: str
    description: str

    @property
    def name(self) -> str:
        return assignment_name(self.scope, self.principal_id, self.role_definition_id)

    @property
    def key(self) -> tuple[str, str]:
        return self.scope.lower(), role_guid(self.role_definition_id)


def assignment_name(scope: str, principal_id: str, role_definition_id: str) -> str:
    """Deterministic GUID from (scope, principal, role): every retry PUTs the same name."""
    return naming.deterministic_guid("clearance.dev/assignment", scope.lower(), principal_id.lower(),
                                     role_guid(role_definition_id))


def description(cluster: str, intents: str) -> str:
    return f"{MARKER}; cluster={cluster}; intents={intents}"


def is_clearance_assignment(model: Any, cluster: str, intents: str) -> bool:
    """Made by Clearance for this cluster and ClientIntents: marker, and its deterministic name."""
    if (model.description or "") != description(cluster, intents):
        return False
    return (model.name or "").lower() == assignment_name(model.scope, model.principal_id, model.role_definition_id)


class Assignments:
    """Role assignment operations through the shared ARM clients."""

    def __init__(self, arm: ArmClients) -> None:
        self.arm = arm

    def client(self, subscription_id: str) -> Any:
        from azure.mgmt.authorization.aio import AuthorizationManagementClient

        return self.arm.build(AuthorizationManagementClient, subscription_id=subscription_id)

    async def list_for_principal(self, subscription_id: str, principal_id: str) -> list[Any]:
        """Every assignment of ``principal_id`` in a subscription (server-side principal filter)."""
        found = []
        try:
            async for model in self.client(subscription_id).role_assignments.list_for_subscription(
                    filter=f"principalId eq '{principal_id}'"):
                if (model.principal_id or "").lower() == principal_id.lower():
                    found.append(model)
        except Exception as exc:
            raise ArmError.from_exception(exc, doing="listing role assignments") from exc
        return found

    async def create(self, assignment: Assignment) -> bool:
        """PUT the assignment; True if created, False if it already existed (RoleAssignmentExists).

        Raises ``PrincipalPropagating`` while Azure does not know the principal yet.
        """
        from azure.mgmt.authorization.v2022_04_01.models import RoleAssignmentCreateParameters

        params = RoleAssignmentCreateParameters(
            role_definition_id=assignment.role_definition_id, principal_id=assignment.principal_id,
            principal_type="ServicePrincipal", description=assignment.description)
        try:
            await self.client(subscription_of(assignment.scope)).role_assignments.create(
                assignment.scope, assignment.name, params)
        except Exception as exc:
            codes = set(iter_codes(exc))
            if "RoleAssignmentExists" in codes:
                return False
            error = ArmError.from_exception(exc, doing=f"assigning role at {assignment.scope}")
            if "PrincipalNotFound" in codes:
                raise PrincipalPropagating(error.status, "PrincipalNotFound", error.message) from exc
            raise error from exc
        return True

    async def delete(self, scope: str, name: str) -> bool:
        """Delete one assignment by scope and name; True if it existed."""
        try:
            result = await self.client(subscription_of(scope)).role_assignments.delete(scope, name)
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise ArmError.from_exception(exc, doing=f"removing role assignment at {scope}") from exc
        return result is not None
