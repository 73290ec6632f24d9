"""Start-up against the ARM bed: an unreachable Azure keeps the operator un-ready (not crashed) until
it answers; a permanent configuration error exits with a message naming the flag."""
from __future__ import annotations

import asyncio
import logging
import threading
import urllib.error
import urllib.request
from typing import Any

import kopf
import pytest

from beds.armserver.server import DEFAULT_CLIENT_SECRET
from clearance.operator.azure.arm import ArmClients
from clearance.operator.identity import handlers as identity_handlers
from clearance.operator.main import Probes, serve
from clearance.operator.startup import Backoff
from test_operator_identity_harness import bed_settings, wait_for

QUICK = Backoff(base=0.05, cap=0.5)


def probe(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class Started:
    """``serve()`` with probes, in its own thread and loop."""

    def __init__(self, arm_server: Any, kube_server: Any, **changes: Any) -> None:
        self.settings = bed_settings(arm_server, **changes)
        self.stop_flag, self.ready_flag = threading.Event(), threading.Event()
        self.errors: list[BaseException] = []
        self.probes = Probes()
        self.port: int | None = None
        arm = ArmClients(self.settings, credential=arm_server.credential())
        registry = kopf.OperatorRegistry()
        identity_handlers.register(registry)
        listening = threading.Event()

        async def main() -> None:
            (self.port,) = await self.probes.start(0, None, host="127.0.0.1")
            listening.set()
            try:
                await serve(self.settings, api_client=kube_server.api_client(), registry=registry, arm=arm,
                            probes=self.probes, stop_flag=self.stop_flag, ready_flag=self.ready_flag,
                            login=kube_server.kopf_login, startup_backoff=QUICK)
            finally:
                await self.probes.stop()

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - surfaced by the test
                self.errors.append(exc)
                listening.set()

        self.thread = threading.Thread(target=run, name="operator-startup", daemon=True)
        self.thread.start()
        assert listening.wait(30) and not self.errors, self.errors

    def stop(self) -> None:
        self.stop_flag.set()
        self.thread.join(30)
        assert not self.thread.is_alive(), "operator did not stop"


UNRESOLVED = dict(location=None, tenant_id=None, oidc_issuer=None)


def test_unreachable_azure_keeps_it_unready_then_ready(arm_server, kube_server, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="clearance.operator")
    arm_server.faults.unreachable = True
    op = Started(arm_server, kube_server, **UNRESOLVED)
    try:
        assert op.port is not None
        status, body = wait_for(lambda: (lambda r: r if "waiting for Azure" in r[1] else None)(probe(op.port, "/readyz")),
                                "readiness says it waits for Azure")
        assert status == 503 and "--location" in body and "ArmUnreachable" in body
        wait_for(lambda: len([r for r in caplog.records if "retrying" in r.getMessage()]) >= 2,
                 "a warning per failed attempt")
        assert probe(op.port, "/healthz")[0] == 200  # alive while waiting: no restarts
        assert not op.errors and op.thread.is_alive()
        arm_server.faults.unreachable = False
        wait_for(lambda: probe(op.port, "/readyz")[0] == 200, "ready once Azure answers")
        assert op.ready_flag.wait(60)
        assert op.probes.ready and not op.errors
    finally:
        op.stop()
    text = "\n".join(f"{r.getMessage()} {getattr(r, 'fields', '')}" for r in caplog.records)
    assert DEFAULT_CLIENT_SECRET not in text and "Bearer" not in text


def test_stop_while_waiting_for_azure(arm_server, kube_server) -> None:
    arm_server.faults.unreachable = True
    op = Started(arm_server, kube_server, **UNRESOLVED)
    assert op.port is not None
    wait_for(lambda: "waiting for Azure" in probe(op.port, "/readyz")[1], "waiting for Azure")
    op.stop()
    assert not op.errors and not op.ready_flag.is_set()


def _exit_message(arm_server: Any, kube_server: Any, **changes: Any) -> str:
    settings = bed_settings(arm_server, **changes)
    arm = ArmClients(settings, credential=arm_server.credential())
    with pytest.raises(SystemExit) as caught:
        asyncio.run(serve(settings, api_client=kube_server.api_client(), registry=kopf.OperatorRegistry(), arm=arm,
                          stop_flag=threading.Event(), startup_backoff=QUICK))
    return str(caught.value)


def test_missing_resource_group_exits_naming_the_flag(arm_server, kube_server) -> None:
    message = _exit_message(arm_server, kube_server, resource_group="no-such-rg", **UNRESOLVED)
    assert "--resource-group 'no-such-rg' was not found" in message and "ResourceGroupNotFound" in message


def test_no_permission_exits_naming_the_flag(arm_server, kube_server) -> None:
    arm_server.faults.fail_next(1, status=403, method="GET", path="managedClusters", code="AuthorizationFailed")
    message = _exit_message(arm_server, kube_server, oidc_issuer=None)
    assert "no permission" in message and "AuthorizationFailed" in message and "--oidc-issuer" in message


def test_transient_5xx_then_ready_without_exit(arm_server, kube_server) -> None:
    arm_server.faults.fail_next(3, status=503, method="GET", path="resourceGroups")
    op = Started(arm_server, kube_server, **UNRESOLVED)
    try:
        assert op.ready_flag.wait(60) and not op.errors
        assert op.settings.location is None  # the given settings are untouched; the resolved copy is used
        assert len(arm_server.calls(method="GET", status=503)) == 3
    finally:
        op.stop()


def test_backoff_doubles_then_caps() -> None:
    b = Backoff(base=0.5, cap=8.0)
    assert [b.delay(n) for n in range(7)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert Backoff().delay(10_000) == 60.0 and Backoff().delay(-1) == 1.0


def test_bad_flags_are_reported_once_on_stderr(capsys, caplog, monkeypatch, tmp_path) -> None:
    from clearance.cli import main

    for name in ("CLEARANCE_SUBSCRIPTION_ID", "CLEARANCE_RESOURCE_GROUP", "CLEARANCE_CLUSTER_NAME"):
        monkeypatch.delenv(name, raising=False)
    assert main(["operator", "--resource-group", "rg", "--cluster-name", "c"]) == 2
    out, err = capsys.readouterr()
    assert err.count("--subscription-id is required") == 1 and "--subscription-id" not in out
    assert not [r for r in caplog.records if "--subscription-id" in r.getMessage()]
    missing = tmp_path / "none.pem"
    assert main(["operator", "--subscription-id", "s", "--resource-group", "rg", "--cluster-name", "c",
                 "--arm-ca", str(missing)]) == 2
    assert err_once(capsys, "--arm-ca")


def err_once(capsys, text: str) -> bool:
    out, err = capsys.readouterr()
    return err.count(text) == 1 and text not in out
