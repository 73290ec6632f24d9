"""Shared harness (no tests here): run the real operator in a thread against the kube and ARM beds."""
from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import kopf
import pytest
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from clearance.operator import naming
from clearance.operator.azure.arm import ArmClients
from clearance.operator.identity import handlers as identity_handlers
from clearance.operator.identity import labels as L
from clearance.operator.identity.webhook import NamespacedWebhookServer
from clearance.operator.main import serve
from clearance.operator.settings import Settings

WAIT = 60.0


def wait_for(check: Callable[[], Any], what: str, timeout: float = WAIT) -> Any:
    """Poll until ``check()`` is truthy; fail naming ``what`` if it never is (convergence, not timing)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except ApiException as exc:
            if exc.status != 404:
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never converged: {what}")
        time.sleep(0.1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bed_settings(arm_server: Any, **changes: Any) -> Settings:
    """Settings pointing at the ARM bed. The bed applies RBAC at once, so the propagation window is
    off unless a test sets ``propagation_window``."""
    base: dict[str, Any] = dict(propagation_window=0.0,
        subscription_id=arm_server.subscription_id, resource_group=arm_server.resource_group,
        cluster_name=arm_server.cluster_name, location=arm_server.location, tenant_id=arm_server.tenant_id,
        oidc_issuer=arm_server.oidc_issuer, arm_endpoint=arm_server.url.rstrip("/"),
        authority_host=arm_server.url.rstrip("/") + "/", ca_bundle=str(arm_server.ca_cert), webhook_deadline=10.0)
    base.update(changes)
    return Settings.build(**base)


@dataclass
class RunningOperator:
    """One operator process-equivalent: its own loop and thread, kopf registry and webhook."""

    settings: Settings
    webhook_port: int
    stop_flag: threading.Event
    ready_flag: threading.Event
    thread: threading.Thread
    errors: list[BaseException] = field(default_factory=list)

    @property
    def webhook_url(self) -> str:
        return f"https://127.0.0.1:{self.webhook_port}/identity-pod-mutate"

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "operator did not stop"


def start_operator(settings: Settings, kube_server: Any, arm_server: Any, pki: Any) -> RunningOperator:
    """Start ``serve()`` with a fresh kopf registry, the bed's login and an HTTPS webhook."""
    registry = kopf.OperatorRegistry()
    identity_handlers.register(registry)
    port = free_port()
    webhook = NamespacedWebhookServer(addr="127.0.0.1", port=port, host="127.0.0.1",
                                      certfile=str(pki.cert), pkeyfile=str(pki.key))
    stop_flag, ready_flag = threading.Event(), threading.Event()
    api_client = kube_server.api_client()
    arm = ArmClients(settings, credential=arm_server.credential())
    op = RunningOperator(settings, port, stop_flag, ready_flag, thread=None)  # type: ignore[arg-type]

    def run() -> None:
        try:
            asyncio.run(serve(settings, api_client=api_client, registry=registry, webhook=webhook, arm=arm,
                              stop_flag=stop_flag, ready_flag=ready_flag, login=kube_server.kopf_login))
        except BaseException as exc:  # noqa: BLE001 - surfaced by the fixture
            op.errors.append(exc)
            ready_flag.set()

    op.thread = threading.Thread(target=run, name="operator", daemon=True)
    op.thread.start()
    assert ready_flag.wait(WAIT), "operator never became ready"
    assert not op.errors, f"operator failed to start: {op.errors!r}"
    wait_for(lambda: _port_open(port), "webhook server listening")
    return op


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- kube helpers

def core(kube_server: Any) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(kube_server.api_client())


def ensure_namespace(api: k8s.CoreV1Api, ns: str) -> None:
    try:
        api.create_namespace({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    except ApiException as exc:
        if exc.status != 409:
            raise


def make_sa(api: k8s.CoreV1Api, ns: str, name: str) -> None:
    api.create_namespaced_service_account(ns, {"apiVersion": "v1", "kind": "ServiceAccount",
                                               "metadata": {"name": name, "namespace": ns}})


def pod_body(ns: str, name: str, sa: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels if labels is not None else {L.POD_LABEL: "true"}},
            "spec": {"serviceAccountName": sa, "containers": [{"name": "app", "image": "busybox"}]}}


def make_pod(api: k8s.CoreV1Api, ns: str, name: str, sa: str, labels: dict[str, str] | None = None) -> None:
    api.create_namespaced_pod(ns, pod_body(ns, name, sa, labels))


def sa_meta(api: k8s.CoreV1Api, ns: str, name: str) -> dict[str, Any]:
    sa = api.read_namespaced_service_account(name, ns)
    return api.api_client.sanitize_for_serialization(sa)["metadata"]


def sa_annotation(api: k8s.CoreV1Api, ns: str, name: str, key: str = L.SA_CLIENT_ID) -> str | None:
    return (sa_meta(api, ns, name).get("annotations") or {}).get(key)


def sa_gone(api: k8s.CoreV1Api, ns: str, name: str) -> bool:
    try:
        api.read_namespaced_service_account(name, ns)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


# --------------------------------------------------------------------------- ARM helpers

def identity_of(arm_server: Any, settings: Settings, ns: str, sa: str) -> dict[str, Any] | None:
    name = naming.identity_name(ns, sa, settings.cluster_name).lower()
    for rid, body in arm_server.state.identities.items():
        if rid.lower().endswith("/" + name):
            return body
    return None


def fics_of(arm_server: Any, settings: Settings, ns: str, sa: str) -> list[dict[str, Any]]:
    name = naming.identity_name(ns, sa, settings.cluster_name).lower()
    return [b for rid, b in arm_server.state.fics.items() if f"/{name}/" in rid.lower()]


def identity_puts(arm_server: Any, settings: Settings, ns: str, sa: str, status: int | None = None) -> list[Any]:
    name = naming.identity_name(ns, sa, settings.cluster_name)
    return [c for c in arm_server.calls(method="PUT", path_contains=f"userAssignedIdentities/{name}", status=status)
            if "federatedIdentityCredentials" not in c.path]


def fic_puts(arm_server: Any, settings: Settings, ns: str, sa: str, status: int | None = None) -> list[Any]:
    name = naming.identity_name(ns, sa, settings.cluster_name)
    return arm_server.calls(method="PUT", path_contains=f"userAssignedIdentities/{name}/federatedIdentityCredentials",
                            status=status)


@pytest.fixture
def operator_factory(kube_server: Any, arm_server: Any, test_pki: Any) -> Iterator[Callable[..., RunningOperator]]:
    """Start operators (``factory(**settings_changes)``); all are stopped at teardown."""
    running: list[RunningOperator] = []

    def factory(**changes: Any) -> RunningOperator:
        op = start_operator(bed_settings(arm_server, **changes), kube_server, arm_server, test_pki)
        running.append(op)
        return op

    yield factory
    for op in running:
        if op.thread.is_alive():
            op.stop()
