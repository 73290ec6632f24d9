"""kopf handlers for ClientIntents; ``register(registry)`` adds them to a kopf registry.

The collaborators come from
kopf's ``memo`` (``settings``, ``arm``, ``identities``, ``api_client``); the reconciler is built
once per operator and kept at ``memo.intents``.
"""
from __future__ import annotations

import logging
import os
from typing import Any

import kopf

from clearance.operator.api import (
    GROUP,
    OTTERIZE_GROUP,
    OTTERIZE_VERSIONS,
    PLURAL,
    VERSION,
    InvalidClientIntents,
    parse_client_intents,
)
from clearance.operator.api.validation import check_document
from clearance.operator.backoff import Backoff
from clearance.operator.intents.conditions import FAILED, READY, conditions, summary
from clearance.operator.intents.desired import wildcard_refusal
from clearance.operator.intents.reconciler import IntentsReconciler

log = logging.getLogger("clearance.operator.intents")

RESYNC_SECONDS = float(os.environ.get("CLEARANCE_INTENTS_RESYNC_SECONDS", "300"))
RETRY = Backoff(base=2.0, cap=60.0)
MIN_DELAY = 0.5  # seconds: the soonest a re-check is scheduled
VALIDATE_PATH = "/validate-clientintents"  # charts/clearance/templates/operator.yaml


def reconciler(memo: Any) -> IntentsReconciler:
    """The process's reconciler, built from the memo on first use."""
    existing = getattr(memo, "intents", None)
    if existing is not None:
        return existing
    missing = [k for k in ("settings", "arm", "identities", "api_client") if getattr(memo, k, None) is None]
    if missing:
        raise kopf.PermanentError(f"operator memo lacks {', '.join(missing)} (run via clearance operator)")
    from kubernetes import client as k8s

    built = IntentsReconciler(memo.arm, memo.settings, memo.identities, k8s.CoreV1Api(memo.api_client))
    memo.intents = built
    return built


def _document(body: Any) -> dict[str, Any]:
    return {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
            "metadata": {"name": body["metadata"].get("name"), "namespace": body["metadata"].get("namespace")},
            "spec": dict(body.get("spec") or {})}


async def reconcile(body: Any, status: Any, patch: kopf.Patch, memo: Any, retry: int = 0, **_: Any) -> None:
    """Create/update/resume/resync: bring Azure in line and write per-target conditions."""
    generation = body["metadata"].get("generation")
    previous = list((status or {}).get("conditions") or [])
    try:
        intents = parse_client_intents(_document(body))
    except InvalidClientIntents as exc:
        patch.status["conditions"] = [{"type": FAILED, "status": "True", "target": -1, "reason": "InvalidSpec",
                                       "message": exc.reason[:1000], "observedGeneration": generation}]
        patch.status["observedGeneration"] = generation
        patch.status["upToDate"] = False
        raise kopf.PermanentError(f"invalid ClientIntents: {exc.reason}") from None
    recorded = dict((status or {}).get("azure") or {})
    outcome = await reconciler(memo).reconcile(intents, recorded)
    patch.status["conditions"] = conditions(outcome.states, generation, previous)
    patch.status["observedGeneration"] = generation
    patch.status["ready"] = summary(outcome.states)
    patch.status["upToDate"] = all(s.type == READY for s in outcome.states if s.reason != "UnsupportedTarget")
    if outcome.record:
        patch.status["azure"] = outcome.record
    log.info("reconciled ClientIntents", extra={"fields": {
        "namespace": intents.namespace, "name": intents.name, "ready": summary(outcome.states),
        "arm_writes": outcome.writes}})
    if outcome.retry:
        delay = RETRY.delay(retry)
        if outcome.recheck_after is not None:
            delay = min(delay, outcome.recheck_after)
        raise kopf.TemporaryError("some targets are propagating or failed transiently", delay=max(delay, MIN_DELAY))
    if outcome.recheck_after is not None:
        # re-check when the propagation window ends: a read-only reconcile, then Ready
        raise kopf.TemporaryError("waiting for Azure to propagate the grants",
                                  delay=max(outcome.recheck_after, MIN_DELAY))


async def resync(body: Any, status: Any, patch: kopf.Patch, memo: Any, **kwargs: Any) -> None:
    """Periodic resync; errors are retried at the next tick."""
    try:
        await reconcile(body=body, status=status, patch=patch, memo=memo, **kwargs)
    except (kopf.TemporaryError, kopf.PermanentError) as exc:
        log.info("resync incomplete", extra={"fields": {"name": body["metadata"].get("name"), "reason": str(exc)}})


async def delete(body: Any, status: Any, memo: Any, **_: Any) -> None:
    """Finalizer: remove exactly what Clearance created for this ClientIntents."""
    try:
        intents = parse_client_intents(_document(body))
    except InvalidClientIntents:
        recorded = dict((status or {}).get("azure") or {})
        if not recorded:
            return
        raise kopf.PermanentError("invalid ClientIntents with recorded grants; fix the spec to let cleanup run")
    writes = await reconciler(memo).cleanup(intents, dict((status or {}).get("azure") or {}))
    log.info("removed ClientIntents grants", extra={"fields": {
        "namespace": intents.namespace, "name": intents.name, "arm_writes": writes}})


def validate(body: Any, memo: Any, **_: Any) -> None:
    """Admission: the checks the OpenAPI schema cannot express, plus the wildcard guardrail."""
    intents, errors = check_document(_document(body))
    settings = getattr(memo, "settings", None)
    if intents is not None and settings is not None:
        for index, target in intents.azure_targets:
            why = wildcard_refusal(target, settings)
            if why:
                errors.append(f"spec.targets[{index}].azure.{why}")
    if errors:
        raise kopf.AdmissionError("; ".join(errors[:10]), code=422)


def register(registry: kopf.OperatorRegistry) -> None:
    """Register every ClientIntents handler on ``registry`` (once per registry)."""
    if getattr(registry, "_clearance_intents_registered", False):
        return
    registry._clearance_intents_registered = True  # type: ignore[attr-defined]
    resources = [(GROUP, VERSION)] + [(OTTERIZE_GROUP, v) for v in OTTERIZE_VERSIONS[:1]]
    for group, version in resources:
        suffix = "" if group == GROUP else "-otterize"
        when = None if group == GROUP else (lambda memo, **_: bool(getattr(getattr(memo, "settings", None),
                                                                           "otterize_compat", False)))
        for decorator in (kopf.on.create, kopf.on.resume):
            decorator(group, version, PLURAL, id=f"intents-{decorator.__name__}{suffix}", registry=registry,
                      when=when)(reconcile)
        kopf.on.update(group, version, PLURAL, id=f"intents-update{suffix}", field="spec", registry=registry,
                       when=when)(reconcile)
        kopf.timer(group, version, PLURAL, id=f"intents-resync{suffix}", interval=RESYNC_SECONDS,
                   initial_delay=RESYNC_SECONDS, idle=None, registry=registry, when=when)(resync)
        kopf.on.delete(group, version, PLURAL, id=f"intents-delete{suffix}", registry=registry, when=when)(delete)
        # one webhook path for both groups (the chart's ValidatingWebhookConfiguration): kopf routes by id
        kopf.on.validate(group, version, PLURAL, id=VALIDATE_PATH.strip("/"), registry=registry)(validate)
