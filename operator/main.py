"""``clearance operator``: the kopf operator process.

``run_operator(args)`` builds the settings, the ARM clients and the Kubernetes client, resolves
Azure defaults (un-ready and retrying while Azure is unreachable; see ``startup``), registers the
identity and ClientIntents handlers, and runs kopf with the admission webhook, health endpoints and Prometheus metrics.

``serve(...)`` is the same operator as a coroutine with injectable parts (tests, benchmarks).
The kopf ``memo`` carries: ``settings``, ``arm`` (ArmClients), ``identities`` (Identities),
``api_client`` (kubernetes ApiClient) and ``identity`` (IdentityContext).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Any

import kopf
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from clearance.operator.azure.arm import ArmClients
from clearance.operator.azure.identities import Identities
from clearance.operator.identity import handlers as identity_handlers
from clearance.operator.identity import labels as L
from clearance.operator.identity.reconcile import IdentityContext
from clearance.operator.identity.webhook import NamespacedWebhookServer
from clearance.operator.intents import handlers as intents_handlers
from clearance.operator.settings import Settings, SettingsError
from clearance.operator.startup import Backoff, StartupError, resolve_at_startup

log = logging.getLogger("clearance.operator")

def configure_kopf(settings: kopf.OperatorSettings, *, webhook: kopf.WebhookServer | None) -> None:
    """Operator-wide kopf settings: our finalizer name, no managed webhook configs, quiet peering."""
    settings.persistence.finalizer = L.FINALIZER
    settings.admission.server = webhook
    settings.admission.managed = None  # the Helm chart owns the MutatingWebhookConfiguration
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300


class Probes:
    """Liveness/readiness and /metrics over plain HTTP."""

    def __init__(self) -> None:
        self.ready = False
        self.reason = "starting"  # why not ready (the /readyz body while 503)
        self._runners: list[web.AppRunner] = []

    async def _health(self, _: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _ready(self, _: web.Request) -> web.Response:
        return web.Response(text="ready" if self.ready else self.reason, status=200 if self.ready else 503)

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def start(self, health_port: int, metrics_port: int, host: str = "0.0.0.0") -> list[int]:
        """Serve; returns the bound ports (0 = pick one, None = off)."""
        ports: list[int] = []
        plan: list[tuple[int, list[web.RouteDef]]] = []
        health_routes = [web.get("/healthz", self._health), web.get("/readyz", self._ready)]
        if metrics_port is not None and metrics_port == health_port:
            plan.append((health_port, health_routes + [web.get("/metrics", self._metrics)]))
        else:
            if health_port is not None:
                plan.append((health_port, health_routes))
            if metrics_port:
                plan.append((metrics_port, [web.get("/metrics", self._metrics)]))
        for port, routes in plan:
            app = web.Application()
            app.add_routes(routes)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, host, port)
            await site.start()
            self._runners.append(runner)
            ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
        return ports

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()


async def serve(settings: Settings, *, api_client: Any, credential: Any = None,
                registry: kopf.OperatorRegistry | None = None, webhook: kopf.WebhookServer | None = None,
                probes: Probes | None = None, stop_flag: Any = None, ready_flag: Any = None,
                namespaces: tuple[str, ...] = (), clusterwide: bool = True, login: Any = None,
                arm: ArmClients | None = None, startup_backoff: Backoff = Backoff()) -> None:
    """Run the operator until ``stop_flag`` is set (or the task is cancelled).

    Until the Azure defaults are read the operator is not ready (``probes.reason`` says why) and
    retries with ``startup_backoff``; a permanent configuration error raises SystemExit.
    """
    arm = arm or ArmClients(settings, credential=credential)
    try:
        def report(reason: str) -> None:
            if probes is not None:
                probes.reason = reason

        try:
            resolved = await resolve_at_startup(settings, arm, backoff=startup_backoff, report=report,
                                                stopped=lambda: _is_set(stop_flag))
        except StartupError as exc:
            raise SystemExit(f"error: {exc}") from None  # run_operator prints it once, on stderr
        if resolved is None:
            return  # asked to stop before Azure answered
        settings = resolved
        report("starting")
        arm.settings = settings
        identities = Identities(arm, settings)
        ctx = IdentityContext(settings=settings, identities=identities, api_client=api_client)
        registry = registry if registry is not None else kopf.get_default_registry()
        identity_handlers.register(registry)
        intents_handlers.register(registry)
        if login is not None:
            kopf.on.login(registry=registry)(login)
        kopf_settings = kopf.OperatorSettings()
        configure_kopf(kopf_settings, webhook=webhook)
        memo = kopf.Memo(settings=settings, arm=arm, identities=identities, api_client=api_client, identity=ctx)
        if probes is not None:
            probes.ready = True
        await kopf.operator(registry=registry, settings=kopf_settings, memo=memo, standalone=True,
                            clusterwide=clusterwide if not namespaces else False, namespaces=namespaces,
                            stop_flag=stop_flag, ready_flag=ready_flag)
    finally:
        if probes is not None:
            probes.ready = False
        for task in list(getattr(locals().get("ctx"), "background", ())):
            task.cancel()
        await arm.close()


def _is_set(flag: Any) -> bool:
    """Whether a kopf-style stop flag (threading/asyncio Event or Future) is raised."""
    if flag is None:
        return False
    if hasattr(flag, "is_set"):
        return bool(flag.is_set())
    return bool(flag.done())


def _kube_api_client(kubeconfig: str | None) -> Any:
    from kubernetes import client, config

    if kubeconfig:
        os.environ["KUBECONFIG"] = kubeconfig  # kopf's own login reads the same file
        return config.new_client_from_config(config_file=kubeconfig)
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def run_operator(args: argparse.Namespace) -> int:
    """Entry point of ``clearance operator``; returns the exit code."""
    try:
        settings = Settings.from_args(args)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    webhook = None
    if getattr(args, "webhook_port", 0):
        if not (args.webhook_cert and args.webhook_key):
            print("error: --webhook-cert and --webhook-key are required when --webhook-port is set (0 turns it off)",
                  file=sys.stderr)
            return 2
        webhook = NamespacedWebhookServer(port=args.webhook_port, certfile=args.webhook_cert,
                                          pkeyfile=args.webhook_key, addr="0.0.0.0")
    api_client = _kube_api_client(getattr(args, "kubeconfig", None))
    probes = Probes()

    async def main() -> None:
        await probes.start(getattr(args, "health_port", 8080), getattr(args, "metrics_port", 9465) or None)
        try:
            await serve(settings, api_client=api_client, webhook=webhook, probes=probes)
        finally:
            await probes.stop()

    try:
        asyncio.run(main())
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0

