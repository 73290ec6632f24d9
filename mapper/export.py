"""Per workload, the complete ClientIntents: what is applied merged with what was discovered.

The document keeps the name of the one ClientIntents already applied for the workload (so that
applying the export updates it), else ``client-intents-for-<workload>``. Applied targets are kept
(roles, Key Vault policies, non-Azure targets included); discovered permissions not applied yet
are added to the Azure target of the same scope in actions mode, or to a new target (those already
applied, through a built-in role or at a wider scope, add nothing). Order is deterministic.
"""
from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import yaml

from clearance.operator.api import (
    AzureTarget,
    ClientIntents,
    Target,
    Workload,
    scope_key,
    validate_document,
)

from .applied import AppliedIndex
from .intents import Intent
from .workloads import HOST_KIND


@dataclass(frozen=True, slots=True)
class Exported:
    namespace: str
    kind: str
    name: str
    document: dict[str, Any]

    def yaml(self) -> str:
        return dump_yaml(self.document)


def document_name(workload: str) -> str:
    return f"client-intents-for-{workload}"


def export(intents: list[Intent], applied: AppliedIndex, format: str = "clearance") -> list[Exported]:
    """One document per workload (Host callers cannot have ClientIntents and are left out)."""
    per_workload: dict[tuple[str, str, str], list[Intent]] = defaultdict(list)
    for e in intents:
        if e.kind != HOST_KIND:
            per_workload[(e.namespace, e.kind, e.name)].append(e)
    out = []
    for (ns, kind, name), entries in sorted(per_workload.items()):
        ci = merged(ns, kind, name, entries, applied)
        doc = ci.to_document(format)  # type: ignore[arg-type]
        errors = validate_document(doc)
        if errors:
            raise ValueError(f"export of {ns}/{name} would be invalid: {'; '.join(errors)}")
        out.append(Exported(ns, kind, name, doc))
    return out


def merged(namespace: str, kind: str, name: str, entries: list[Intent], applied: AppliedIndex) -> ClientIntents:
    wi = applied.lookup(namespace, kind, name)
    docs = wi.documents if wi is not None else []
    doc_name = docs[0].name if len(docs) == 1 else document_name(name)
    others: list[Target] = []
    azure: dict[str, AzureTarget] = {}  # scope key -> the actions-mode target
    extra: list[AzureTarget] = []  # roles / keyVaultPolicy-only targets, kept as applied
    for d in sorted(docs, key=lambda d: d.name):
        for t in d.targets:
            if t.azure is None:
                others.append(copy.deepcopy(t))
            elif t.azure.roles or not t.azure.wants_custom_role:
                extra.append(copy.deepcopy(t.azure))
            else:
                a = azure.setdefault(scope_key(t.azure.scope), AzureTarget(scope=t.azure.scope))
                a.actions = sorted(set(a.actions) | set(t.azure.actions))
                a.data_actions = sorted(set(a.data_actions) | set(t.azure.data_actions))
    for e in entries:
        if e.status == "applied":  # already granted by an applied target (a role, a wider scope, a wildcard)
            continue
        a = azure.setdefault(scope_key(e.scope), AzureTarget(scope=e.scope))
        a.actions = sorted(set(a.actions) | set(e.actions))
        a.data_actions = sorted(set(a.data_actions) | set(e.data_actions))
    targets = others + [Target.of_azure(t) for t in sorted(
        list(azure.values()) + extra, key=lambda t: (scope_key(t.scope), bool(t.roles), t.scope))]
    return ClientIntents(name=doc_name, namespace=namespace, workload=Workload(name=name, kind=kind),
                         targets=targets)


def dump_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
