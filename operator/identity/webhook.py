"""The mutating admission webhook for labelled pods (kopf's ``@kopf.on.mutate``).

Ensures the ServiceAccount's identity within ``settings.webhook_deadline`` and injects the
workload-identity settings into the pod. When Azure is not reached in time the pod is admitted
anyway (with the token volume and every variable but AZURE_CLIENT_ID), a Warning event goes to
the ServiceAccount, and the identity is finished in the background.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import kopf

from clearance.operator.azure.identities import Identity
from clearance.operator.identity import labels as L
from clearance.operator.identity import podspec, reconcile

log = logging.getLogger("clearance.operator.webhook")


async def mutate_pod(body: Any, patch: kopf.Patch, memo: Any, warnings: list[str], dryrun: bool,
                     **_: Any) -> None:
    ctx: reconcile.IdentityContext = memo.identity
    namespace = body.get("metadata", {}).get("namespace") or "default"
    sa = L.service_account_of(body)
    identity: Identity | None = ctx.identities.cached(namespace, sa)
    if identity is None and not dryrun:
        identity = await _ensure_within_deadline(ctx, namespace, sa, warnings)
    client_id = identity.client_id if identity else None
    tenant_id = (identity.tenant_id if identity else None) or ctx.settings.tenant_id
    authority = ctx.settings.authority_host

    def transform(pod: dict[str, Any]) -> None:
        podspec.inject(pod, client_id=client_id, tenant_id=tenant_id, authority_host=authority)
        if client_id:
            pod.setdefault("metadata", {}).setdefault("annotations", {})[L.SA_CLIENT_ID] = client_id

    patch.fns.append(transform)


async def _ensure_within_deadline(ctx: reconcile.IdentityContext, namespace: str, sa: str,
                                  warnings: list[str]) -> Identity | None:
    task = reconcile.finish_in_background(ctx, namespace, sa)
    try:
        # shield: on timeout the reconcile keeps running in the background.
        return await asyncio.wait_for(asyncio.shield(_first_attempt(ctx, namespace, sa, task)),
                                      ctx.settings.webhook_deadline)
    except asyncio.TimeoutError:
        reason = f"Azure did not answer within {ctx.settings.webhook_deadline:g}s"
    except Exception as exc:  # noqa: BLE001 - admission must never fail on Azure
        reason = str(exc) or type(exc).__name__
    message = (f"pod admitted without AZURE_CLIENT_ID: identity for ServiceAccount {namespace}/{sa} "
               f"not ready ({reason}); it is being completed in the background, restart the pod afterwards")
    warnings.append(message)
    sa_body = await _quiet(reconcile.read_service_account(ctx, namespace, sa))
    if sa_body:
        sa_body.setdefault("kind", "ServiceAccount")
        await reconcile.post_event(ctx, sa_body, "Warning", "AzureIdentityPending", message)
    log.warning("admitted pod before its identity was ready", extra={"fields": {
        "namespace": namespace, "service_account": sa, "reason": reason}})
    return None


async def _first_attempt(ctx: reconcile.IdentityContext, namespace: str, sa: str, task: asyncio.Task) -> Identity:
    """Wait for the background reconcile's first success (it retries transient failures)."""
    await asyncio.shield(task)
    identity = ctx.identities.cached(namespace, sa)
    if identity is None:
        raise RuntimeError("the identity could not be created (see the ServiceAccount's events)")
    return identity


async def _quiet(coro: Any) -> Any:
    try:
        return await coro
    except Exception:  # noqa: BLE001
        return None


class NamespacedWebhookServer(kopf.WebhookServer):
    """kopf's HTTPS webhook server, filling ``object.metadata.namespace`` from the request.

    The API server may send a new pod without its namespace in the object; the review's
    ``request.namespace`` always has it.
    """

    async def __call__(self, fn: Any) -> AsyncIterator[Any]:  # type: ignore[override]
        async def filled(request: Any, **kwargs: Any) -> Any:
            payload = request.get("request") if isinstance(request, dict) else None
            if isinstance(payload, dict) and payload.get("namespace"):
                for key in ("object", "oldObject"):
                    obj = payload.get(key)
                    if isinstance(obj, dict):
                        obj.setdefault("metadata", {}).setdefault("namespace", payload["namespace"])
            return await fn(request, **kwargs)

        async for config in super().__call__(filled):
            yield config
