"""Reconcile one (namespace, ServiceAccount): identity + credential in Azure, annotations in Kubernetes.

The kopf handlers and the admission webhook both call into here; ``IdentityContext`` (kept in
kopf's ``memo.identity``) holds the collaborators.
"""
from __future__ import annotations

import asyncio
import datetime
import logging
from dataclasses import dataclass, field
from typing import Any

import kopf
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter, Gauge

from clearance.operator.azure.arm import ArmError
from clearance.operator.azure.identities import Identities, Identity
from clearance.operator.identity import labels as L
from clearance.operator.settings import Settings

log = logging.getLogger("clearance.operator.identity")

RECONCILES = Counter("clearance_operator_reconciles_total", "Reconciles by kind and result", ["kind", "result"])
QUEUE_DEPTH = Gauge("clearance_operator_queue_depth", "Identity reconciles in flight or waiting")
BACKGROUND_RETRY = 5.0
BACKGROUND_ATTEMPTS = 20
MERGE_PATCH = "application/merge-patch+json"


@dataclass
class IdentityContext:
    """What the identity handlers need: settings, the Azure identity layer, a Kubernetes client."""

    settings: Settings
    identities: Identities
    api_client: Any  # kubernetes.client.ApiClient
    background: set[asyncio.Task] = field(default_factory=set)
    pending: dict[tuple[str, str], asyncio.Task] = field(default_factory=dict)

    @property
    def core(self) -> k8s.CoreV1Api:
        return k8s.CoreV1Api(self.api_client)


async def read_service_account(ctx: IdentityContext, namespace: str, name: str) -> dict[str, Any] | None:
    try:
        sa = await asyncio.to_thread(ctx.core.read_namespaced_service_account, name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return ctx.api_client.sanitize_for_serialization(sa)


async def annotate_service_account(ctx: IdentityContext, namespace: str, name: str, identity: Identity) -> None:
    """Client/tenant annotations, the managed label and the finalizer (merge patch, read first)."""
    sa = await read_service_account(ctx, namespace, name)
    if sa is None:
        raise kopf.TemporaryError(f"ServiceAccount {namespace}/{name} does not exist yet", delay=5)
    meta = sa.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    finalizers = list(meta.get("finalizers") or [])
    want = {L.SA_CLIENT_ID: identity.client_id, L.SA_TENANT_ID: identity.tenant_id, L.SA_STATUS: "Ready"}
    if (all(annotations.get(k) == v for k, v in want.items()) and L.FINALIZER in finalizers
            and (meta.get("labels") or {}).get(L.SA_MANAGED_LABEL) == "true"):
        return
    if L.FINALIZER not in finalizers:
        finalizers.append(L.FINALIZER)
    body = {"metadata": {"annotations": want, "labels": {L.SA_MANAGED_LABEL: "true"}, "finalizers": finalizers}}
    await asyncio.to_thread(ctx.core.patch_namespaced_service_account, name, namespace, body,
                            _content_type=MERGE_PATCH)


async def post_event(ctx: IdentityContext, obj: dict[str, Any], type_: str, reason: str, message: str) -> None:
    """A core/v1 Event about ``obj`` (best effort: events must never break a reconcile).

    Posted with the Kubernetes client rather than ``kopf.event`` because webhook handlers and the
    background tasks they start run outside kopf's event-posting context.
    """
    meta = obj.get("metadata") or {}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    namespace = meta.get("namespace") or "default"
    event = {"apiVersion": "v1", "kind": "Event",
             "metadata": {"generateName": f"{meta.get('name', 'object')}.", "namespace": namespace},
             "involvedObject": {"apiVersion": obj.get("apiVersion") or "v1", "kind": obj.get("kind") or "ServiceAccount",
                                "name": meta.get("name"), "namespace": namespace, "uid": meta.get("uid")},
             "type": type_, "reason": reason, "message": message[:1024], "count": 1,
             "firstTimestamp": now, "lastTimestamp": now, "source": {"component": "clearance-operator"},
             "reportingComponent": "clearance-operator"}
    try:
        await asyncio.to_thread(ctx.core.create_namespaced_event, namespace, event)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not post event", extra={"fields": {"reason": reason, "error": type(exc).__name__}})


async def mark_failed(ctx: IdentityContext, namespace: str, name: str, error: ArmError) -> None:
    """Warning event and a visible status annotation on the ServiceAccount (best effort)."""
    sa = await read_service_account(ctx, namespace, name)
    if sa is None:
        return
    message = f"Azure identity for {namespace}/{name} failed: {error}"
    sa.setdefault("kind", "ServiceAccount")
    await post_event(ctx, sa, "Warning", "AzureIdentityFailed", message)
    body = {"metadata": {"annotations": {L.SA_STATUS: f"Error: {error.code}: {error.message}"[:1000]}}}
    try:
        await asyncio.to_thread(ctx.core.patch_namespaced_service_account, name, namespace, body,
                                _content_type=MERGE_PATCH)
    except ApiException as exc:
        log.warning("could not record status on ServiceAccount", extra={"fields": {
            "namespace": namespace, "service_account": name, "status": exc.status}})


async def reconcile_service_account(ctx: IdentityContext, namespace: str, name: str) -> Identity:
    """Ensure the identity, credential and ServiceAccount annotations.

    Raises ``kopf.TemporaryError`` for what may pass (Azure unreachable, throttled, 5xx, 409,
    ServiceAccount missing) and ``kopf.PermanentError`` after recording a permanent ARM error.
    """
    QUEUE_DEPTH.inc()
    try:
        try:
            identity = await ctx.identities.ensure(namespace, name)
        except Exception as exc:  # noqa: BLE001 - every Azure failure becomes an event, never a crash
            error = ArmError.from_exception(exc)
            RECONCILES.labels("serviceaccount", "retry" if error.transient else "error").inc()
            if error.transient:
                raise kopf.TemporaryError(f"Azure not ready: {error}", delay=BACKGROUND_RETRY) from exc
            await mark_failed(ctx, namespace, name, error)
            raise kopf.PermanentError(str(error)) from exc
        await annotate_service_account(ctx, namespace, name, identity)
        RECONCILES.labels("serviceaccount", "ok").inc()
        return identity
    finally:
        QUEUE_DEPTH.dec()


def finish_in_background(ctx: IdentityContext, namespace: str, name: str) -> asyncio.Task:
    """Keep reconciling (namespace, name) after the webhook gave up waiting; one task per key."""
    key = (namespace, name)
    task = ctx.pending.get(key)
    if task is not None and not task.done():
        return task

    async def run() -> None:
        for _ in range(BACKGROUND_ATTEMPTS):
            try:
                await reconcile_service_account(ctx, namespace, name)
                return
            except kopf.TemporaryError as exc:
                await asyncio.sleep(exc.delay or BACKGROUND_RETRY)
            except kopf.PermanentError:
                return

    task = asyncio.create_task(run(), name=f"identity:{namespace}/{name}")
    ctx.pending[key] = task
    ctx.background.add(task)
    task.add_done_callback(ctx.background.discard)
    task.add_done_callback(lambda t: ctx.pending.pop(key, None) if ctx.pending.get(key) is t else None)
    return task


async def cleanup_service_account(ctx: IdentityContext, namespace: str, name: str) -> None:
    """On ServiceAccount deletion: credential, then identity, only if Clearance created them."""
    try:
        deleted = await ctx.identities.delete(namespace, name)
    except Exception as exc:  # noqa: BLE001
        error = ArmError.from_exception(exc)
        RECONCILES.labels("serviceaccount-delete", "retry" if error.transient else "error").inc()
        if error.transient:
            raise kopf.TemporaryError(f"Azure not ready: {error}", delay=BACKGROUND_RETRY) from exc
        raise kopf.PermanentError(str(error)) from exc
    RECONCILES.labels("serviceaccount-delete", "ok").inc()
    log.info("service account cleaned up", extra={"fields": {
        "namespace": namespace, "service_account": name, "identity_deleted": deleted}})
