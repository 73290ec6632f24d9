"""``clearance mapper``: wire the store, workload resolver, applied intents, agent authentication,
the gRPC services and the JSON API together, and run until SIGTERM/SIGINT."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

from .applied import AppliedIntents
from .auth import DEFAULT_AGENT_SA, SharedToken, TokenReviewer
from .ingest import Ingestor
from .service import Mapper, serve
from .transport import ServerTLS, load_server_tls, serve_agents
from .store import Store, StoreError
from .workloads import KubeResolver, PodsFileResolver

log = logging.getLogger("clearance.mapper")

PENDING_RETRY_SECONDS = 5.0


def kube_api_client(kubeconfig: str | None) -> Any | None:
    """An ApiClient from --kubeconfig, else in-cluster, else ~/.kube/config; None when there is none."""
    from kubernetes import client, config

    if kubeconfig:
        return config.new_client_from_config(config_file=kubeconfig)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
        return client.ApiClient()
    default = Path(os.environ.get("KUBECONFIG", "~/.kube/config")).expanduser()
    if default.is_file():
        return config.new_client_from_config(config_file=str(default))
    return None


def build(args: argparse.Namespace) -> Mapper:
    """The Mapper for these flags (raises ValueError/StoreError with a clear message)."""
    api_client = None
    if args.kubeconfig or not args.pods_file:
        try:
            api_client = kube_api_client(args.kubeconfig)
        except Exception as exc:  # noqa: BLE001 - a broken kubeconfig is a start-up error
            raise ValueError(f"cannot load the Kubernetes configuration: {exc}") from None
    if args.pods_file:
        resolver: Any = PodsFileResolver(args.pods_file)
    elif api_client is not None:
        resolver = KubeResolver(api_client)
    else:
        resolver = None
        log.warning("no --pods-file and no cluster: workloads come from what the agents report")
    if args.agent_token_file:
        authenticator: Any = SharedToken(args.agent_token_file)
    elif api_client is not None:
        authenticator = TokenReviewer(api_client, tuple(args.agent_service_account or [DEFAULT_AGENT_SA]),
                                      (args.agent_audience,))
    elif args.insecure_no_agent_auth:
        log.warning("agents are NOT authenticated (--insecure-no-agent-auth)")
        authenticator = None
    else:
        raise ValueError("agents cannot be authenticated: give --agent-token-file, run in a cluster "
                         "(TokenReview), or pass --insecure-no-agent-auth for a local experiment")
    store = Store(args.db)
    ingestor = Ingestor(store, resolver, max_calls=args.max_calls_per_report)
    return Mapper(ingestor=ingestor, applied=AppliedIntents(api_client), authenticator=authenticator)


def agents_tls(args: argparse.Namespace) -> ServerTLS | None:
    """The agents' port TLS material from the flags (ValueError naming the flag when wrong)."""
    tls = load_server_tls(args.tls_cert, args.tls_key)
    if tls and not args.agent_listen:
        raise ValueError("--tls-cert/--tls-key need --agent-listen: TLS is served on the agents' port only")
    return tls


def run_mapper(args: argparse.Namespace) -> int:
    try:
        tls = agents_tls(args)
        mapper = build(args)
    except (ValueError, StoreError) as exc:
        log.error(str(exc))
        return 2
    resolver = mapper.ingestor.resolver
    if isinstance(resolver, KubeResolver):
        resolver.start()
    mapper.applied.start()
    try:
        server, port = serve(mapper, args.listen, max_message=args.max_message_bytes,
                             agents=not args.agent_listen)
    except (OSError, RuntimeError) as exc:
        log.error(f"cannot listen on {args.listen}: {exc}")
        return 2
    host = args.listen.rpartition(":")[0]
    log.info("mapper listening", extra={"fields": {"listen": f"{host}:{port}", "db": args.db}})
    servers = [server]
    if args.agent_listen:
        try:
            agents_server, agents_port = serve_agents(mapper, args.agent_listen, tls,
                                                      max_message=args.max_message_bytes)
        except OSError as exc:
            log.error(f"--agent-listen {args.agent_listen}: {exc}")
            server.stop(grace=0)
            return 2
        servers.append(agents_server)
        agents_host = args.agent_listen.rpartition(":")[0]
        log.info("agents port listening", extra={"fields": {"agent_listen": f"{agents_host}:{agents_port}",
                                                            "tls": tls is not None}})
        if tls is None:
            log.warning("the agents' port has no TLS (--tls-cert/--tls-key): reports and agent tokens "
                        "travel unencrypted")
    if args.web_port:
        from .web import serve_web

        _, web_port = serve_web(mapper, args.web_host, args.web_port)
        log.info("query API listening", extra={"fields": {"web": f"{args.web_host}:{web_port}"}})
    if args.metrics_port:
        from .metrics import start_metrics

        start_metrics(mapper, args.metrics_port)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    pending_loop(mapper, stop)
    for stopped in [s.stop(grace=5) for s in servers]:
        stopped.wait()
    mapper.store.close()
    log.info("mapper stopped")
    return 0


def pending_loop(mapper: Mapper, stop: threading.Event) -> None:
    """Until ``stop``: re-read the pods file and retry calls kept for pods not known yet."""
    resolver = mapper.ingestor.resolver
    pods_file = isinstance(resolver, PodsFileResolver)
    last_retry = time.monotonic()
    while not stop.wait(1.0 if pods_file else PENDING_RETRY_SECONDS):
        try:
            if pods_file:
                try:
                    resolver.reload()
                except ValueError as exc:
                    log.warning("pods file not reloaded", extra={"fields": {"error": str(exc)}})
            # Also without a new pod: kept calls expire to the Host workload after their deadline.
            if time.monotonic() - last_retry >= PENDING_RETRY_SECONDS and mapper.store.has_pending():
                last_retry = time.monotonic()
                mapper.ingestor.resolve_pending()
        except Exception:  # noqa: BLE001 - keep serving
            log.exception("pending-call resolution failed")
