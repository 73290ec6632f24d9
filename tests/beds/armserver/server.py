"""ArmServer: the bed running on a free port in a background thread with its own event loop."""
from __future__ import annotations

import asyncio
import os
import secrets
import socket
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

from . import tokens
from .app import make_app
from .calls import CallLog
from .context import Ctx
from .faults import Faults
from .state import ArmState

DEFAULT_CLIENT_ID = "client"
DEFAULT_CLIENT_SECRET = "secret"
ARM_SCOPE = "https://management.azure.com/.default"


class PKI(Protocol):
    """What the bed needs from ``beds.certs.TestPKI``."""

    ca_cert: Path
    cert: Path
    key: Path


class ArmServer:
    """A running ARM + Entra ID test server with a default subscription, resource group and AKS cluster."""

    def __init__(self, pki: PKI, location: str = "eastus") -> None:
        self.ca_cert = Path(pki.ca_cert)
        self.tenant_id = str(uuid.uuid4())
        self.state = ArmState(tenant_id=self.tenant_id)
        self.faults = Faults()
        self.calls = CallLog()
        self.location = location
        self.resource_group = "clearance-rg"
        self.cluster_name = "clearance-aks"
        self._key = secrets.token_bytes(32)
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"
        self.oidc_issuer = f"{self.url}/oidc/{self.tenant_id}/{uuid.uuid4()}/"
        self.state.apps[DEFAULT_CLIENT_ID] = DEFAULT_CLIENT_SECRET
        self.subscription_id = self.state.add_subscription(str(uuid.uuid4()), "Clearance default")
        self.state.add_resource_group(self.subscription_id, self.resource_group, location)
        self.state.add_managed_cluster(self.subscription_id, self.resource_group, self.cluster_name,
                                       self.oidc_issuer, location)
        self._ctx = Ctx(url=self.url, state=self.state, faults=self.faults, key=self._key)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(pki.cert), str(pki.key))
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(tls,), name=f"arm-bed-{self.port}", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("ARM test bed did not start within 10 s")
        if self._error is not None:
            raise RuntimeError(f"ARM test bed failed to start: {self._error}") from self._error

    # -- lifecycle ---------------------------------------------------------------------------
    def _run(self, tls: ssl.SSLContext) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._runner = web.AppRunner(make_app(self._ctx, self.calls), access_log=None, shutdown_timeout=0.5)
            self._loop.run_until_complete(self._runner.setup())
            site = web.SockSite(self._runner, self._sock, ssl_context=tls)
            self._loop.run_until_complete(site.start())
        except BaseException as e:  # noqa: BLE001 - reported to the starting thread
            self._error = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self._runner.cleanup())
        self._loop.close()

    def stop(self) -> None:
        """Stop serving, close the port and join the thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(15)
        self._sock.close()

    def __enter__(self) -> ArmServer:
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # -- clients -----------------------------------------------------------------------------
    def credential(self) -> Any:
        """A real ``ClientSecretCredential`` for the default app registration, trusting the bed's CA."""
        from azure.identity import ClientSecretCredential
        return ClientSecretCredential(self.tenant_id, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, authority=self.url,
                                      connection_verify=str(self.ca_cert), disable_instance_discovery=True)

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that point an azure-mgmt-* client at the bed."""
        return {"base_url": self.url, "credential_scopes": [ARM_SCOPE], "connection_verify": str(self.ca_cert)}

    def service_account_token(self, namespace: str, service_account: str, issuer: str | None = None,
                              audience: str = "api://AzureADTokenExchange") -> str:
        """A projected ServiceAccount token from the cluster's OIDC issuer, for WorkloadIdentityCredential."""
        return tokens.service_account_token(issuer or self.oidc_issuer, namespace, service_account, audience)

    def write_service_account_token(self, path: str | os.PathLike[str], namespace: str, service_account: str) -> Path:
        """Write ``service_account_token(...)`` to ``path`` (the AZURE_FEDERATED_TOKEN_FILE); returns it."""
        p = Path(path)
        p.write_text(self.service_account_token(namespace, service_account))
        return p

    def fic_writes_in_flight(self) -> int:
        """How many federated-credential writes are holding their identity right now."""
        return len(self._ctx.fic_inflight)

    # -- seeding -----------------------------------------------------------------------------
    def add_subscription(self, subscription_id: str | None = None, display_name: str = "Clearance test",
                         resource_group: str | None = None) -> str:
        """Add a subscription (and optionally a resource group in it); returns its id."""
        sub = self.state.add_subscription(subscription_id, display_name)
        if resource_group:
            self.state.add_resource_group(sub, resource_group, self.location)
        return sub

    def add_resource_group(self, subscription_id: str, name: str, location: str | None = None) -> dict[str, Any]:
        return self.state.add_resource_group(subscription_id, name, location or self.location)

    def add_storage_account(self, sub: str, rg: str, name: str, endpoints: dict[str, str] | None = None) -> dict[str, Any]:
        return self.state.add_storage_account(sub, rg, name, self.location, endpoints)

    def add_container(self, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
        return self.state.add_storage_child(sub, rg, account, "blobServices", "containers", name)

    def add_queue(self, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
        return self.state.add_storage_child(sub, rg, account, "queueServices", "queues", name)

    def add_table(self, sub: str, rg: str, account: str, name: str) -> dict[str, Any]:
        return self.state.add_storage_child(sub, rg, account, "tableServices", "tables", name)

    def add_vault(self, sub: str, rg: str, name: str, rbac: bool = False,
                  access_policies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return self.state.add_vault(sub, rg, name, self.location, rbac, access_policies)

    def add_managed_cluster(self, sub: str, rg: str, name: str, issuer_url: str | None = None) -> dict[str, Any]:
        return self.state.add_managed_cluster(sub, rg, name, issuer_url or self.oidc_issuer, self.location)

    def add_app(self, client_id: str, secret: str) -> None:
        """Register another app (service principal) that can get tokens with a client secret."""
        with self.state.lock:
            self.state.apps[client_id] = secret

    def identity(self, name: str, resource_group: str | None = None, subscription_id: str | None = None) \
            -> dict[str, Any] | None:
        """The user-assigned identity body by name (default subscription and group), or ``None``."""
        rid = (f"/subscriptions/{subscription_id or self.subscription_id}/resourceGroups/"
               f"{resource_group or self.resource_group}/providers/Microsoft.ManagedIdentity/userAssignedIdentities/{name}")
        return self.state.resource(rid)


def start_arm_server(pki: PKI, location: str = "eastus") -> ArmServer:
    """Start a bed (call ``.stop()`` when done); for benchmarks and scripts outside pytest."""
    return ArmServer(pki, location)
