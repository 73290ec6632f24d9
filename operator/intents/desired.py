"""From a ClientIntents target to what Azure should hold: scope, custom role, role names, vault entry.

Guardrails live here too, so the operator and ``clearance plan`` refuse the same things.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from clearance.operator.api import AzureTarget, ClientIntents
from clearance.operator.api.scopes import is_vault_scope
from clearance.operator.azure.arm import ArmError
from clearance.operator.azure.keyvaults import permissions_of
from clearance.operator.azure.resources import Resources, expand_offline
from clearance.operator.azure.roles import CustomRole, custom_role
from clearance.operator.intents.conditions import FAILED, TargetState
from clearance.operator.settings import Settings

@dataclass
class TargetPlan:
    """The Azure objects one target needs."""

    index: int
    scope: str
    custom_role: CustomRole | None = None
    role_names: list[str] = field(default_factory=list)
    vault_permissions: dict[str, list[str]] | None = None


def wildcard_refusal(target: AzureTarget, settings: Settings) -> str | None:
    """Why the wildcard guardrail refuses this target's actions/dataActions, or None."""
    if settings.allow_wildcards:
        return None
    for key, perms in (("actions", target.actions), ("dataActions", target.data_actions)):
        for perm in perms:
            if "*" in perm:
                return f"{key}: wildcard permission {perm!r} refused (the operator runs without --allow-wildcards)"
    return None


def refusal(target: AzureTarget, scope: str, settings: Settings) -> str | None:
    """Why the guardrails refuse this target at the full ``scope``, or None."""
    why = wildcard_refusal(target, settings)
    if why:
        return why
    if settings.allowed_scopes:
        low = scope.lower()
        if not any(low == a.lower().rstrip("/") or low.startswith(a.lower().rstrip("/") + "/")
                   for a in settings.allowed_scopes):
            return f"scope {scope} is outside the allowed scopes ({', '.join(settings.allowed_scopes)})"
    return None


def intents_label(intents: ClientIntents) -> str:
    return f"{intents.namespace}/{intents.name}"


async def plan_target(index: int, target: AzureTarget, *, intents: ClientIntents, principal_id: str,
                      settings: Settings, resources: Resources | None,
                      check_exists: bool = True) -> TargetPlan | TargetState:
    """The plan for one Azure target, or a Failed state saying why it cannot be acted on.

    ``resources=None`` plans offline: partial scopes are expanded without Azure and not checked.
    """
    try:
        scope = await resources.expand(target.scope) if resources else expand_offline(target.scope, settings)
    except ArmError as exc:
        return TargetState(index, FAILED, exc.code or "ScopeNotResolved", str(exc), transient=exc.transient)
    why = refusal(target, scope, settings)
    if why:
        return TargetState(index, FAILED, "Refused", why, scope=scope)
    if target.key_vault_policy is not None and not is_vault_scope(scope, full=True):
        return TargetState(index, FAILED, "InvalidScope", f"keyVaultPolicy needs a vault scope, got {scope}", scope=scope)
    if resources and check_exists:
        try:
            if not await resources.exists(scope):
                return TargetState(index, FAILED, "ScopeNotFound", f"scope {scope} does not exist", scope=scope)
        except ArmError as exc:
            return TargetState(index, FAILED, exc.code, str(exc), scope=scope, transient=exc.transient)
    plan = TargetPlan(index=index, scope=scope, role_names=list(target.roles))
    if target.actions or target.data_actions:
        plan.custom_role = custom_role(cluster=settings.cluster_name, principal_id=principal_id,
                                       intents=intents_label(intents), scope=scope,
                                       actions=target.actions, data_actions=target.data_actions)
    if target.key_vault_policy is not None and not target.key_vault_policy.is_empty():
        plan.vault_permissions = permissions_of(target.key_vault_policy)
    return plan

