"""The pipeline on real SDK traffic: azure-storage-blob/-queue and azure-data-tables against Azurite.

A TLS-terminating recorder sits between the SDK clients and Azurite and keeps the plaintext of
each direction in order, exactly what SSL_write/SSL_read see; those bytes become TlsEvents.
"""
from __future__ import annotations

import logging
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import pytest

from clearance.nodeagent.events import Direction, TlsEvent
from clearance.nodeagent.metrics import Metrics
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline
from logcheck import assert_not_logged

CANARY = "CANARYsdk7f3a9"
SEND_TIMEOUT_S = 10


@dataclass
class Recorder:
    """A TLS proxy in front of one Azurite port that records plaintext chunks per connection."""

    upstream: int
    server_ctx: ssl.SSLContext
    client_ctx: ssl.SSLContext
    chunks: list[tuple[int, Direction, bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> int:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []
        threading.Thread(target=self._accept, daemon=True).start()
        return self.listener.getsockname()[1]

    def _accept(self) -> None:
        n = 0
        while not self.stop_event.is_set():
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            n += 1
            t = threading.Thread(target=self._pump, args=(raw, n), daemon=True)
            t.start()
            self.threads.append(t)

    def _pump(self, raw: socket.socket, conn_id: int) -> None:
        try:
            down = self.server_ctx.wrap_socket(raw, server_side=True)
            up = self.client_ctx.wrap_socket(socket.create_connection(("127.0.0.1", self.upstream)),
                                             server_hostname="127.0.0.1")
        except (OSError, ssl.SSLError):
            raw.close()
            return
        pairs = {down: (up, Direction.WRITE), up: (down, Direction.READ)}
        try:
            # Non-blocking reads: a readable socket may hold only a TLS record without application
            # data (TLS 1.3 session tickets arrive right after the handshake). A blocking recv()
            # would then wait for data that the peer sends only after it gets the request this
            # thread is no longer forwarding: the proxy and both ends would wait forever.
            down.setblocking(False)
            up.setblocking(False)
            while not self.stop_event.is_set():
                ready = [s for s in pairs if s.pending()] or select.select(list(pairs), [], [], 0.2)[0]
                for s in ready:
                    try:
                        data = s.recv(65536)
                    except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                        continue  # a handshake-layer record only; no application data yet
                    if not data:
                        return
                    other, direction = pairs[s]
                    with self.lock:
                        self.chunks.append((conn_id, direction, data))
                    other.settimeout(SEND_TIMEOUT_S)  # bounded: a peer that never reads fails the call
                    try:
                        other.sendall(data)
                    finally:
                        other.setblocking(False)
        except (OSError, ssl.SSLError):
            return
        finally:
            down.close()
            up.close()

    def stop(self) -> None:
        self.stop_event.set()
        self.listener.close()
        for t in self.threads:
            t.join(timeout=5)


def tls_contexts(test_pki) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts for the test PKI's localhost certificate."""
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(str(test_pki.cert), str(test_pki.key))
    return server_ctx, ssl.create_default_context(cafile=str(test_pki.ca_cert))


@pytest.fixture
def recorders(azurite, test_pki):
    server_ctx, client_ctx = tls_contexts(test_pki)
    recs = {svc: Recorder(azurite.ports[svc], server_ctx, client_ctx) for svc in ("blob", "queue", "table")}
    ports = {svc: r.start() for svc, r in recs.items()}
    yield recs, ports
    for r in recs.values():
        r.stop()


def test_recorder_forwards_a_request_sent_after_the_upstream_session_tickets(test_pki):
    """Regression (the SDK test hung): a TLS 1.3 upstream sends session tickets right after the
    handshake; while they are the only thing readable, the recorder must keep forwarding the
    client's request instead of blocking in recv() for application data that cannot come."""
    server_ctx, client_ctx = tls_contexts(test_pki)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    handshaken = threading.Event()

    def upstream() -> None:
        raw, _ = listener.accept()
        with server_ctx.wrap_socket(raw, server_side=True) as conn:  # sends the tickets
            handshaken.set()
            conn.settimeout(15)
            got = b""
            while b"\r\n\r\n" not in got:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                got += chunk
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    server = threading.Thread(target=upstream, daemon=True)
    server.start()
    rec = Recorder(listener.getsockname()[1], server_ctx, client_ctx)
    port = rec.start()
    try:
        with client_ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                    server_hostname="localhost") as client:
            client.settimeout(15)  # the failure mode is a wait: bound it so the test fails instead
            assert handshaken.wait(15)
            assert client.version() == "TLSv1.3"
            time.sleep(0.5)  # let the tickets reach the recorder before the request does
            client.sendall(b"GET /c HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 204")
    finally:
        rec.stop()
        listener.close()
        server.join(timeout=5)
    with rec.lock:
        directions = [d for _, d, _ in rec.chunks]
    assert directions == [Direction.WRITE, Direction.READ]


def attempt(fn) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - the call's outcome is Azurite's business; we check what was seen
        pass


def test_sdk_traffic_through_the_pipeline(azurite, recorders, caplog):
    from azure.data.tables import TableServiceClient, UpdateMode
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    caplog.set_level(logging.DEBUG, logger="clearance")
    recs, ports = recorders
    cred = azurite.credential()
    # bounded waits (azure-core's default is 300 s per read): a stalled call fails, never hangs
    kw = {**azurite.sdk_kwargs(), "connection_timeout": 10, "read_timeout": 30}
    acct = azurite.account
    blob = BlobServiceClient(f"https://{acct}.blob.localhost:{ports['blob']}", credential=cred, **kw)
    queue = QueueServiceClient(f"https://127.0.0.1:{ports['queue']}/{acct}", credential=cred, **kw)
    tables = TableServiceClient(f"https://127.0.0.1:{ports['table']}/{acct}", credential=cred, **kw)

    c = blob.get_container_client("orders" + CANARY.lower()[-6:])
    attempt(c.create_container)
    b = c.get_blob_client(f"invoices/2025/{CANARY}-1.txt")
    attempt(lambda: b.upload_blob(CANARY.encode() * 8, overwrite=True, metadata={"note": CANARY}))
    attempt(lambda: b.download_blob().readall())
    attempt(lambda: list(c.list_blobs()))
    attempt(lambda: c.get_blob_client(f"copies/{CANARY}-2.txt").upload_blob_from_url(
        f"{b.url}?sv=2025-01-05&sr=b&sp=r&sig={CANARY}SIG", source_authorization=f"Bearer {CANARY}AUTH"))
    attempt(lambda: c.upload_blob(f"{CANARY}-3.txt", b"x", overwrite=True))
    attempt(lambda: c.delete_blobs(f"invoices/2025/{CANARY}-1.txt", f"{CANARY}-3.txt"))

    q = queue.get_queue_client("jobs" + CANARY.lower()[-6:])
    attempt(q.create_queue)
    attempt(lambda: q.send_message(CANARY))
    attempt(lambda: q.peek_messages())
    for m in q.receive_messages():
        attempt(lambda m=m: q.delete_message(m))

    t = tables.get_table_client("orders" + CANARY[-6:])
    attempt(t.create_table)
    attempt(lambda: t.upsert_entity({"PartitionKey": CANARY + "PK", "RowKey": CANARY + "RK", "v": CANARY},
                                    mode=UpdateMode.MERGE))
    attempt(lambda: t.submit_transaction([
        ("upsert", {"PartitionKey": CANARY + "PK", "RowKey": "r2", "v": CANARY}),
        ("delete", {"PartitionKey": CANARY + "PK", "RowKey": CANARY + "RK"})]))
    attempt(lambda: list(t.query_entities(f"PartitionKey eq '{CANARY}PK'")))
    for client in (blob, queue, tables):
        client.close()
    token = cred.get_token("https://storage.azure.com/.default").token

    endpoints = EndpointMatcher.from_flags([
        f"blob=https://{{account}}.blob.localhost:{ports['blob']}",
        f"queue=https://127.0.0.1:{ports['queue']}/{{account}}",
        f"table=https://127.0.0.1:{ports['table']}/{{account}}"])

    class NoPods:
        def get(self, uid):
            return None

    metrics = Metrics()
    pipe = Pipeline(endpoints, Attributor(NoPods(), "node-1"), metrics)
    events = [(svc, cid, d, data) for svc, r in recs.items() for cid, d, data in r.chunks]
    assert events, "the recorder saw no traffic"
    for i, (svc, cid, direction, data) in enumerate(events):
        conn = hash((svc, cid)) & 0xFFFFFFFF
        pipe.feed(TlsEvent(direction, 1000, 1000, 1, conn, i, data, len(data)))
    calls = pipe.drain(final=True)
    seen = {(c.service, c.method, c.path, tuple(sorted(c.query.items()))): c for c in calls}
    cont = "/orders" + CANARY.lower()[-6:]
    expected = [
        ("blob", "PUT", cont, (("restype", "container"),)),
        ("blob", "PUT", cont + "/{name}", ()),
        ("blob", "GET", cont + "/{name}", ()),
        ("blob", "GET", cont, (("comp", "list"), ("restype", "container"))),
        ("blob", "POST", cont, (("comp", "batch"), ("restype", "container"))),
        ("blob", "DELETE", cont + "/{name}", ()),
        ("queue", "PUT", "/jobs" + CANARY.lower()[-6:], ()),
        ("queue", "POST", "/jobs" + CANARY.lower()[-6:] + "/messages", ()),
        ("queue", "GET", "/jobs" + CANARY.lower()[-6:] + "/messages", (("peekonly", "true"),)),
        ("queue", "GET", "/jobs" + CANARY.lower()[-6:] + "/messages", ()),
        ("queue", "DELETE", "/jobs" + CANARY.lower()[-6:] + "/messages/{name}", (("popreceipt", "*"),)),
        ("table", "POST", "/Tables", ()),
        ("table", "PATCH", "/orders" + CANARY[-6:] + "(PartitionKey='{key}',RowKey='{key}')", ()),
        ("table", "POST", "/$batch", ()),
        ("table", "DELETE", "/orders" + CANARY[-6:] + "(PartitionKey='{key}',RowKey='{key}')", ()),
        ("table", "GET", "/orders" + CANARY[-6:] + "()", ()),
    ]
    missing = [e for e in expected if e not in seen]
    assert not missing, f"missing {missing}; seen {sorted(seen)}"
    assert all(c.account == acct for c in calls)
    assert seen[expected[0]].status == 201
    assert seen[expected[1]].headers["x-ms-blob-type"] == "BlockBlob"
    copies = [c for c in calls if "x-ms-copy-source" in c.headers]
    assert copies and copies[0].headers["x-ms-copy-source"] == (
        f"https://{acct}.blob.localhost:{ports['blob']}{cont}")
    assert metrics.value("clearance_agent_ignored_total", {"reason": "unpaired_response"}) == 0
    assert all(c.status for c in calls if c.path != cont + "/{name}" or c.method != "DELETE"), \
        [(c.method, c.path) for c in calls if not c.status]
    for c in calls:
        wire = c.SerializeToString()
        for secret in (CANARY, CANARY.lower(), token):
            if secret == CANARY.lower():
                continue  # lower-cased suffix appears in container/queue names on purpose
            assert secret.encode() not in wire, (secret, c)
    assert_not_logged(caplog.records, CANARY, token)
