"""Reporter against a real in-test gRPC server: auth metadata, outage and recovery, overflow."""
from __future__ import annotations

import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from clearance.nodeagent.metrics import Metrics
from clearance.nodeagent.reporter import Reporter
from clearance.v1 import report_pb2, report_pb2_grpc


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(report_pb2_grpc.AgentReportsServicer):
    """Records every request with its metadata; can fail the first ``fail`` calls."""

    def __init__(self, fail: int = 0, token: str | None = None) -> None:
        self.requests: list[report_pb2.ReportRequest] = []
        self.attempts: list[int] = []
        self.metadata: list[dict[str, str]] = []
        self.fail = fail
        self.token = token
        self.lock = threading.Lock()

    def Report(self, request, context):
        md = dict(context.invocation_metadata())
        with self.lock:
            self.attempts.append(request.sequence)
            self.metadata.append(md)
            if self.token is not None and md.get("authorization") != f"Bearer {self.token}":
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
            if self.fail > 0:
                self.fail -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "try later")
            self.requests.append(request)
        return report_pb2.ReportResponse(accepted=len(request.calls))

    def calls(self) -> list[report_pb2.ObservedCall]:
        with self.lock:
            return [c for r in self.requests for c in r.calls]


def serve(receiver: Receiver, port: int) -> grpc.Server:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    report_pb2_grpc.add_AgentReportsServicer_to_server(receiver, server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    return server


def wait_for(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.02)
    return cond()


def call(i: int, count: int = 1, pod: str = "orders-1", t: int = 1_700_000_000_000) -> report_pb2.ObservedCall:
    return report_pb2.ObservedCall(
        caller=report_pb2.Caller(namespace="shop", pod_name=pod, node="n1"), service="blob",
        account="acct", host="acct.blob.core.windows.net", method="GET", path=f"/c{i}/{{name}}",
        count=count, first_seen_unix_ms=t, last_seen_unix_ms=t)


@pytest.fixture
def mapper():
    servers: list[grpc.Server] = []

    def start(receiver: Receiver, port: int | None = None) -> int:
        port = port or free_port()
        servers.append(serve(receiver, port))
        return port

    yield start
    for s in servers:
        s.stop(grace=None)


def test_sends_batches_with_bearer_token(mapper):
    rx = Receiver(token="agent-token-1")
    port = mapper(rx)
    rep = Reporter(f"127.0.0.1:{port}", "agent-token-1", 100, "node-a")
    try:
        rep.submit([call(1), call(2), call(1, count=2)])
        assert wait_for(lambda: len(rx.calls()) == 2)
        assert rx.metadata[0]["authorization"] == "Bearer agent-token-1"
        req = rx.requests[0]
        assert req.node == "node-a" and req.sequence == 1 and req.agent_id.startswith("node-a/")
        counts = {c.path: c.count for c in rx.calls()}
        assert counts == {"/c1/{name}": 3, "/c2/{name}": 1}
        assert rep.metrics.value("clearance_agent_report_latency_seconds_count") == 1
    finally:
        rep.close()


def test_mapper_down_then_up_loses_nothing_distinct(mapper):
    port = free_port()
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", "t", 1000, "node-a", metrics=metrics,
                   backoff_initial_s=0.05, backoff_max_s=0.2)
    try:
        rep.submit([call(i) for i in range(300)])
        assert wait_for(lambda: metrics.value("clearance_agent_report_errors_total") >= 2)
        rep.submit([call(i, count=4, t=1_700_000_001_000) for i in range(0, 300, 3)])  # duplicates merge
        rep.submit([call(i) for i in range(300, 320)])
        rx = Receiver()
        mapper(rx, port)
        assert wait_for(lambda: rep.pending() == 0)
        got: dict[str, report_pb2.ObservedCall] = {}
        for c in rx.calls():
            prev = got.get(c.path)
            if prev is None:
                got[c.path] = c
            else:
                prev.count += c.count
        assert len(got) == 320
        assert sum(c.count for c in got.values()) == 320 + 100 * 4
        assert sorted(r.sequence for r in rx.requests) == list(range(1, len(rx.requests) + 1))
        assert rep.overflow == 0
        assert metrics.value("clearance_agent_buffer_fill") == 0
    finally:
        rep.close()


def test_retried_batch_keeps_its_sequence_number(mapper):
    rx = Receiver(fail=3)
    port = mapper(rx)
    rep = Reporter(f"127.0.0.1:{port}", None, 100, "node-a", backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        rep.submit([call(1), call(2)])
        assert wait_for(lambda: len(rx.requests) == 1)
        assert rx.attempts[:4] == [1, 1, 1, 1]
        assert "authorization" not in rx.metadata[0]
        assert len(rx.requests[0].calls) == 2
    finally:
        rep.close()


def test_overflow_is_counted_and_reported(mapper):
    port = free_port()
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", "t", 10, "node-a", metrics=metrics, batch_size=4,
                   backoff_initial_s=0.05, backoff_max_s=0.1, lost_events=lambda: 7)
    try:
        rep.submit([call(i) for i in range(15)])
        rep.submit([call(0, count=5)])  # a duplicate of a held call merges, it does not overflow
        assert rep.overflow == 5
        assert metrics.value("clearance_agent_report_overflow_total") == 5
        assert metrics.value("clearance_agent_buffer_fill") == 10
        rx = Receiver()
        mapper(rx, port)
        assert wait_for(lambda: rep.pending() == 0)
        calls = rx.calls()
        assert len({c.path for c in calls}) == 10
        assert sum(c.count for c in calls) == 10 + 5
        assert max(r.lost_events for r in rx.requests) == 5 + 7
    finally:
        rep.close()


def test_rejects_zero_buffer():
    with pytest.raises(ValueError, match="--buffer-size"):
        Reporter("127.0.0.1:1", None, 0, "n")
