"""Start-up: read the Azure defaults, waiting out outages instead of crashing.

``await resolve_at_startup(settings, arm, report=..., stopped=...)`` retries transient failures
(ARM or Entra unreachable, throttled, 5xx) with capped exponential backoff, logging a warning and
calling ``report(reason)`` (the readiness probe shows it) per failed attempt. A permanent error
(not found, no permission, OIDC issuer off) raises ``StartupError`` whose message names the flag
and value to fix. Returns None when ``stopped()`` turned true while waiting.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from clearance.operator.azure.arm import ArmClients, DefaultsError, resolve_defaults
from clearance.operator.backoff import Backoff
from clearance.operator.settings import Settings

__all__ = ["Backoff", "StartupError", "is_permanent", "permanent_message", "resolve_at_startup"]

log = logging.getLogger("clearance.operator.startup")

_TICK = 0.25  # seconds between looks at ``stopped()`` while waiting


class StartupError(Exception):
    """A configuration error the operator cannot wait out; the message names the flag."""


def is_permanent(error: DefaultsError) -> bool:
    """Not worth waiting for: the configuration (or the operator's permissions) must change."""
    if error.status == 401 and error.code == "ExpiredAuthenticationToken":
        return False
    return not error.transient


def permanent_message(error: DefaultsError, settings: Settings) -> str:
    """What to fix, naming the flag and its value."""
    sub, rg = settings.subscription_id, settings.resource_group
    if error.code == "SubscriptionNotFound":
        return f"--subscription-id {sub!r} was not found (or is not visible to the operator's identity): {error}"
    if error.code == "ResourceGroupNotFound":
        return f"--resource-group {rg!r} was not found in subscription {sub!r}: {error}"
    if error.status in (401, 403):
        return (f"no permission: {error}. Grant the operator's identity read access to it, "
                f"or set {error.flag} explicitly")
    if error.status == 404 and error.flag == "--oidc-issuer":
        return (f"--cluster-name {settings.cluster_name!r}: no AKS cluster of that name in resource group {rg!r} "
                f"({error.code}); fix --cluster-name or set --oidc-issuer")
    return f"{error} (set {error.flag} to skip this lookup)"


async def resolve_at_startup(settings: Settings, arm: ArmClients, *, backoff: Backoff = Backoff(),
                             report: Callable[[str], None] = lambda _: None,
                             stopped: Callable[[], bool] = lambda: False) -> Settings | None:
    """``resolve_defaults`` until it succeeds; see the module docstring."""
    attempt = 0
    while True:
        client = arm.quick_resources()
        try:
            return await resolve_defaults(settings, arm, client=client)
        except DefaultsError as error:
            if is_permanent(error):
                raise StartupError(permanent_message(error, settings)) from None
            delay = backoff.delay(attempt)
            attempt += 1
            reason = f"waiting for Azure to read the default of {error.flag}: {error}"
            log.warning("cannot read operator defaults from Azure; retrying", extra={"fields": {
                "flag": error.flag, "code": error.code, "status": error.status, "attempt": attempt,
                "retry_in_s": round(delay, 2), "error": error.message}})
            report(reason)
        finally:
            await client.close()
        waited = 0.0
        while waited < delay:
            if stopped():
                return None
            step = min(_TICK, delay - waited)
            await asyncio.sleep(step)
            waited += step
        if stopped():
            return None
