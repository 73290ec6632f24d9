"""Federated identity credentials: the trust between a ServiceAccount's token and an identity.

Azure rejects concurrent credential writes under one identity (409), so every write for one
identity goes through that identity's lock, and a 409 from a writer outside this process is
retried with backoff.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.mgmt.msi.models import FederatedIdentityCredential

from clearance.operator import naming
from clearance.operator.azure.arm import ArmClients, ARM_RETRIES, is_not_found
from clearance.operator.backoff import Backoff
from clearance.operator.settings import Settings

log = logging.getLogger("clearance.operator.federated")

AUDIENCE = "api://AzureADTokenExchange"
CONFLICT_RETRIES = 6
CONFLICT_BACKOFF = Backoff(base=0.5, cap=8.0)


class FederatedCredentials:
    """Ensure/delete the one credential Clearance keeps on each identity it made."""

    def __init__(self, arm: ArmClients, settings: Settings | None = None) -> None:
        self.arm = arm
        self.settings = settings or arm.settings
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, identity_name: str) -> asyncio.Lock:
        """The lock that serialises credential writes under ``identity_name``."""
        return self._locks.setdefault(identity_name, asyncio.Lock())

    def desired(self, namespace: str, service_account: str) -> FederatedIdentityCredential:
        if not self.settings.oidc_issuer:
            raise ValueError("the cluster's OIDC issuer is unknown: pass --oidc-issuer or enable it on AKS")
        return FederatedIdentityCredential(
            issuer=self.settings.oidc_issuer,
            subject=naming.service_account_subject(namespace, service_account),
            audiences=[AUDIENCE],
        )

    async def ensure(self, identity_name: str, namespace: str, service_account: str) -> bool:
        """Make the credential exist as desired; True when it had to be written."""
        msi = self.arm.msi()
        name = naming.credential_name(namespace, service_account, self.settings.cluster_name)
        want = self.desired(namespace, service_account)
        async with self.lock(identity_name):
            try:
                have = await msi.federated_identity_credentials.get(self.settings.resource_group, identity_name, name)
                if _same(have, want):
                    return False
            except HttpResponseError as exc:
                if not is_not_found(exc):
                    raise
            await _with_conflict_retry(lambda: msi.federated_identity_credentials.create_or_update(
                self.settings.resource_group, identity_name, name, want))
            log.info("federated credential written", extra={"fields": {
                "identity": identity_name, "credential": name, "namespace": namespace, "service_account": service_account}})
            return True

    async def delete(self, identity_name: str, namespace: str, service_account: str) -> bool:
        """Delete Clearance's credential; False when it (or its identity) was already gone."""
        msi = self.arm.msi()
        name = naming.credential_name(namespace, service_account, self.settings.cluster_name)
        async with self.lock(identity_name):
            try:
                await _with_conflict_retry(lambda: msi.federated_identity_credentials.delete(
                    self.settings.resource_group, identity_name, name))
            except HttpResponseError as exc:
                if is_not_found(exc) or _parent_missing(exc):
                    return False
                raise
        return True


def _same(have: Any, want: FederatedIdentityCredential) -> bool:
    return (have.issuer == want.issuer and have.subject == want.subject
            and sorted(have.audiences or []) == sorted(want.audiences or []))


def _parent_missing(exc: HttpResponseError) -> bool:
    code = getattr(exc.error, "code", "") or ""
    return "ParentResourceNotFound" in code


async def _with_conflict_retry(call: Any) -> Any:
    """Run ``call()``; on 409 (a concurrent writer under the same identity) wait and retry."""
    for attempt in range(CONFLICT_RETRIES + 1):
        try:
            return await call()
        except HttpResponseError as exc:
            if exc.status_code != 409 or attempt == CONFLICT_RETRIES:
                raise
            ARM_RETRIES.labels("409").inc()
            await asyncio.sleep(CONFLICT_BACKOFF.delay(attempt))
    raise AssertionError("unreachable")
