"""kopf handlers for labelled pods and managed ServiceAccounts.

``register(registry)`` adds them to a kopf registry (the operator's default one in production,
a fresh one per test). Each handler finds its ``IdentityContext`` at ``memo.identity``.
"""
from __future__ import annotations

from typing import Any

import kopf

from clearance.operator.identity import labels as L
from clearance.operator.identity import reconcile
from clearance.operator.identity.webhook import mutate_pod


def _context(memo: Any) -> reconcile.IdentityContext:
    ctx = getattr(memo, "identity", None)
    if ctx is None:
        raise kopf.PermanentError("operator memo has no identity context (run via run_operator/serve)")
    return ctx


def _pod_opted_in(labels: Any, memo: Any, **_: Any) -> bool:
    ctx = getattr(memo, "identity", None)
    return ctx is not None and L.wants_identity(labels, ctx.settings.otterize_compat)


async def pod_changed(body: Any, namespace: str | None, memo: Any, **_: Any) -> dict[str, str]:
    """A labelled pod appeared, resumed or was relabelled: its ServiceAccount gets an identity."""
    ctx = _context(memo)
    sa = L.service_account_of(body)
    identity = await reconcile.reconcile_service_account(ctx, namespace or "default", sa)
    return {"serviceAccount": sa, "clientId": identity.client_id}


async def service_account_resumed(body: Any, name: str, namespace: str, memo: Any, **_: Any) -> None:
    """At operator start, re-ensure identities of ServiceAccounts Clearance already manages."""
    if body.get("metadata", {}).get("deletionTimestamp"):
        return
    ctx = _context(memo)
    await reconcile.reconcile_service_account(ctx, namespace, name)


async def service_account_deleted(name: str, namespace: str, memo: Any, **_: Any) -> None:
    """Finalizer: delete the credential, then the identity, if Clearance made them."""
    await reconcile.cleanup_service_account(_context(memo), namespace, name)


MUTATE_PATH = "/identity-pod-mutate"  # charts/clearance/templates/operator.yaml


def register(registry: kopf.OperatorRegistry) -> None:
    """Add the identity handlers and the pod webhook to ``registry`` (once per registry)."""
    if getattr(registry, "_clearance_identity_registered", False):
        return
    registry._clearance_identity_registered = True  # type: ignore[attr-defined]
    for decorator in (kopf.on.create, kopf.on.resume):
        decorator("", "v1", "pods", id=f"identity-pod-{decorator.__name__}", when=_pod_opted_in,
                  registry=registry, backoff=5)(pod_changed)
    kopf.on.update("", "v1", "pods", id="identity-pod-relabelled", field="metadata.labels", when=_pod_opted_in,
                   registry=registry, backoff=5)(pod_changed)
    managed = {L.SA_MANAGED_LABEL: "true"}
    kopf.on.resume("", "v1", "serviceaccounts", id="identity-sa-resume", labels=managed,
                   registry=registry, backoff=5)(service_account_resumed)
    kopf.on.delete("", "v1", "serviceaccounts", id="identity-sa-delete", labels=managed,
                   registry=registry, backoff=5)(service_account_deleted)
    kopf.on.mutate("", "v1", "pods", id=MUTATE_PATH.strip("/"), operations=["CREATE"], when=_pod_opted_in,
                   ignore_failures=True, side_effects=True, registry=registry)(mutate_pod)
