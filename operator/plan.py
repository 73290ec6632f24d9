"""``clearance plan -f FILE [--offline]``: the Azure changes ClientIntents imply, without writing.

Offline it assumes nothing exists yet and needs no credentials: partial scopes are expanded
with the configured subscription and resource group and role names are not resolved. Online
it reads Azure (and Kubernetes, to find each workload's ServiceAccount) and diffs.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from typing import Any, TextIO

from clearance.operator.api import ClientIntents, DocumentError, InvalidClientIntents, parse_client_intents
from clearance.operator.api import load_documents as read_yaml
from clearance.operator.settings import Settings, SettingsError

OFFLINE_DEFAULTS = {"subscription_id": "00000000-0000-0000-0000-000000000000",
                    "resource_group": "<resource-group>", "cluster_name": "<cluster>"}


@dataclass
class Change:
    """One planned change: ``action`` is create, update, delete or unchanged."""

    action: str
    kind: str  # roleDefinition, roleAssignment, accessPolicy
    scope: str
    detail: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        sign = {"create": "+", "update": "~", "delete": "-", "unchanged": "="}[self.action]
        extras = " ".join(f"{k}={_fmt(v)}" for k, v in self.detail.items())
        return f"  {sign} {self.action:<9} {self.kind:<15} {self.scope} {extras}".rstrip()


def _fmt(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_fmt(v)}" for k, v in value.items() if v) + "}"
    return str(value)


def load_documents(path: str, stdin: TextIO | None = None) -> list[ClientIntents]:
    """Every ClientIntents in a YAML file (``-`` for stdin); other kinds are skipped.

    Raises DocumentError (unreadable file, bad YAML) or InvalidClientIntents, naming file and document.
    """
    out = []
    for doc in read_yaml(path, stdin=stdin):
        if doc.body.get("kind") not in (None, "ClientIntents"):
            continue
        try:
            out.append(parse_client_intents(doc.body))
        except InvalidClientIntents as exc:
            raise InvalidClientIntents(f"{doc.label}: {exc.reason}", exc.errors) from None
    return out


async def plan_offline(intents: ClientIntents, settings: Settings) -> list[Change | str]:
    """Everything to create, assuming an empty starting state."""
    from clearance.operator.intents.desired import TargetPlan, plan_target

    principal = f"<principal of {intents.namespace}/{intents.workload.name}>"
    out: list[Change | str] = []
    for index, target in intents.azure_targets:
        result = await plan_target(index, target, intents=intents, principal_id=principal, settings=settings,
                                   resources=None)
        if not isinstance(result, TargetPlan):
            out.append(f"  ! target {index}: {result.reason}: {result.message}")
            continue
        out.extend(_creates(result, principal))
    out.extend(_unsupported(intents))
    return out


def _creates(plan: Any, principal: str) -> list[Change]:
    changes = []
    if plan.custom_role is not None:
        role = plan.custom_role
        changes.append(Change("create", "roleDefinition", role.assignable_scope,
                              {"name": role.role_name, "id": role.guid, "actions": role.actions,
                               "dataActions": role.data_actions}))
        changes.append(Change("create", "roleAssignment", plan.scope, {"role": role.role_name, "principal": principal}))
    for name in plan.role_names:
        changes.append(Change("create", "roleAssignment", plan.scope, {"role": name, "principal": principal}))
    if plan.vault_permissions is not None:
        changes.append(Change("create", "accessPolicy", plan.scope,
                              {"objectId": principal, "permissions": plan.vault_permissions}))
    return changes


def _unsupported(intents: ClientIntents) -> list[str]:
    return [f"  ! target {i}: {t.kind} targets are not acted on by Clearance"
            for i, t in enumerate(intents.targets) if not t.supported]


async def plan_online(intents: ClientIntents, reconciler: Any, service_account: str | None) -> list[Change | str]:
    """The diff between what ``intents`` needs and what Azure holds now."""
    from clearance.operator.azure.assignments import Assignment, description
    from clearance.operator.azure.roles import _same
    from clearance.operator.intents.desired import TargetPlan, intents_label, plan_target

    settings = reconciler.settings
    sa = service_account or await reconciler.service_account(intents.namespace, intents.workload)
    if sa is None:
        return [f"  ! no pod of workload {intents.workload.name} in {intents.namespace}: cannot find its identity"]
    identity = await reconciler.identities.find(intents.namespace, sa)
    if identity is None:
        principal = f"<principal of {intents.namespace}/{sa} (identity not created yet)>"
        return await _online_creates(intents, reconciler, principal)
    label = intents_label(intents)
    out: list[Change | str] = []
    plans = []
    for index, target in intents.azure_targets:
        result = await plan_target(index, target, intents=intents, principal_id=identity.principal_id,
                                   settings=settings, resources=reconciler.resources)
        if isinstance(result, TargetPlan):
            plans.append(result)
        else:
            out.append(f"  ! target {index}: {result.reason}: {result.message}")
    subs = {settings.subscription_id} | {p.scope.split("/")[2] for p in plans}
    existing = await reconciler._existing(subs, identity.principal_id, label)
    wanted_keys = set()
    for plan in plans:
        role_ids = []
        if plan.custom_role is not None:
            role = plan.custom_role
            current = await reconciler.roles.get(role)
            action = "create" if current is None else ("unchanged" if _same(current, role) else "update")
            out.append(Change(action, "roleDefinition", role.assignable_scope,
                              {"name": role.role_name, "actions": role.actions, "dataActions": role.data_actions}))
            role_ids.append((role.id, role.role_name))
        for name in plan.role_names:
            role_ids.append((await reconciler.roles.id_by_name(plan.scope.split("/")[2], name), name))
        for role_id, role_name in role_ids:
            assignment = Assignment(plan.scope, role_id, identity.principal_id, description(settings.cluster_name, label))
            wanted_keys.add(assignment.key)
            action = "unchanged" if assignment.key in existing else "create"
            out.append(Change(action, "roleAssignment", plan.scope, {"role": role_name, "principal": identity.principal_id}))
        if plan.vault_permissions is not None:
            _, current_perms = await reconciler.vaults.entry(plan.scope, identity.principal_id)
            action = "create" if current_perms is None else (
                "unchanged" if current_perms == plan.vault_permissions else "update")
            out.append(Change(action, "accessPolicy", plan.scope,
                              {"objectId": identity.principal_id, "permissions": plan.vault_permissions}))
    for key, model in existing.items():
        if key not in wanted_keys:
            out.append(Change("delete", "roleAssignment", model.scope, {"roleDefinitionId": model.role_definition_id}))
    out.extend(_unsupported(intents))
    return out


async def _online_creates(intents: ClientIntents, reconciler: Any, principal: str) -> list[Change | str]:
    from clearance.operator.intents.desired import TargetPlan, plan_target

    out: list[Change | str] = []
    for index, target in intents.azure_targets:
        result = await plan_target(index, target, intents=intents, principal_id=principal,
                                   settings=reconciler.settings, resources=reconciler.resources)
        out.extend(_creates(result, principal) if isinstance(result, TargetPlan)
                   else [f"  ! target {index}: {result.reason}: {result.message}"])
    return out


def render(intents: ClientIntents, changes: list[Change | str]) -> str:
    head = f"ClientIntents {intents.namespace}/{intents.name} (workload {intents.workload.name})"
    lines = [head] + [c.line() if isinstance(c, Change) else c for c in changes]
    if len(lines) == 1:
        lines.append("  (no Azure targets)")
    return "\n".join(lines)


def summary(all_changes: list[list[Change | str]]) -> str:
    counts = {"create": 0, "update": 0, "delete": 0}
    for changes in all_changes:
        for c in changes:
            if isinstance(c, Change) and c.action in counts:
                counts[c.action] += 1
    return f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['delete']} to delete."


def _settings(args: argparse.Namespace, offline: bool) -> Settings:
    if offline:
        for key, value in OFFLINE_DEFAULTS.items():
            if not getattr(args, key, None):
                setattr(args, key, value)
        # placeholders hold characters Azure refuses; offline output only shows them
        return Settings(subscription_id=args.subscription_id, resource_group=args.resource_group,
                        cluster_name=args.cluster_name, allowed_scopes=tuple(getattr(args, "allowed_scope", ()) or ()),
                        allow_wildcards=bool(getattr(args, "allow_wildcards", False)))
    return Settings.from_args(args)


def run_plan(args: argparse.Namespace, out: TextIO | None = None) -> int:
    """Entry point of ``clearance plan``; 0 on success, 2 on bad input or settings."""
    out = out or sys.stdout
    try:
        documents = load_documents(args.filename)
        settings = _settings(args, bool(args.offline))
    except (DocumentError, InvalidClientIntents, SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.offline:
        results = asyncio.run(_all_offline(documents, settings))
    else:
        try:
            results = asyncio.run(_all_online(documents, settings, args))
        except Exception as exc:  # noqa: BLE001 - reported, never a traceback
            from clearance.operator.azure.arm import ArmError

            print(f"error: {ArmError.from_exception(exc)}", file=sys.stderr)
            return 1
    for intents, changes in zip(documents, results):
        print(render(intents, changes), file=out)
    print(summary(results), file=out)
    return 0


async def _all_offline(documents: list[ClientIntents], settings: Settings) -> list[list[Change | str]]:
    return [await plan_offline(d, settings) for d in documents]


async def _all_online(documents: list[ClientIntents], settings: Settings, args: argparse.Namespace,
                      *, credential: Any = None, core_v1: Any = None) -> list[list[Change | str]]:
    from clearance.operator.azure.arm import ArmClients, resolve_defaults
    from clearance.operator.azure.identities import Identities
    from clearance.operator.intents.reconciler import IntentsReconciler

    credential = credential if credential is not None else getattr(args, "credential", None)
    arm = ArmClients(settings, credential=credential)
    try:
        settings = await resolve_defaults(settings, arm)
        arm.settings = settings
        core = core_v1 if core_v1 is not None else getattr(args, "core_v1", None) or _core_v1(args)
        reconciler = IntentsReconciler(arm, settings, Identities(arm, settings), core)
        results = []
        for d in documents:
            sa = None if core is not None else d.workload.name
            results.append(await plan_online(d, reconciler, sa))
        return results
    finally:
        await arm.close()


def _core_v1(args: argparse.Namespace) -> Any:
    """A CoreV1Api from the kubeconfig when there is one (else None: ServiceAccount = workload name)."""
    try:
        from kubernetes import client, config

        kubeconfig = getattr(args, "kubeconfig", None)
        return client.CoreV1Api(config.new_client_from_config(config_file=kubeconfig))
    except Exception:  # noqa: BLE001 - no cluster access is a normal case for plan
        return None
