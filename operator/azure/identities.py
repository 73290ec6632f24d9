"""User-assigned managed identities, one per (namespace, ServiceAccount), in the configured RG.

``Identities(arm)`` is the narrow interface the reconcilers use:

- ``await find(namespace, service_account) -> Identity | None``: read-only lookup (roles use it);
- ``await ensure(namespace, service_account) -> Identity``: identity + federated credential;
- ``await delete(namespace, service_account) -> bool``: credential, then identity, only when
  Clearance created it for this cluster (tags).

Everything is keyed by (namespace, ServiceAccount) and named by ``clearance.operator.naming``.
An identity at Clearance's name but without Clearance's tags is never modified or deleted:
``ensure`` raises ``ForeignIdentityError`` instead.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import HttpResponseError
from azure.mgmt.msi.models import Identity as IdentityModel

from clearance.operator import naming
from clearance.operator.azure.arm import ArmClients, ArmError, is_not_found
from clearance.operator.azure.federated import FederatedCredentials
from clearance.operator.settings import Settings

log = logging.getLogger("clearance.operator.identities")

# Azure tag names may not hold '/', so these are flat.
TAG_MANAGED_BY = "clearance-managed-by"
TAG_CLUSTER = "clearance-cluster"
TAG_NAMESPACE = "clearance-namespace"
TAG_SERVICE_ACCOUNT = "clearance-service-account"
MANAGED_BY = "clearance"


@dataclass(frozen=True)
class Identity:
    """What reconcilers need of an identity."""

    name: str
    client_id: str
    principal_id: str
    tenant_id: str
    resource_id: str
    managed: bool  # created by Clearance for this cluster


class ForeignIdentityError(ArmError):
    """An identity exists at Clearance's name but Clearance did not create it (permanent)."""

    @property
    def transient(self) -> bool:
        return False


class Identities:
    """Find, ensure and delete the workload identities Clearance manages."""

    def __init__(self, arm: ArmClients, settings: Settings | None = None) -> None:
        self.arm = arm
        self.settings = settings or arm.settings
        self.credentials = FederatedCredentials(arm, self.settings)
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready: dict[str, Identity] = {}  # identity + credential known good in this process

    def name(self, namespace: str, service_account: str) -> str:
        return naming.identity_name(namespace, service_account, self.settings.cluster_name)

    def tags(self, namespace: str, service_account: str) -> dict[str, str]:
        return {TAG_MANAGED_BY: MANAGED_BY, TAG_CLUSTER: self.settings.cluster_name,
                TAG_NAMESPACE: namespace, TAG_SERVICE_ACCOUNT: service_account}

    def is_managed(self, model: Any) -> bool:
        tags = getattr(model, "tags", None) or {}
        return tags.get(TAG_MANAGED_BY) == MANAGED_BY and tags.get(TAG_CLUSTER) == self.settings.cluster_name

    def cached(self, namespace: str, service_account: str) -> Identity | None:
        """The identity this process already ensured, without asking Azure."""
        return self._ready.get(self.name(namespace, service_account))

    async def find(self, namespace: str, service_account: str) -> Identity | None:
        """The identity for (namespace, ServiceAccount), or None when it does not exist."""
        model = await self._get(self.name(namespace, service_account))
        return None if model is None else self._to_identity(model)

    async def ensure(self, namespace: str, service_account: str, *, refresh: bool = False) -> Identity:
        """Make identity and federated credential exist (idempotent; one PUT each at most)."""
        name = self.name(namespace, service_account)
        if not refresh and name in self._ready:
            return self._ready[name]
        async with self._locks.setdefault(name, asyncio.Lock()):
            if not refresh and name in self._ready:
                return self._ready[name]
            model = await self._get(name)
            if model is None:
                model = await self._create(name, namespace, service_account)
            elif not self.is_managed(model):
                raise ForeignIdentityError(409, "IdentityNotManagedByClearance",
                                           f"identity {name} in {self.settings.resource_group} exists but was not "
                                           f"created by Clearance for cluster {self.settings.cluster_name}; "
                                           "Clearance will not use or change it")
            await self.credentials.ensure(name, namespace, service_account)
            identity = self._to_identity(model)
            self._ready[name] = identity
            return identity

    async def delete(self, namespace: str, service_account: str) -> bool:
        """Delete the credential then the identity, if Clearance made them; True when deleted."""
        name = self.name(namespace, service_account)
        async with self._locks.setdefault(name, asyncio.Lock()):
            self._ready.pop(name, None)
            model = await self._get(name)
            if model is None:
                return False
            if not self.is_managed(model):
                log.warning("identity not created by Clearance; leaving it", extra={"fields": {"identity": name}})
                return False
            await self.credentials.delete(name, namespace, service_account)
            try:
                await self.arm.msi().user_assigned_identities.delete(self.settings.resource_group, name)
            except HttpResponseError as exc:
                if not is_not_found(exc):
                    raise
                return False
            log.info("identity deleted", extra={"fields": {"identity": name, "namespace": namespace,
                                                           "service_account": service_account}})
            return True

    async def _get(self, name: str) -> Any:
        try:
            return await self.arm.msi().user_assigned_identities.get(self.settings.resource_group, name)
        except HttpResponseError as exc:
            if is_not_found(exc):
                return None
            raise

    async def _create(self, name: str, namespace: str, service_account: str) -> Any:
        if not self.settings.location:
            raise ValueError("the identity location is unknown: pass --location or let the operator read the RG")
        model = IdentityModel(location=self.settings.location, tags=self.tags(namespace, service_account))
        created = await self.arm.msi().user_assigned_identities.create_or_update(self.settings.resource_group, name, model)
        log.info("identity created", extra={"fields": {"identity": name, "namespace": namespace,
                                                       "service_account": service_account}})
        return created

    def _to_identity(self, model: Any) -> Identity:
        return Identity(name=model.name, client_id=model.client_id or "", principal_id=model.principal_id or "",
                        tenant_id=model.tenant_id or self.settings.tenant_id or "", resource_id=model.id or "",
                        managed=self.is_managed(model))
