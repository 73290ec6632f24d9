"""The CRD, generated from the model: the single source of the ClientIntents OpenAPI schema."""
from __future__ import annotations

from typing import Any

from clearance.operator.api.model import (
    GROUP,
    KEY_VAULT_PERMISSIONS,
    KIND,
    LIST_KIND,
    OTTERIZE_GROUP,
    OTTERIZE_VERSION,
    OTTERIZE_VERSIONS,
    PLURAL,
    SHORT_NAMES,
    SINGULAR,
    TARGET_KINDS,
    VERSION,
)
from clearance.operator.api.validation import (
    ACTION_PATTERN,
    MAX_NAME_LEN,
    MAX_PERMISSIONS,
    MAX_SCOPE_LEN,
    MAX_TARGETS,
    SCOPE_PATTERN,
)
from clearance.operator.api.scopes import VAULT_SCOPE_PATTERN

#: Condition types, one condition per target.
CONDITION_TYPES = ("Ready", "Propagating", "Failed")

_NON_EMPTY = "(has(self.{0}) && size(self.{0}) > 0)"
_ROLES, _ACTIONS, _DATA = (_NON_EMPTY.format(f) for f in ("roles", "actions", "dataActions"))

AZURE_RULES: list[dict[str, str]] = [
    {
        "rule": f"!{_ROLES} || !({_ACTIONS} || {_DATA})",
        "message": "roles cannot be combined with actions or dataActions in one target",
    },
    {
        "rule": f"{_ROLES} || {_ACTIONS} || {_DATA} || has(self.keyVaultPolicy)",
        "message": "set at least one of roles, actions, dataActions, keyVaultPolicy",
    },
    {
        "rule": f"!has(self.keyVaultPolicy) || self.scope.matches('{VAULT_SCOPE_PATTERN.replace(chr(92), chr(92) * 2)}')",
        "message": "keyVaultPolicy needs a Key Vault scope (.../providers/Microsoft.KeyVault/vaults/<name>)",
    },
]


def _string_list(pattern: str | None = None, enum: tuple[str, ...] | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LEN}
    if pattern:
        item["pattern"] = pattern
    if enum:
        item = {"type": "string", "enum": list(enum)}
    return {"type": "array", "maxItems": MAX_PERMISSIONS, "items": item}


def azure_target_schema() -> dict[str, Any]:
    """OpenAPI for ``targets[].azure``."""
    return {
        "type": "object",
        "description": "An Azure scope and what the workload may do there: roles by name, or actions/"
        "dataActions for a custom role; optionally Key Vault access-policy permissions.",
        "required": ["scope"],
        "properties": {
            "scope": {
                "type": "string",
                "minLength": 2,
                "maxLength": MAX_SCOPE_LEN,
                "pattern": SCOPE_PATTERN,
                "description": "Full or partial Azure scope (/subscriptions/…, /resourceGroups/…, /providers/…).",
            },
            "roles": _string_list(),
            "actions": _string_list(ACTION_PATTERN),
            "dataActions": _string_list(ACTION_PATTERN),
            "keyVaultPolicy": {
                "type": "object",
                "properties": {key: _string_list(enum=values) for key, values in KEY_VAULT_PERMISSIONS.items()},
            },
        },
        "x-kubernetes-validations": [dict(r) for r in AZURE_RULES],
    }


def spec_schema() -> dict[str, Any]:
    target_props: dict[str, Any] = {
        kind: {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        for kind in TARGET_KINDS if kind != "azure"
    }
    target_props["azure"] = azure_target_schema()
    return {
        "type": "object",
        "required": ["workload"],
        "properties": {
            "workload": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string", "minLength": 1, "maxLength": 253},
                    "kind": {"type": "string", "maxLength": 63},
                },
            },
            "targets": {
                "type": "array",
                "maxItems": MAX_TARGETS,
                "items": {
                    "type": "object",
                    "description": "Exactly one target kind; only azure is acted on.",
                    "minProperties": 1,
                    "maxProperties": 1,
                    "properties": target_props,
                },
            },
        },
    }


def status_schema() -> dict[str, Any]:
    condition = {
        "type": "object",
        "required": ["type", "status", "target"],
        "properties": {
            "type": {"type": "string", "enum": list(CONDITION_TYPES)},
            "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
            "target": {"type": "integer", "description": "index in spec.targets"},
            "scope": {"type": "string", "description": "the expanded Azure scope"},
            "reason": {"type": "string"},
            "message": {"type": "string"},
            "observedGeneration": {"type": "integer", "format": "int64"},
            "lastTransitionTime": {"type": "string", "format": "date-time"},
        },
    }
    return {
        "type": "object",
        "properties": {
            "observedGeneration": {"type": "integer", "format": "int64"},
            "upToDate": {"type": "boolean"},
            "ready": {"type": "string", "description": "ready targets / Azure targets"},
            "conditions": {"type": "array", "items": condition},
        },
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _version(name: str, *, storage: bool) -> dict[str, Any]:
    return {
        "name": name,
        "served": True,
        "storage": storage,
        "schema": {
            "openAPIV3Schema": {
                "type": "object",
                "description": "The Azure permissions a workload may use.",
                "required": ["spec"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "metadata": {"type": "object"},
                    "spec": spec_schema(),
                    "status": status_schema(),
                },
            }
        },
        "subresources": {"status": {}},
        "additionalPrinterColumns": [
            {"name": "Workload", "type": "string", "jsonPath": ".spec.workload.name"},
            {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
            {"name": "Up-to-date", "type": "boolean", "jsonPath": ".status.upToDate"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
    }


def crd_manifest(otterize: bool = False) -> dict[str, Any]:
    """The CustomResourceDefinition; ``otterize=True`` gives Otterize's group and v2 versions."""
    group = OTTERIZE_GROUP if otterize else GROUP
    if otterize:
        versions = [_version(v, storage=v == OTTERIZE_VERSION) for v in OTTERIZE_VERSIONS]
    else:
        versions = [_version(VERSION, storage=True)]
    names: dict[str, Any] = {"kind": KIND, "listKind": LIST_KIND, "plural": PLURAL, "singular": SINGULAR}
    if not otterize:
        names["shortNames"] = list(SHORT_NAMES)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{group}",
            "labels": {"app.kubernetes.io/part-of": "clearance"},
        },
        "spec": {"group": group, "scope": "Namespaced", "names": names, "versions": versions},
    }


def crd_yaml(otterize: bool = False) -> str:
    """The CRD as the YAML text checked in under charts/clearance/crds/."""
    import yaml

    header = "# Generated from clearance.operator.api (scripts: python -m clearance.operator.api.crdgen). Do not edit.\n"
    return header + yaml.safe_dump(crd_manifest(otterize), sort_keys=False, default_flow_style=False, width=120)
