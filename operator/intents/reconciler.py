"""Reconcile one ClientIntents into Azure: custom roles, role assignments, Key Vault entries.

Writes only what differs (a resync with nothing to do makes no ARM writes), names everything
deterministically (retries and restarts never duplicate), and removes only what carries
Clearance's marker for this cluster and ClientIntents. No lock is shared between ClientIntents.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from clearance.operator.api import ClientIntents, Workload
from clearance.operator.azure.arm import ArmClients, ArmError
from clearance.operator.azure.assignments import (
    Assignment,
    Assignments,
    PrincipalPropagating,
    description,
    is_clearance_assignment,
)
from clearance.operator.azure.keyvaults import KeyVaults
from clearance.operator.azure.resources import Resources, subscription_of
from clearance.operator.azure.roles import Roles, role_guid
from clearance.operator.intents.conditions import FAILED, PROPAGATING, READY, TargetState
from clearance.operator.intents.desired import TargetPlan, intents_label, plan_target
from clearance.operator.intents.propagation import propagating, recorded_changes, stamp
from clearance.operator.settings import Settings

log = logging.getLogger("clearance.operator.intents")


@dataclass
class Outcome:
    """What a reconcile or cleanup did and what the status should say."""

    states: list[TargetState]
    record: dict[str, Any] = field(default_factory=dict)  # status.azure: what Clearance holds
    writes: int = 0
    recheck_after: float | None = None  # seconds until a propagation window ends (no writes needed)

    @property
    def retry(self) -> bool:
        """Worth retrying soon with backoff (PrincipalNotFound, transient failures)."""
        return any(s.transient and s.type in (PROPAGATING, FAILED) for s in self.states)


class IdentityLookup:
    """The identity engineer's ``Identities.find`` (typed here to keep the dependency narrow)."""

    async def find(self, namespace: str, service_account: str) -> Any: ...


class IntentsReconciler:
    """One per operator process; safe to run for many ClientIntents at once."""

    def __init__(self, arm: ArmClients, settings: Settings, identities: IdentityLookup, core_v1: Any,
                 resources: Resources | None = None, clock: Callable[[], float] = time.time) -> None:
        self.arm = arm
        self.clock = clock  # wall-clock epoch seconds: change times live in status across restarts
        self.settings = settings
        self.identities = identities
        self.core_v1 = core_v1
        self.resources = resources or Resources(arm, settings)
        self.roles = Roles(arm)
        self.assignments = Assignments(arm)
        self.vaults = KeyVaults(arm)

    # ------------------------------------------------------------------ workload -> identity

    async def service_account(self, namespace: str, workload: Workload) -> str | None:
        """The ServiceAccount of the workload's pods (None when no pod is found)."""
        pods = await asyncio.to_thread(self.core_v1.list_namespaced_pod, namespace)
        for pod in pods.items or []:
            if pod.metadata.deletion_timestamp is None and _belongs(pod, workload):
                return pod.spec.service_account_name or "default"
        return None

    async def principal(self, intents: ClientIntents) -> tuple[Any, TargetState | None]:
        sa = await self.service_account(intents.namespace, intents.workload)
        if sa is None:
            return None, TargetState(-1, FAILED, "PodsNotFound",
                                     f"no pod of workload {intents.workload.name} in {intents.namespace}", transient=True)
        identity = await self.identities.find(intents.namespace, sa)
        if identity is None:
            return None, TargetState(-1, FAILED, "IdentityNotFound",
                                     f"ServiceAccount {intents.namespace}/{sa} has no Azure identity yet "
                                     "(label its pods clearance.dev/azure-workload-identity=true)", transient=True)
        return identity, None

    # ------------------------------------------------------------------ reconcile

    async def reconcile(self, intents: ClientIntents, recorded: dict[str, Any] | None = None) -> Outcome:
        """Bring Azure to exactly what ``intents`` asks; ``recorded`` is the previous status.azure."""
        recorded = recorded or {}
        unsupported = [TargetState(i, FAILED, "UnsupportedTarget", f"{t.kind} targets are not acted on by Clearance")
                       for i, t in enumerate(intents.targets) if not t.supported]
        identity, problem = await self.principal(intents)
        if identity is None:
            assert problem is not None
            states = [TargetState(i, problem.type, problem.reason, problem.message, transient=problem.transient)
                      for i, _ in intents.azure_targets]
            return Outcome(states + unsupported, record=recorded)
        principal_id = identity.principal_id
        results = await asyncio.gather(*(
            plan_target(i, t, intents=intents, principal_id=principal_id, settings=self.settings,
                        resources=self.resources) for i, t in intents.azure_targets))
        plans = [r for r in results if isinstance(r, TargetPlan)]
        states = {r.index: r for r in results if isinstance(r, TargetState)}
        label = intents_label(intents)
        subs = {self.settings.subscription_id} | {subscription_of(p.scope) for p in plans}
        subs |= set(recorded.get("subscriptions") or [])
        if recorded.get("principalId") not in (None, principal_id):
            # the ServiceAccount's identity changed: the old one's grants go first
            await self._remove_all(recorded, label, recorded["principalId"], subs, {p.scope.lower() for p in plans})
        existing = await self._existing(subs, principal_id, label)
        writes = 0
        desired_keys: set[tuple[str, str]] = set()
        role_ids: list[str] = []
        vaults: list[str] = []

        protected: set[str] = set()  # scopes of targets that failed: their grants stay as they are
        changed: set[str] = set()  # scopes where this reconcile created or changed a grant

        async def apply(plan: TargetPlan) -> TargetState:
            state = await _apply(plan)
            if state.type == FAILED:
                protected.add(plan.scope.lower())
            return state

        async def _apply(plan: TargetPlan) -> TargetState:
            nonlocal writes
            scope = plan.scope.lower()
            try:
                wanted: list[str] = []
                if plan.custom_role is not None:
                    role_ids.append(plan.custom_role.id)
                    result = await self.roles.ensure(plan.custom_role, self.settings.cluster_name)
                    if result != "unchanged":
                        writes += 1
                        changed.add(scope)
                    wanted.append(plan.custom_role.id)
                if plan.vault_permissions is not None:
                    vaults.append(plan.scope)
                sub = subscription_of(plan.scope)
                for name in plan.role_names:
                    wanted.append(await self.roles.id_by_name(sub, name))
                for role_id in wanted:
                    assignment = Assignment(plan.scope, role_id, principal_id, description(self.settings.cluster_name, label))
                    desired_keys.add(assignment.key)
                    if assignment.key not in existing and await self.assignments.create(assignment):
                        writes += 1
                        changed.add(scope)
                if plan.vault_permissions is not None:
                    tenant, current = await self.vaults.entry(plan.scope, principal_id)
                    if current != plan.vault_permissions:
                        await self.vaults.set(plan.scope, tenant or identity.tenant_id, principal_id,
                                              plan.vault_permissions, existing=current is not None)
                        writes += 1
                        changed.add(scope)
            except PrincipalPropagating as exc:
                return TargetState(plan.index, PROPAGATING, "PrincipalNotFound",
                                   f"Azure does not know the identity yet (replication delay): {exc.message}",
                                   scope=plan.scope, transient=True)
            except ArmError as exc:
                return TargetState(plan.index, FAILED, exc.code, str(exc), scope=plan.scope, transient=exc.transient)
            return TargetState(plan.index, READY, "Applied", "permissions granted", scope=plan.scope)

        for state in await asyncio.gather(*(apply(p) for p in plans)):
            states[state.index] = state
        # Removal: only when nothing failed transiently, so a hiccup never revokes a grant.
        if not any(s.transient for s in states.values()):
            for key, model in existing.items():
                if key not in desired_keys and key[0] not in protected:
                    if await self.assignments.delete(model.scope, model.name):
                        writes += 1
                        changed.add(key[0])
            for role_id in recorded.get("customRoles") or []:
                if role_id not in role_ids:
                    writes += await self.roles.delete(_sub_of_role(role_id), role_guid(role_id), self.settings.cluster_name)
            if identity.managed:
                for vault in recorded.get("vaults") or []:
                    if vault.lower() not in {v.lower() for v in vaults}:
                        writes += await self.vaults.remove(vault, principal_id)
            kept_roles, kept_vaults = role_ids, vaults
        else:
            kept_roles = sorted(set(role_ids) | set(recorded.get("customRoles") or []))
            kept_vaults = sorted(set(vaults) | set(recorded.get("vaults") or []))
        record = {"principalId": principal_id, "subscriptions": sorted(subs),
                  "customRoles": sorted(set(kept_roles)), "vaults": sorted(set(kept_vaults))}
        changed_at, recheck = self._propagation(plans, states, recorded, changed)
        if changed_at:
            record["changedAt"] = changed_at
        ordered = [states[i] for i in sorted(states)]
        return Outcome(ordered + unsupported, record=record, writes=writes, recheck_after=recheck)

    def _propagation(self, plans: list[TargetPlan], states: dict[int, TargetState], recorded: dict[str, Any],
                     changed: set[str]) -> tuple[dict[str, str], float | None]:
        """Turn Ready targets changed within the window into Propagating (in ``states``).

        Returns the new ``changedAt`` record (scopes still targeted) and the seconds until the
        earliest window ends (None when no target is inside one).
        """
        now = self.clock()
        times = recorded_changes(recorded)
        times.update({scope: now for scope in changed})
        scopes = {p.scope.lower() for p in plans}
        times = {scope: t for scope, t in times.items() if scope in scopes}
        recheck: float | None = None
        window = self.settings.propagation_window
        for plan in plans:
            state = states.get(plan.index)
            when = times.get(plan.scope.lower())
            if state is None or state.type != READY or when is None or window <= 0:
                continue
            found = propagating(state, when, now, window, policy_only=plan.vault_permissions is not None
                                and plan.custom_role is None and not plan.role_names)
            if found is not None:
                states[plan.index], left = found
                recheck = left if recheck is None else min(recheck, left)
        return {scope: stamp(t) for scope, t in sorted(times.items())}, recheck

    async def _existing(self, subs: set[str], principal_id: str, label: str) -> dict[tuple[str, str], Any]:
        lists = await asyncio.gather(*(self.assignments.list_for_principal(s, principal_id) for s in sorted(subs)))
        return {(m.scope.lower(), role_guid(m.role_definition_id)): m
                for models in lists for m in models
                if is_clearance_assignment(m, self.settings.cluster_name, label)}

    # ------------------------------------------------------------------ cleanup

    async def cleanup(self, intents: ClientIntents, recorded: dict[str, Any] | None = None) -> int:
        """Remove everything Clearance created for ``intents``; returns the number of ARM writes."""
        recorded = recorded or {}
        principal_id = recorded.get("principalId")
        if not principal_id:
            identity, _ = await self.principal(intents)
            if identity is None:
                return 0  # never granted anything: no identity, no record
            principal_id = identity.principal_id
        subs = {self.settings.subscription_id} | set(recorded.get("subscriptions") or [])
        vault_scopes: set[str] = set(recorded.get("vaults") or [])
        for _, target in intents.azure_targets:
            try:
                scope = await self.resources.expand(target.scope)
            except ArmError:
                continue
            subs.add(subscription_of(scope))
            if target.key_vault_policy is not None:
                vault_scopes.add(scope)
        return await self._remove_all({**recorded, "vaults": sorted(vault_scopes)}, intents_label(intents),
                                      principal_id, subs, set())

    async def _remove_all(self, recorded: dict[str, Any], label: str, principal_id: str, subs: set[str],
                          keep_vaults: set[str]) -> int:
        writes = 0
        for model in (await self._existing(subs, principal_id, label)).values():
            writes += await self.assignments.delete(model.scope, model.name)
        role_ids = set(recorded.get("customRoles") or [])
        for sub in sorted(subs):
            for model in await self.roles.list_clearance_roles(sub, self.settings.cluster_name, principal_id):
                if f"intents={label}" in (model.description or ""):
                    role_ids.add(f"/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{role_guid(model.id)}")
        for role_id in sorted(role_ids):
            writes += await self.roles.delete(_sub_of_role(role_id), role_guid(role_id), self.settings.cluster_name)
        for vault in recorded.get("vaults") or []:
            if vault.lower() not in keep_vaults:
                writes += await self.vaults.remove(vault, principal_id)
        return writes


def _sub_of_role(role_id: str) -> str:
    return subscription_of(role_id)


def _belongs(pod: Any, workload: Workload) -> bool:
    """Whether ``pod`` is one of the workload's pods (Deployment via its ReplicaSet's hash)."""
    meta = pod.metadata
    kind = workload.kind or ""
    if meta.name == workload.name and kind in ("", "Pod"):
        return True
    template_hash = (meta.labels or {}).get("pod-template-hash")
    for ref in meta.owner_references or []:
        if ref.name == workload.name and (not kind or ref.kind == kind):
            return True
        if (ref.kind == "ReplicaSet" and kind in ("", "Deployment") and template_hash
                and ref.name == f"{workload.name}-{template_hash}"):
            return True
    return False
