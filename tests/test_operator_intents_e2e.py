"""The real operator (kopf + handlers) on the kube and ARM beds: apply, status, delete, kill + restart."""
from __future__ import annotations

import asyncio
import threading
from typing import Any

import kopf

from clearance.operator.api import crd_manifest, parse_client_intents
from clearance.operator.azure.arm import ArmClients
from clearance.operator.intents.reconciler import IntentsReconciler
from clearance.operator.main import serve
from clearance.operator.identity.webhook import NamespacedWebhookServer
from test_operator_identity_harness import free_port, wait_for
from test_operator_intents import (
    BLOB_READ,
    NS,
    SA,
    Env,
    custom_target,
    intents_doc,
    storage,
    workload,
)

API = "clearance.dev/v1"


class Operator:
    """``serve()`` in a thread with a fresh registry (serve adds the identity and intents handlers)."""

    def __init__(self, env: Env, kube_server: Any, pki: Any) -> None:
        self.webhook_port = free_port()
        webhook = NamespacedWebhookServer(addr="127.0.0.1", port=self.webhook_port, host="127.0.0.1",
                                          certfile=str(pki.cert), pkeyfile=str(pki.key))
        registry = kopf.OperatorRegistry()
        self.stop_flag, ready = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        arm = ArmClients(env.settings, credential=env.arm_server.credential())

        def run() -> None:
            try:
                asyncio.run(serve(env.settings, api_client=kube_server.api_client(), registry=registry, arm=arm, webhook=webhook,
                                  stop_flag=self.stop_flag, ready_flag=ready, login=kube_server.kopf_login))
            except BaseException as exc:  # noqa: BLE001 - surfaced by the test
                self.errors.append(exc)
                ready.set()

        self.thread = threading.Thread(target=run, name="intents-operator", daemon=True)
        self.thread.start()
        assert ready.wait(60) and not self.errors, self.errors

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(30)
        assert not self.thread.is_alive()


def prepare(env: Env, kube_server: Any) -> tuple[str, str]:
    """CRD, workload, identity and a storage account; returns (principal id, account scope)."""
    kube_server.create(crd_manifest())

    async def setup() -> tuple[str, str]:
        try:
            principal = await workload(env)
            return principal, storage(env)
        finally:
            await env.arm.close()
    return asyncio.run(setup())


def conditions(kube_server: Any, name: str) -> list[dict[str, Any]]:
    obj = kube_server.get(API, "ClientIntents", NS, name) or {}
    return (obj.get("status") or {}).get("conditions") or []


def test_apply_status_and_delete_through_kopf(arm_server, kube_server, test_pki) -> None:
    env = Env(arm_server, kube_server)
    principal, account = prepare(env, kube_server)
    op = Operator(env, kube_server, test_pki)
    try:
        doc = intents_doc([custom_target(account + "/blobServices/default/containers/invoices", BLOB_READ),
                           {"azure": {"scope": account, "roles": ["Storage Blob Delegator"]}}])
        kube_server.create(doc)
        wait_for(lambda: [c["type"] for c in conditions(kube_server, "orders-intents")] == ["Ready", "Ready"],
                 "both targets Ready")
        status = kube_server.get(API, "ClientIntents", NS, "orders-intents")["status"]
        assert status["ready"] == "2/2" and status["upToDate"] is True
        assert status["observedGeneration"] == kube_server.get(API, "ClientIntents", NS, "orders-intents")["metadata"].get("generation")
        assert len(env.assignments(principal)) == 2 and len(env.custom_roles()) == 1
        kube_server.delete(API, "ClientIntents", NS, "orders-intents")
        wait_for(lambda: kube_server.get(API, "ClientIntents", NS, "orders-intents") is None, "finalizer released")
        assert env.assignments(principal) == [] and env.custom_roles() == []
    finally:
        op.stop()


def test_killed_mid_reconcile_then_restarted_converges(arm_server, kube_server, test_pki) -> None:
    env = Env(arm_server, kube_server)
    principal, account = prepare(env, kube_server)
    for c in ("c1", "c2", "c3"):
        arm_server.add_container(env.sub, env.rg, "shopdata", c)
    doc = intents_doc([custom_target(f"{account}/blobServices/default/containers/{c}", BLOB_READ)
                       for c in ("c1", "c2", "c3")] + [{"azure": {"scope": account, "roles": ["Reader"]}}])

    # A first operator dies after its first ARM writes (the task is cancelled, as a kill would stop it).
    arm_server.faults.latency_ms = 150

    async def killed() -> None:
        arm = ArmClients(env.settings, credential=arm_server.credential())
        reconciler = IntentsReconciler(arm, env.settings, env.identities.__class__(arm, env.settings), env.core)
        task = asyncio.create_task(reconciler.reconcile(parse_client_intents(doc)))
        while not arm_server.calls(method="PUT", path_contains="roleDefinitions"):
            await asyncio.sleep(0.02)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await arm.close()
    asyncio.run(killed())
    arm_server.faults.latency_ms = 0
    assert len(env.custom_roles()) < 3 or len(env.assignments(principal)) < 4, "the kill came too late to matter"

    # A restarted operator converges to exactly the desired set.
    kube_server.create(doc)
    op = Operator(env, kube_server, test_pki)
    try:
        wait_for(lambda: [c["type"] for c in conditions(kube_server, "orders-intents")] == ["Ready"] * 4, "all Ready")
        scopes = sorted(a["properties"]["scope"] for a in env.assignments(principal))
        assert scopes == sorted([f"{account}/blobServices/default/containers/{c}" for c in ("c1", "c2", "c3")] + [account])
        assert len(env.custom_roles()) == 3
        names = [a["name"] for a in arm_server.state.role_assignments.values()]
        assert len(names) == len(set(names))
        kube_server.delete(API, "ClientIntents", NS, "orders-intents")
        wait_for(lambda: kube_server.get(API, "ClientIntents", NS, "orders-intents") is None, "finalizer released")
        assert env.assignments(principal) == [] and env.custom_roles() == []
    finally:
        op.stop()
    assert SA  # the ServiceAccount the identity belongs to


def review(port: int, ca: str, obj: dict[str, Any]) -> dict[str, Any]:
    import json
    import ssl
    import urllib.request

    body = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u-1", "kind": {"group": "clearance.dev", "version": "v1", "kind": "ClientIntents"},
                        "resource": {"group": "clearance.dev", "version": "v1", "resource": "clientintents"},
                        "namespace": NS, "operation": "CREATE", "object": obj, "userInfo": {"username": "test"},
                        "dryRun": False}}
    request = urllib.request.Request(f"https://127.0.0.1:{port}/validate-clientintents", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=ca), timeout=30) as response:
        return json.loads(response.read())["response"]


def test_validating_webhook(arm_server, kube_server, test_pki) -> None:
    env = Env(arm_server, kube_server)
    kube_server.create(crd_manifest())
    op = Operator(env, kube_server, test_pki)
    try:
        wait_for(lambda: _open(op.webhook_port), "webhook listening")
        good = intents_doc([{"azure": {"scope": "/s", "roles": ["Reader"]}}])
        ok = wait_for(lambda: _served(op.webhook_port, str(test_pki.ca_cert), good), "ClientIntents served by the webhook")
        assert ok["allowed"] is True
        mixed = intents_doc([{"azure": {"scope": "/s", "roles": ["Reader"], "actions": ["a/b"]}}])
        refused = review(op.webhook_port, str(test_pki.ca_cert), mixed)
        assert refused["allowed"] is False and "spec.targets[0].azure.roles" in refused["status"]["message"]
        wild = intents_doc([custom_target("/s", "Microsoft.Storage/*")])
        refused = review(op.webhook_port, str(test_pki.ca_cert), wild)
        assert refused["allowed"] is False and "wildcard" in refused["status"]["message"]
    finally:
        op.stop()


def _open(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _served(port: int, ca: str, obj: dict[str, Any]) -> dict[str, Any] | None:
    """The review, or None while kopf has not resolved the CRD yet (404)."""
    import urllib.error

    try:
        return review(port, ca, obj)
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return None
        raise
