"""The one place ARM SDK clients are built: credential, endpoint, TLS trust, retries, pacing, metrics.

Usage (the roles engineer and the identity reconciler share one ``ArmClients`` per process)::

    arm = ArmClients(settings)                     # or ArmClients(settings, credential=cred)
    msi = arm.build(azure.mgmt.msi.aio.ManagedServiceIdentityClient)
    auth = arm.build(azure.mgmt.authorization.aio.AuthorizationManagementClient)
    ...
    await arm.close()

Every client built here:
- authenticates with the injected ``credential``, else WorkloadIdentityCredential when
  ``AZURE_FEDERATED_TOKEN_FILE`` is set, else DefaultAzureCredential (sync or aio to match the
  client; a sync credential is adapted for aio clients);
- talks to ``settings.arm_endpoint`` with ``credential_scopes=[<endpoint>/.default]``;
- trusts ``settings.ca_bundle`` if given, else ``REQUESTS_CA_BUNDLE``, else the system store;
- retries 429 after Retry-After, and 408/5xx/connection errors/timeouts with capped
  exponential backoff (``RETRY_*``); retries are counted in Prometheus;
- paces writes (PUT/PATCH/POST/DELETE) through one shared token bucket (``WritePacer``);
- counts every attempt in ``clearance_operator_arm_calls_total{verb,status}``.

Errors: ``ArmError.from_exception(exc)`` gives (status, code, message) for events and status;
``is_not_found(exc)`` and ``is_transient(exc)`` classify them.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from azure.core.credentials import AccessToken, TokenCredential
from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import (
    AsyncHTTPPolicy,
    AsyncRetryPolicy,
    HTTPPolicy,
    RetryPolicy,
    SansIOHTTPPolicy,
)
from prometheus_client import Counter, Gauge

from clearance.operator.settings import Settings

log = logging.getLogger("clearance.operator.arm")

T = TypeVar("T")

WRITE_VERBS = frozenset({"PUT", "PATCH", "POST", "DELETE"})
RETRY_TOTAL = 6
RETRY_BACKOFF = 0.5  # seconds; doubles per attempt
RETRY_BACKOFF_MAX = 20.0
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 30.0

ARM_CALLS = Counter("clearance_operator_arm_calls_total", "ARM requests sent (each attempt)", ["verb", "status"])
ARM_RETRIES = Counter("clearance_operator_arm_retries_total", "ARM requests retried", ["reason"])
ARM_PACED = Counter("clearance_operator_arm_write_pacing_seconds_total", "Seconds ARM writes waited for the pacer")
ARM_PACER_TOKENS = Gauge("clearance_operator_arm_write_tokens", "Tokens left in the ARM write pacer")


# --------------------------------------------------------------------------- pacing


class WritePacer:
    """A token bucket for ARM writes: ``burst`` tokens, refilled at ``rate`` per second.

    Thread-safe; ``reserve()`` takes a token now (possibly going into debt) and returns how long
    the caller must wait before sending, so waiting callers are served in order.
    """

    def __init__(self, burst: int = 200, rate: float = 10.0) -> None:
        if burst < 1 or rate <= 0:
            raise ValueError(f"pacer needs burst >= 1 and rate > 0, got burst={burst} rate={rate}")
        self.burst = burst
        self.rate = rate
        self._tokens = float(burst)
        self._stamp = time.monotonic()
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Take one token; return the seconds to wait before using it (0 when one was free)."""
        with self._lock:
            now = time.monotonic()
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            self._tokens -= 1.0
            ARM_PACER_TOKENS.set(max(self._tokens, 0.0))
            return 0.0 if self._tokens >= 0 else -self._tokens / self.rate

    def acquire(self) -> None:
        delay = self.reserve()
        if delay:
            ARM_PACED.inc(delay)
            time.sleep(delay)

    async def acquire_async(self) -> None:
        delay = self.reserve()
        if delay:
            ARM_PACED.inc(delay)
            await asyncio.sleep(delay)


class _PacerPolicy(HTTPPolicy):
    def __init__(self, pacer: WritePacer) -> None:
        super().__init__()
        self._pacer = pacer

    def send(self, request: PipelineRequest) -> PipelineResponse:
        if request.http_request.method.upper() in WRITE_VERBS:
            self._pacer.acquire()
        return self.next.send(request)


class _AsyncPacerPolicy(AsyncHTTPPolicy):
    def __init__(self, pacer: WritePacer) -> None:
        super().__init__()
        self._pacer = pacer

    async def send(self, request: PipelineRequest) -> PipelineResponse:
        if request.http_request.method.upper() in WRITE_VERBS:
            await self._pacer.acquire_async()
        return await self.next.send(request)


# --------------------------------------------------------------------------- metrics and retries


class _MetricsPolicy(SansIOHTTPPolicy):
    """Counts each attempt by verb and status (``error`` when no response came back)."""

    def on_response(self, request: PipelineRequest, response: PipelineResponse) -> None:
        ARM_CALLS.labels(request.http_request.method.upper(), str(response.http_response.status_code)).inc()

    def on_exception(self, request: PipelineRequest) -> None:
        ARM_CALLS.labels(request.http_request.method.upper(), "error").inc()


def _retry_reason(response: Any, error: Exception | None) -> str:
    if error is not None:
        return "timeout" if isinstance(error, ServiceResponseError) else "connection"
    status = getattr(getattr(response, "http_response", None), "status_code", None)
    return str(status) if status else "unknown"


def _retry_kwargs() -> dict[str, Any]:
    return dict(retry_total=RETRY_TOTAL, retry_connect=RETRY_TOTAL, retry_read=RETRY_TOTAL, retry_status=RETRY_TOTAL,
                retry_backoff_factor=RETRY_BACKOFF, retry_backoff_max=RETRY_BACKOFF_MAX, retry_mode="exponential")


class CountingRetryPolicy(RetryPolicy):
    """azure-core's retry (Retry-After honoured, capped exponential backoff) that counts retries."""

    def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
        more = super().increment(settings, response=response, error=error)
        if more:
            ARM_RETRIES.labels(_retry_reason(response, error)).inc()
        return more


class AsyncCountingRetryPolicy(AsyncRetryPolicy):
    """The aio twin of ``CountingRetryPolicy``."""

    def increment(self, settings: dict[str, Any], response: Any = None, error: Exception | None = None) -> bool:
        more = super().increment(settings, response=response, error=error)
        if more:
            ARM_RETRIES.labels(_retry_reason(response, error)).inc()
        return more


# --------------------------------------------------------------------------- credentials


class AsyncFromSyncCredential:
    """Lets an aio SDK client use a sync ``TokenCredential`` (token calls run in a thread)."""

    def __init__(self, credential: TokenCredential) -> None:
        self._credential = credential

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return await asyncio.to_thread(self._credential.get_token, *scopes, **kwargs)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> "AsyncFromSyncCredential":
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def _is_async_credential(credential: Any) -> bool:
    return asyncio.iscoroutinefunction(getattr(credential, "get_token", None))


def _is_aio_client(client_cls: type) -> bool:
    return ".aio" in client_cls.__module__


# --------------------------------------------------------------------------- the factory


class ArmClients:
    """Builds configured ARM SDK clients and owns the credential, pacer and their lifetimes."""

    def __init__(self, settings: Settings, *, credential: Any = None, pacer: WritePacer | None = None,
                 transport_kwargs: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.pacer = pacer or WritePacer(settings.write_burst, settings.write_rate)
        self._injected = credential
        self._sync_credential: Any = None
        self._async_credential: Any = None
        self._clients: dict[tuple[type, str | None], Any] = {}
        self._transport_kwargs = dict(connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
        self._transport_kwargs.update(transport_kwargs or {})

    # -- credentials
    def credential(self, aio: bool) -> Any:
        """The credential for a sync (``aio=False``) or aio client."""
        if self._injected is not None:
            if aio and not _is_async_credential(self._injected):
                if self._async_credential is None:
                    self._async_credential = AsyncFromSyncCredential(self._injected)
                return self._async_credential
            if not aio and _is_async_credential(self._injected):
                raise TypeError("an aio credential was injected; sync clients need a sync credential")
            return self._injected
        if aio:
            if self._async_credential is None:
                self._async_credential = _default_credential(aio=True, settings=self.settings)
            return self._async_credential
        if self._sync_credential is None:
            self._sync_credential = _default_credential(aio=False, settings=self.settings)
        return self._sync_credential

    def connection_verify(self) -> bool | str:
        """CA bundle path for ARM's TLS, or True for the system store."""
        return self.settings.ca_bundle or os.environ.get("REQUESTS_CA_BUNDLE") or True

    # -- clients
    def build(self, client_cls: type[T], *, subscription_id: str | None = None, cache: bool = True, **kwargs: Any) -> T:
        """An SDK client of ``client_cls`` (sync or aio) wired to this process's ARM settings.

        ``subscription_id`` defaults to the configured one; clients are cached per (class, sub).
        """
        sub = subscription_id or self.settings.subscription_id
        key = (client_cls, sub)
        if cache and key in self._clients and not kwargs:
            return self._clients[key]
        aio = _is_aio_client(client_cls)
        retry = AsyncCountingRetryPolicy(**_retry_kwargs()) if aio else CountingRetryPolicy(**_retry_kwargs())
        pacer = _AsyncPacerPolicy(self.pacer) if aio else _PacerPolicy(self.pacer)
        options: dict[str, Any] = dict(
            base_url=self.settings.arm_endpoint,
            credential_scopes=[self.settings.credential_scope],
            connection_verify=self.connection_verify(),
            retry_policy=retry,
            per_retry_policies=[pacer, _MetricsPolicy()],
            **self._transport_kwargs,
        )
        options.update(kwargs)
        client = client_cls(self.credential(aio), sub, **options)  # type: ignore[call-arg]
        if cache and not kwargs:
            self._clients[key] = client
        return client

    def msi(self, subscription_id: str | None = None) -> Any:
        """aio ManagedServiceIdentityClient (identities and federated credentials)."""
        from azure.mgmt.msi.aio import ManagedServiceIdentityClient

        return self.build(ManagedServiceIdentityClient, subscription_id=subscription_id)

    def quick_resources(self) -> Any:
        """An uncached aio ResourceManagementClient that does not retry (the caller retries; close it)."""
        from azure.mgmt.resource.resources.aio import ResourceManagementClient

        return self.build(ResourceManagementClient, cache=False, retry_policy=AsyncCountingRetryPolicy(retry_total=0))

    def resources(self, subscription_id: str | None = None) -> Any:
        """aio ResourceManagementClient (resource groups, generic GETs, ``send_request``)."""
        from azure.mgmt.resource.resources.aio import ResourceManagementClient

        return self.build(ResourceManagementClient, subscription_id=subscription_id)

    async def get_json(self, path: str, api_version: str, *, client: Any = None) -> dict[str, Any]:
        """GET an ARM path (``/subscriptions/...``) through the configured pipeline; raises on >= 400.

        ``client``: the ResourceManagementClient to send with (default: the shared one)."""
        from azure.core.rest import HttpRequest

        client = client or self.resources()
        sep = "&" if "?" in path else "?"
        response = await client.send_request(HttpRequest("GET", f"{path}{sep}api-version={api_version}"))
        await response.read()
        if response.status_code >= 400:
            error = HttpResponseError(response=response)
            if response.status_code == 404:
                error = ResourceNotFoundError(response=response)
            raise error
        return response.json()

    async def close(self) -> None:
        """Close every client and credential built here (not an injected credential)."""
        for client in self._clients.values():
            closer = getattr(client, "close", None)
            if closer is None:
                continue
            result = closer()
            if asyncio.iscoroutine(result):
                await result
        self._clients.clear()
        for cred in (self._async_credential, self._sync_credential):
            if cred is not None and cred is not self._injected:
                result = cred.close()
                if asyncio.iscoroutine(result):
                    await result
        self._async_credential = self._sync_credential = None


def _default_credential(*, aio: bool, settings: Settings) -> Any:
    """WorkloadIdentityCredential in a cluster with a projected token, else DefaultAzureCredential."""
    if aio:
        from azure.identity.aio import DefaultAzureCredential, WorkloadIdentityCredential
    else:
        from azure.identity import DefaultAzureCredential, WorkloadIdentityCredential  # type: ignore[assignment]
    kwargs: dict[str, Any] = {"authority": settings.authority_host}  # --authority-host / AZURE_AUTHORITY_HOST
    if settings.ca_bundle:  # a private CA for ARM (--arm-ca) also signs its authority's certificate
        kwargs["connection_verify"] = settings.ca_bundle
    if os.environ.get("AZURE_FEDERATED_TOKEN_FILE") and os.environ.get("AZURE_CLIENT_ID"):
        return WorkloadIdentityCredential(**kwargs)
    return DefaultAzureCredential(**kwargs)


# --------------------------------------------------------------------------- defaults from Azure

SUBSCRIPTION_API = "2022-12-01"
RESOURCE_GROUP_API = "2022-09-01"
MANAGED_CLUSTER_API = "2024-05-01"


async def resolve_defaults(settings: Settings, arm: ArmClients, *, client: Any = None) -> Settings:
    """Fill location (from the resource group), tenant (from the subscription) and OIDC issuer
    (from the AKS managed cluster) when the flags left them empty.

    Raises ``DefaultsError`` naming the flag whose default could not be read. ``client`` is the
    ResourceManagementClient to read with (default: the shared one, with the usual retries).
    """
    changes: dict[str, Any] = {}
    sub = f"/subscriptions/{settings.subscription_id}"
    cluster_path = (f"{settings.resource_group_id}/providers/Microsoft.ContainerService/managedClusters/"
                    f"{settings.cluster_name}")
    steps: list[tuple[str, str, str, str, str]] = []  # (field, flag, path, api, what is read)
    if not settings.location:
        steps.append(("location", "--location", settings.resource_group_id, RESOURCE_GROUP_API,
                      f"resource group {settings.resource_group!r}"))
    if not settings.tenant_id:
        steps.append(("tenant_id", "--tenant-id", sub, SUBSCRIPTION_API,
                      f"subscription {settings.subscription_id!r}"))
    if not settings.oidc_issuer:
        steps.append(("oidc_issuer", "--oidc-issuer", cluster_path, MANAGED_CLUSTER_API,
                      f"AKS cluster {settings.cluster_name!r}"))
    for name, flag, path, api, what in steps:
        doing = f"reading {what} for the default of {flag}"
        try:
            body = await arm.get_json(path, api, client=client)
            if name == "location":
                changes[name] = body["location"]
            elif name == "tenant_id":
                changes[name] = body["tenantId"]
            else:
                issuer = ((body.get("properties") or {}).get("oidcIssuerProfile") or {}).get("issuerURL")
                if not issuer:
                    raise DefaultsError(400, "OIDCIssuerNotEnabled",
                                        f"AKS cluster {settings.cluster_name} has no OIDC issuer; enable it "
                                        "or pass --oidc-issuer", flag=flag)
                changes[name] = issuer
        except DefaultsError:
            raise
        except (HttpResponseError, AzureError, OSError, asyncio.TimeoutError) as exc:
            error = ArmError.from_exception(exc, doing=doing)
            raise DefaultsError(error.status, error.code, error.message, flag=flag) from exc
        except (KeyError, ValueError, TypeError, AttributeError) as exc:
            raise DefaultsError(0, "UnexpectedResponse", f"{doing}: {type(exc).__name__} {exc}",
                                flag=flag) from exc
    return settings.with_(**changes) if changes else settings


# --------------------------------------------------------------------------- errors


@dataclass
class ArmError(Exception):
    """An ARM failure reduced to what an event or status may show (never bodies or tokens)."""

    status: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.code} ({self.status}): {self.message}" if self.status else f"{self.code}: {self.message}"

    @property
    def transient(self) -> bool:
        return self.status in (0, 408, 409, 429) or self.status >= 500

    @classmethod
    def from_exception(cls, exc: BaseException, doing: str = "") -> "ArmError":
        if isinstance(exc, ArmError):
            return exc
        prefix = f"{doing}: " if doing else ""
        if isinstance(exc, HttpResponseError) and exc.status_code is None:
            # e.g. ClientAuthenticationError when the token endpoint could not be reached
            return cls(0, "ArmUnreachable", prefix + f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
        if isinstance(exc, HttpResponseError):
            status = exc.status_code or 0
            code = getattr(exc.error, "code", None) or (exc.reason or "HttpError").replace(" ", "")
            message = getattr(exc.error, "message", None) or exc.reason or ""
            return cls(status, str(code), prefix + str(message)[:500])
        if isinstance(exc, (ServiceRequestError, ServiceResponseError, asyncio.TimeoutError, OSError)):
            return cls(0, "ArmUnreachable", prefix + f"{type(exc).__name__}: {str(exc)[:300]}")
        return cls(0, type(exc).__name__, prefix + str(exc)[:300])


@dataclass
class DefaultsError(ArmError):
    """A default (location, tenant, OIDC issuer) could not be read from Azure; ``flag`` names it."""

    flag: str = ""


def is_not_found(exc: BaseException) -> bool:
    return isinstance(exc, ResourceNotFoundError) or getattr(exc, "status_code", None) == 404


def is_transient(exc: BaseException) -> bool:
    """Worth retrying later: unreachable, timeouts, 408/409/429, 5xx."""
    return ArmError.from_exception(exc).transient


def iter_codes(exc: BaseException) -> Iterable[str]:
    """The ARM error code and any nested detail codes."""
    error = getattr(exc, "error", None)
    if error is None:
        return []
    codes = [error.code] if getattr(error, "code", None) else []
    for detail in getattr(error, "details", None) or []:
        if getattr(detail, "code", None):
            codes.append(detail.code)
    return codes
