"""Azure scopes: expanding partial scopes as Otterize does, and checking that a scope exists.

Lookups are cached: the storage account -> full ID map (across every visible subscription), the
visible subscriptions, provider API versions and scopes already seen to exist.
"""
from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from clearance.operator.azure.arm import ArmClients, ArmError, is_not_found
from clearance.operator.settings import Settings

SUBSCRIPTIONS_API = "2022-12-01"
RESOURCES_API = "2021-04-01"
PROVIDERS_API = "2021-04-01"
CACHE_TTL = 600.0  # seconds a positive lookup is trusted

# API versions for the resource types intents usually name (others: asked from the provider).
KNOWN_API_VERSIONS = {
    "microsoft.storage/storageaccounts": "2023-01-01",
    "microsoft.storage/storageaccounts/blobservices": "2023-01-01",
    "microsoft.storage/storageaccounts/blobservices/containers": "2023-01-01",
    "microsoft.storage/storageaccounts/queueservices": "2023-01-01",
    "microsoft.storage/storageaccounts/queueservices/queues": "2023-01-01",
    "microsoft.storage/storageaccounts/tableservices": "2023-01-01",
    "microsoft.storage/storageaccounts/tableservices/tables": "2023-01-01",
    "microsoft.storage/storageaccounts/fileservices": "2023-01-01",
    "microsoft.storage/storageaccounts/fileservices/shares": "2023-01-01",
    "microsoft.keyvault/vaults": "2023-07-01",
    "microsoft.keyvault/vaults/secrets": "2023-07-01",
    "microsoft.keyvault/vaults/keys": "2023-07-01",
}

_STORAGE = re.compile(r"/providers/Microsoft\.Storage/storageAccounts/([^/]+)(/.*)?$", re.IGNORECASE)
_SUB = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
_RG = re.compile(r"^/subscriptions/[^/]+/resourceGroups/[^/]+$", re.IGNORECASE)


class ScopeError(ArmError):
    """A scope that cannot be resolved or does not exist."""


def subscription_of(scope: str) -> str:
    """The subscription ID in a full scope."""
    match = _SUB.match(scope)
    if not match:
        raise ScopeError(0, "InvalidScope", f"scope {scope!r} does not start with /subscriptions/<id>")
    return match.group(1)


def resource_type(scope: str) -> tuple[str, str] | None:
    """(provider namespace, resource type path) of a full resource scope, None for sub/RG scopes."""
    _, sep, rest = scope.rpartition("/providers/")
    if not sep:
        return None
    parts = rest.split("/")
    namespace, pairs = parts[0], parts[1:]
    types = pairs[0::2]
    if not types or len(pairs) % 2:
        return None
    return namespace, "/".join(types)


def expand_offline(scope: str, settings: Settings) -> str:
    """The full scope for a full or partial one without asking Azure: ``/subscriptions/...`` as is,
    ``/resourceGroups/...`` in the configured subscription, anything else (storage accounts too)
    in the configured subscription and resource group."""
    scope = scope.rstrip("/")
    if not scope.startswith("/"):
        raise ScopeError(0, "InvalidScope", f"scope {scope!r} must start with '/'")
    if scope.lower().startswith("/subscriptions/"):
        return scope
    if scope.lower().startswith("/resourcegroups/"):
        return f"/subscriptions/{settings.subscription_id}{scope}"
    return settings.resource_group_id + scope


class _Ttl:
    """A small time-to-live cache."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._data: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._data.get(key)
        if hit and time.monotonic() - hit[0] < self.ttl:
            return hit[1]
        return None

    def put(self, key: Any, value: Any) -> None:
        self._data[key] = (time.monotonic(), value)


class Resources:
    """Scope expansion and existence checks for one operator process."""

    def __init__(self, arm: ArmClients, settings: Settings | None = None, ttl: float = CACHE_TTL) -> None:
        self.arm = arm
        self.settings = settings or arm.settings
        self._accounts = _Ttl(ttl)  # account name (lower) -> account ID
        self._subscriptions = _Ttl(ttl)
        self._exists = _Ttl(ttl)
        self._api_versions = _Ttl(ttl * 6)
        self._locks: dict[str, asyncio.Lock] = {}

    def _lock(self, key: str) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    async def expand(self, scope: str) -> str:
        """The full scope for a full or partial one (Otterize's rules, in this order):
        ``/subscriptions/...`` as is; a storage account path found across visible subscriptions;
        ``/resourceGroups/...`` gets the configured subscription; anything else gets the
        configured subscription and resource group."""
        scope = scope.rstrip("/")
        storage = None if scope.lower().startswith("/subscriptions/") else _STORAGE.search(scope)
        if storage:
            account_id = await self.storage_account_id(storage.group(1))
            return account_id + (storage.group(2) or "")
        return expand_offline(scope, self.settings)

    async def subscriptions(self) -> list[str]:
        """IDs of the subscriptions the operator can see (cached)."""
        cached = self._subscriptions.get("all")
        if cached is not None:
            return cached
        async with self._lock("subscriptions"):
            cached = self._subscriptions.get("all")
            if cached is not None:
                return cached
            ids = [s["subscriptionId"] for s in await self._list("/subscriptions", SUBSCRIPTIONS_API)]
            if self.settings.subscription_id not in ids:
                ids.insert(0, self.settings.subscription_id)
            self._subscriptions.put("all", ids)
            return ids

    async def storage_account_id(self, account: str) -> str:
        """The full ID of storage account ``account`` in any visible subscription (cached)."""
        key = account.lower()
        cached = self._accounts.get(key)
        if cached:
            return cached
        async with self._lock("accounts"):
            cached = self._accounts.get(key)
            if cached:
                return cached
            flt = "resourceType eq 'Microsoft.Storage/storageAccounts'"
            for sub in await self.subscriptions():
                for res in await self._list(f"/subscriptions/{sub}/resources", RESOURCES_API, filter=flt):
                    self._accounts.put(str(res["name"]).lower(), res["id"])
            found = self._accounts.get(key)
        if not found:
            raise ScopeError(404, "StorageAccountNotFound",
                             f"storage account {account!r} was not found in any subscription the operator can see")
        return found

    async def exists(self, scope: str) -> bool:
        """Whether the full ``scope`` exists (positive answers are cached)."""
        key = scope.lower()
        if self._exists.get(key):
            return True
        try:
            await self.arm.get_json(scope, await self.api_version(scope))
        except Exception as exc:
            if is_not_found(exc):
                return False
            raise ArmError.from_exception(exc, doing=f"checking scope {scope}") from exc
        self._exists.put(key, True)
        return True

    async def api_version(self, scope: str) -> str:
        """An API version for GETting ``scope``: known ones, else the provider's newest stable."""
        if _RG.match(scope):
            return "2022-09-01"
        kind = resource_type(scope)
        if kind is None:
            return SUBSCRIPTIONS_API
        namespace, type_path = kind
        full = f"{namespace}/{type_path}".lower()
        if full in KNOWN_API_VERSIONS:
            return KNOWN_API_VERSIONS[full]
        cached = self._api_versions.get(full)
        if cached:
            return cached
        provider = await self.arm.get_json(f"/subscriptions/{subscription_of(scope)}/providers/{namespace}",
                                           PROVIDERS_API)
        for entry in provider.get("resourceTypes", []):
            versions = entry.get("apiVersions") or []
            self._api_versions.put(f"{namespace}/{entry.get('resourceType', '')}".lower(),
                                   _newest(versions))
        found = self._api_versions.get(full)
        if not found:
            raise ScopeError(400, "NoRegisteredProviderFound",
                             f"no API version found for resource type {namespace}/{type_path}")
        return found

    async def _list(self, path: str, api_version: str, *, filter: str | None = None) -> list[dict[str, Any]]:
        """Every item of a paged ARM list."""
        from urllib.parse import quote

        url = f"{path}?api-version={api_version}"
        if filter:
            url += "&$filter=" + quote(filter)
        items: list[dict[str, Any]] = []
        while url:
            page = await self._get_url(url)
            items.extend(page.get("value", []))
            url = page.get("nextLink") or ""
        return items

    async def _get_url(self, url: str) -> dict[str, Any]:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        client = self.arm.resources()
        response = await client.send_request(HttpRequest("GET", url))
        await response.read()
        if response.status_code >= 400:
            raise ArmError.from_exception(HttpResponseError(response=response), doing=f"listing {url.split('?')[0]}")
        return response.json()


def _newest(versions: list[str]) -> str:
    stable = [v for v in versions if "preview" not in v.lower()]
    return max(stable or versions) if (stable or versions) else ""
