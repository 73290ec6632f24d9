"""TLS peers for capture tests and benchmarks: a client over memory BIOs, and a small HTTPS server."""
from __future__ import annotations

import socket
import ssl
import threading
from pathlib import Path
from typing import Any

OK = b"HTTP/1.1 200 OK\r\nx-ms-error-code: Fine\r\nContent-Length: 0\r\n\r\n"


def memory_tls_client(pki: Any) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:
    """A TLS client in this process, connected to a server over memory BIOs (its writes are SSL_write_ex);
    returns the client and the BIO its records go to."""
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert, pki.key)
    cctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for obj in (client, server):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()
    return client, c_out


def https_server(cert: str | Path, key: str | Path, stop: threading.Event, *, delay_s: float = 0.0,
                 response: bytes = OK) -> tuple[int, threading.Thread]:
    """Answer every request head with ``response`` until ``stop``; ``delay_s`` before each handshake
    plays a distant endpoint. Returns the port and the serving thread (it closes the socket)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    srv = socket.create_server(("127.0.0.1", 0))
    srv.settimeout(0.2)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            try:
                stop.wait(delay_s)
                with ctx.wrap_socket(conn, server_side=True) as s:
                    s.settimeout(2)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    s.sendall(response)
            except OSError:
                pass
        srv.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return srv.getsockname()[1], thread
