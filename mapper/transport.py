"""The agents' port: AgentReports alone, over TLS when a certificate is given.

The query API (Intents) stays on ``--listen``; agents, who send their token with every report,
get their own port so that it can be encrypted without touching how the CLI reaches the mapper.
"""
from __future__ import annotations

import ssl
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from .service import DEFAULT_MAX_MESSAGE, Mapper, agent_reports_handler


@dataclass(frozen=True)
class ServerTLS:
    """A server certificate chain and its private key, as PEM bytes."""

    cert: bytes
    key: bytes

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key, self.cert)])


def _read(flag: str, path: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"{flag} {path}: cannot read it ({exc.strerror or exc})") from None
    if not data.strip():
        raise ValueError(f"{flag} {path}: the file is empty")
    return data


def load_server_tls(cert: str | None, key: str | None) -> ServerTLS | None:
    """The TLS material from ``--tls-cert``/``--tls-key``; None when neither is given.

    Raises ValueError naming the flag when one is missing, a file is unreadable, or the pair is
    not a PEM certificate with its matching key.
    """
    if not cert and not key:
        return None
    if not key:
        raise ValueError("--tls-cert is given without --tls-key: give both (the key of that certificate)")
    if not cert:
        raise ValueError("--tls-key is given without --tls-cert: give both")
    cert_pem, key_pem = _read("--tls-cert", cert), _read("--tls-key", key)
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise ValueError(f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its matching "
                         f"private key ({exc.reason or exc})") from None
    return ServerTLS(cert_pem, key_pem)


def serve_agents(mapper: Mapper, listen: str, tls: ServerTLS | None, *,
                 max_message: int = DEFAULT_MAX_MESSAGE, workers: int = 4) -> tuple[grpc.Server, int]:
    """Start AgentReports alone on ``listen`` (TLS when ``tls``); returns (server, port).

    Port 0 picks a free one. Raises OSError when the address cannot be bound.
    """
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", max_message)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="grpc-agents"),
                         options=options)
    server.add_generic_rpc_handlers((agent_reports_handler(mapper),))
    try:
        port = server.add_secure_port(listen, tls.credentials()) if tls else server.add_insecure_port(listen)
    except RuntimeError as exc:
        raise OSError(f"cannot listen on {listen}: {exc}") from None
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    server.start()
    return server, port
