"""Checking ClientIntents documents; every message starts with the path of the bad field."""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from clearance.operator.api.model import (
    ACCEPTED_API_VERSIONS,
    KEY_VAULT_PERMISSIONS,
    KIND,
    TARGET_KINDS,
    AzureTarget,
    ClientIntents,
    KeyVaultPolicy,
    Target,
    Workload,
)
from clearance.operator.api.scopes import is_vault_scope

MAX_TARGETS = 500
MAX_PERMISSIONS = 1000
MAX_SCOPE_LEN = 2048
MAX_NAME_LEN = 512

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: An Azure operation: provider/segments, each of letters, digits, '.', '_', '-' or '*'.
ACTION_PATTERN = r"^[A-Za-z0-9._*-]+(/[A-Za-z0-9._*-]+)*$"
_ACTION = re.compile(ACTION_PATTERN)
#: A scope: '/'-separated non-empty segments without spaces or control characters.
SCOPE_PATTERN = r"^(/[^/\s]+)+$"
_SCOPE = re.compile(SCOPE_PATTERN)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

_AZURE_KEYS = {"scope", "roles", "actions", "dataActions", "keyVaultPolicy"}


def validate_document(doc: Any) -> list[str]:
    """Every problem with ``doc`` as a ClientIntents; an empty list means it is valid."""
    return check_document(doc)[1]


def check_document(doc: Any) -> tuple[ClientIntents | None, list[str]]:
    """Parse and check ``doc``; returns the ClientIntents (None when invalid) and the errors."""
    errors: list[str] = []
    if not isinstance(doc, Mapping):
        return None, [f"document: expected a mapping, got {type(doc).__name__}"]
    api_version = doc.get("apiVersion")
    if api_version not in ACCEPTED_API_VERSIONS:
        errors.append(f"apiVersion: {_show(api_version)} is not one of {', '.join(ACCEPTED_API_VERSIONS)}")
    if doc.get("kind") != KIND:
        errors.append(f"kind: {_show(doc.get('kind'))} is not {KIND}")
    name, namespace = _metadata(doc.get("metadata"), errors)
    workload, targets = _spec(doc.get("spec"), errors)
    if errors or workload is None:
        return None, errors
    return ClientIntents(name=name, namespace=namespace, workload=workload, targets=targets), []


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _metadata(meta: Any, errors: list[str]) -> tuple[str, str]:
    if not isinstance(meta, Mapping):
        errors.append("metadata: required mapping")
        return "", ""
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        errors.append("metadata.name: required")
        name = ""
    elif len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(f"metadata.name: {_show(name)} is not a DNS subdomain name")
    namespace = meta.get("namespace", "default")
    if namespace is None:
        namespace = "default"
    if not isinstance(namespace, str) or len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        errors.append(f"metadata.namespace: {_show(namespace)} is not a DNS label")
        namespace = ""
    return name, namespace


def _spec(spec: Any, errors: list[str]) -> tuple[Workload | None, list[Target]]:
    if not isinstance(spec, Mapping):
        errors.append("spec: required mapping")
        return None, []
    for key in spec:
        if key not in ("workload", "targets"):
            errors.append(f"spec.{key}: unknown field (expected workload, targets)")
    workload = _workload(spec.get("workload"), errors)
    raw_targets = spec.get("targets", [])
    if raw_targets is None:
        raw_targets = []
    if not isinstance(raw_targets, list):
        errors.append("spec.targets: expected a list")
        return workload, []
    if len(raw_targets) > MAX_TARGETS:
        errors.append(f"spec.targets: {len(raw_targets)} targets, at most {MAX_TARGETS} allowed")
        return workload, []
    targets = [t for i, raw in enumerate(raw_targets) if (t := _target(f"spec.targets[{i}]", raw, errors))]
    return workload, targets


def _workload(raw: Any, errors: list[str]) -> Workload | None:
    if not isinstance(raw, Mapping):
        errors.append("spec.workload: required mapping with name")
        return None
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        errors.append("spec.workload.name: required")
        return None
    if len(name) > 253 or not _DNS_SUBDOMAIN.match(name):
        errors.append(f"spec.workload.name: {_show(name)} is not a Kubernetes object name")
    kind = raw.get("kind", "") or ""
    if not isinstance(kind, str) or len(kind) > 63 or _CONTROL.search(kind) or " " in kind:
        errors.append(f"spec.workload.kind: {_show(kind)} is not a kind name")
        kind = ""
    for key in raw:
        if key not in ("name", "kind"):
            errors.append(f"spec.workload.{key}: unknown field (expected name, kind)")
    return Workload(name=name, kind=kind)


def _target(path: str, raw: Any, errors: list[str]) -> Target | None:
    if not isinstance(raw, Mapping) or len(raw) != 1:
        errors.append(f"{path}: must set exactly one of {', '.join(TARGET_KINDS)}")
        return None
    (kind, value), = raw.items()
    if kind not in TARGET_KINDS:
        errors.append(f"{path}.{kind}: unknown target kind (expected one of {', '.join(TARGET_KINDS)})")
        return None
    if kind != "azure":
        return Target(kind=kind, raw=value)
    azure = _azure(f"{path}.azure", value, errors)
    return Target.of_azure(azure) if azure else None


def _azure(path: str, raw: Any, errors: list[str]) -> AzureTarget | None:
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: expected a mapping with scope")
        return None
    before = len(errors)
    for key in raw:
        if key not in _AZURE_KEYS:
            errors.append(f"{path}.{key}: unknown field (expected {', '.join(sorted(_AZURE_KEYS))})")
    scope = raw.get("scope")
    if not isinstance(scope, str) or not scope:
        errors.append(f"{path}.scope: required")
        scope = ""
    elif len(scope) > MAX_SCOPE_LEN or not _SCOPE.match(scope):
        errors.append(f"{path}.scope: {_show(scope)} is not an Azure scope "
                      "('/'-separated, starting with '/', no empty segments or spaces)")
    roles = _strings(f"{path}.roles", raw.get("roles"), errors, _role_problem)
    actions = _strings(f"{path}.actions", raw.get("actions"), errors, _action_problem)
    data_actions = _strings(f"{path}.dataActions", raw.get("dataActions"), errors, _action_problem)
    policy = _key_vault_policy(f"{path}.keyVaultPolicy", raw.get("keyVaultPolicy"), errors)
    if roles and (actions or data_actions):
        errors.append(f"{path}.roles: cannot be combined with actions or dataActions in one target")
    if not (roles or actions or data_actions or (policy and not policy.is_empty())):
        errors.append(f"{path}: set at least one of roles, actions, dataActions, keyVaultPolicy")
    if policy is not None and scope and not is_vault_scope(scope):
        errors.append(f"{path}.keyVaultPolicy: scope {_show(scope)} is not a Key Vault "
                      "(…/providers/Microsoft.KeyVault/vaults/<name>)")
    if len(errors) != before:
        return None
    return AzureTarget(scope=scope, roles=roles, actions=actions, data_actions=data_actions,
                       key_vault_policy=policy)


def _role_problem(value: str) -> str | None:
    if len(value) > MAX_NAME_LEN or _CONTROL.search(value) or value != value.strip():
        return "is not a role name"
    return None


def _action_problem(value: str) -> str | None:
    if len(value) > MAX_NAME_LEN or not _ACTION.match(value):
        return "is not an Azure operation (e.g. Microsoft.Storage/storageAccounts/read)"
    return None


def _strings(path: str, raw: Any, errors: list[str], problem: Any) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"{path}: expected a list of strings")
        return []
    if len(raw) > MAX_PERMISSIONS:
        errors.append(f"{path}: {len(raw)} entries, at most {MAX_PERMISSIONS} allowed")
        return []
    out: list[str] = []
    for i, value in enumerate(raw):
        if not isinstance(value, str) or not value:
            errors.append(f"{path}[{i}]: expected a non-empty string")
            continue
        why = problem(value)
        if why:
            errors.append(f"{path}[{i}]: {_show(value)} {why}")
            continue
        if value not in out:
            out.append(value)
    return out


def _key_vault_policy(path: str, raw: Any, errors: list[str]) -> KeyVaultPolicy | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        errors.append(f"{path}: expected a mapping")
        return None
    values: dict[str, list[str]] = {}
    for key, value in raw.items():
        allowed = KEY_VAULT_PERMISSIONS.get(key)
        if allowed is None:
            errors.append(f"{path}.{key}: unknown field (expected {', '.join(KEY_VAULT_PERMISSIONS)})")
            continue
        values[key] = _strings(f"{path}.{key}", value, errors,
                               lambda v, a=allowed: None if v in a else f"is not one of {', '.join(a)}")
    return KeyVaultPolicy(
        certificate_permissions=values.get("certificatePermissions", []),
        key_permissions=values.get("keyPermissions", []),
        secret_permissions=values.get("secretPermissions", []),
        storage_permissions=values.get("storagePermissions", []),
    )
