"""Reporter against a real in-test gRPC server: auth metadata, outage and recovery, overflow, and
what each refusal status does to a batch (retry, split, drop and count)."""
from __future__ import annotations

import logging
import socket
import threading
import time
from concurrent import futures

import grpc
import pytest

from clearance.nodeagent.metrics import Metrics
from clearance.nodeagent.reporter import Reporter
from clearance.v1 import report_pb2, report_pb2_grpc
from logcheck import assert_not_logged, logged


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver(report_pb2_grpc.AgentReportsServicer):
    """Records every request with its metadata; can fail the first ``fail`` calls."""

    def __init__(self, fail: int = 0, token: str | None = None,
                 refusals: list[tuple[grpc.StatusCode, str]] | None = None, bad_path: str | None = None,
                 stall_first_s: float = 0.0) -> None:
        self.requests: list[report_pb2.ReportRequest] = []
        self.attempts: list[int] = []
        self.metadata: list[dict[str, str]] = []
        self.fail = fail
        self.token = token
        self.refusals = list(refusals or [])  # answered to the first attempts, in order
        self.bad_path = bad_path  # a batch holding a call with this path is INVALID_ARGUMENT
        self.stall_first_s = stall_first_s
        self.lock = threading.Lock()

    def Report(self, request, context):
        md = dict(context.invocation_metadata())
        with self.lock:
            first = not self.attempts
            self.attempts.append(request.sequence)
            self.metadata.append(md)
        if first and self.stall_first_s:
            time.sleep(self.stall_first_s)  # longer than the agent's deadline
        with self.lock:
            if self.token is not None and md.get("authorization") != f"Bearer {self.token}":
                context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
            if self.fail > 0:
                self.fail -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "try later")
            if self.refusals:
                code, details = self.refusals.pop(0)
                context.abort(code, details)
            if self.bad_path and any(c.path == self.bad_path for c in request.calls):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"calls[0]: path {self.bad_path!r} is malformed")
            self.requests.append(request)
        return report_pb2.ReportResponse(accepted=len(request.calls))

    def calls(self) -> list[report_pb2.ObservedCall]:
        with self.lock:
            return [c for r in self.requests for c in r.calls]


def serve(receiver: Receiver, port: int, max_message: int | None = None) -> grpc.Server:
    options = [("grpc.max_receive_message_length", max_message)] if max_message else []
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2), options=options)
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

    def start(receiver: Receiver, port: int | None = None, max_message: int | None = None) -> int:
        port = port or free_port()
        servers.append(serve(receiver, port, max_message))
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


CANARY = "canary-token-5f1e9d2c7b"


def dropped(metrics: Metrics, code: str) -> float:
    return metrics.value("clearance_agent_reports_dropped_total", {"code": code})


def test_invalid_argument_drops_only_the_refused_call(mapper, caplog):
    rx = Receiver(bad_path="/c5/{name}")
    port = mapper(rx)
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", CANARY, 100, "node-a", metrics=metrics, batch_size=8,
                   backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        with caplog.at_level(logging.INFO, logger="clearance.agent.reporter"):
            rep.submit([call(i) for i in range(8)])
            assert wait_for(lambda: rep.pending() == 0)
            rep.submit([call(100)])  # the buffer is not blocked by the refused call
            assert wait_for(lambda: any(c.path == "/c100/{name}" for c in rx.calls()))
        assert sorted(c.path for c in rx.calls()) == sorted(f"/c{i}/{{name}}" for i in [*range(8), 100] if i != 5)
        assert rep.dropped_calls == 1 and rep.dropped_batches == 1
        assert dropped(metrics, "INVALID_ARGUMENT") == 1
        assert metrics.value("clearance_agent_report_dropped_calls_total") == 1
        assert rx.requests[-1].lost_events == 1  # the mapper hears that a call was dropped
        drops = [r for r in caplog.records if "refused permanently" in r.getMessage()]
        assert len(drops) == 1 and drops[0].fields["code"] == "INVALID_ARGUMENT" and drops[0].fields["calls"] == 1
        assert "malformed" in drops[0].fields["reason"]
        assert_not_logged(caplog.records, CANARY)
    finally:
        rep.close()


def test_permission_denied_drops_the_batch_at_once_without_leaking_the_token(mapper, caplog):
    rx = Receiver(refusals=[(grpc.StatusCode.PERMISSION_DENIED,
                             f"system:serviceaccount:x:y is not the agent's ServiceAccount (Bearer {CANARY})")])
    port = mapper(rx)
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", CANARY, 100, "node-a", metrics=metrics,
                   backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        with caplog.at_level(logging.INFO, logger="clearance.agent.reporter"):
            rep.submit([call(1), call(2)])
            assert wait_for(lambda: rep.dropped_batches == 1)
            rep.submit([call(3)])
            assert wait_for(lambda: len(rx.requests) == 1)
        assert rx.attempts == [1, 2]  # the refused batch was not retried
        assert [c.path for c in rx.calls()] == ["/c3/{name}"]
        assert dropped(metrics, "PERMISSION_DENIED") == 1 and rep.dropped_calls == 2
        lines = logged(caplog.records)
        assert "is not the agent's ServiceAccount" in lines and "[redacted]" in lines
        assert_not_logged(caplog.records, CANARY)
    finally:
        rep.close()


def test_unauthenticated_is_retried_with_the_reread_token(mapper):
    rx = Receiver(token="rotated-token")
    port = mapper(rx)
    metrics = Metrics()
    token_file = lambda: "rotated-token" if len(rx.attempts) >= 2 else "old-token"  # noqa: E731 - rotated after two tries
    rep = Reporter(f"127.0.0.1:{port}", token_file, 100, "node-a", metrics=metrics,
                   backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        rep.submit([call(1)])
        assert wait_for(lambda: len(rx.requests) == 1)
        assert rx.attempts == [1, 1, 1]
        assert [m["authorization"] for m in rx.metadata] == ["Bearer old-token"] * 2 + ["Bearer rotated-token"]
        assert rep.dropped_batches == 0 and dropped(metrics, "UNAUTHENTICATED") == 0
    finally:
        rep.close()


def test_unauthenticated_for_good_is_dropped_after_a_few_retries(mapper, caplog):
    rx = Receiver(token="the-right-token")
    port = mapper(rx)
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", CANARY, 100, "node-a", metrics=metrics, bounded_retries=2,
                   backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        with caplog.at_level(logging.INFO, logger="clearance.agent.reporter"):
            rep.submit([call(1)])
            assert wait_for(lambda: rep.dropped_batches == 1)
        assert rx.attempts == [1, 1, 1]  # one try and two retries
        assert dropped(metrics, "UNAUTHENTICATED") == 1 and rep.pending() == 0
        assert_not_logged(caplog.records, CANARY)
    finally:
        rep.close()


def test_transient_refusals_are_retried_under_the_same_sequence(mapper):
    rx = Receiver(stall_first_s=1.0, refusals=[
        (grpc.StatusCode.RESOURCE_EXHAUSTED, "mapper overloaded, try later"),
        (grpc.StatusCode.UNAVAILABLE, "store busy")] * 3)
    port = mapper(rx)
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", None, 100, "node-a", metrics=metrics, rpc_timeout_s=0.3,
                   bounded_retries=0, backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        rep.submit([call(1), call(2)])
        assert wait_for(lambda: rep.sent_batches == 1)
        assert len(rx.attempts) >= 7 and set(rx.attempts) == {1}  # a deadline, then six refusals
        assert rep.dropped_batches == 0 and rep.pending() == 0
        assert metrics.value("clearance_agent_report_errors_total") >= 7
    finally:
        rep.close()


def test_a_batch_too_large_for_the_mapper_is_split(mapper):
    rx = Receiver()
    port = mapper(rx, max_message=4096)
    metrics = Metrics()
    rep = Reporter(f"127.0.0.1:{port}", None, 1000, "node-a", metrics=metrics, batch_size=200,
                   backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        rep.submit([call(i) for i in range(200)])  # ~100 bytes each: 20 kB in one batch
        assert wait_for(lambda: rep.pending() == 0)
        assert sorted(c.path for c in rx.calls()) == sorted(f"/c{i}/{{name}}" for i in range(200))
        assert all(r.ByteSize() <= 4096 for r in rx.requests) and rep.dropped_batches == 0
        huge = call(999)
        huge.path = "/" + "x" * 8000  # alone larger than the mapper accepts: dropped, not retried forever
        rep.submit([huge, call(1000)])
        assert wait_for(lambda: rep.pending() == 0)
        assert rep.dropped_calls == 1 and dropped(metrics, "RESOURCE_EXHAUSTED") == 1
        assert rx.calls()[-1].path == "/c1000/{name}"
    finally:
        rep.close()


def test_plaintext_is_announced_by_one_warning(mapper, caplog):
    rx = Receiver()
    port = mapper(rx)
    with caplog.at_level(logging.WARNING, logger="clearance.agent.reporter"):
        rep = Reporter(f"127.0.0.1:{port}", CANARY, 100, "node-a", batch_size=1)
        try:
            rep.submit([call(1), call(2), call(3)])
            assert wait_for(lambda: len(rx.calls()) == 3)
        finally:
            rep.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "unencrypted" in warnings[0]
    assert_not_logged(caplog.records, CANARY)


def test_tls_to_a_receiver_signed_by_the_mapper_ca(test_pki, caplog):
    rx = Receiver(token="agent-token-1")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    report_pb2_grpc.add_AgentReportsServicer_to_server(rx, server)
    port = server.add_secure_port("127.0.0.1:0", grpc.ssl_server_credentials(
        [(test_pki.key.read_bytes(), test_pki.cert.read_bytes())]))
    server.start()
    try:
        with caplog.at_level(logging.WARNING, logger="clearance.agent.reporter"):
            rep = Reporter(f"localhost:{port}", "agent-token-1", 100, "node-a", mapper_ca=str(test_pki.ca_cert))
            try:
                rep.submit([call(1)])
                assert wait_for(lambda: len(rx.calls()) == 1)
            finally:
                rep.close()
        assert rx.metadata[0]["authorization"] == "Bearer agent-token-1"
        assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    finally:
        server.stop(grace=None)


def test_bad_mapper_ca_flags_are_clear_errors(tmp_path, test_pki):
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ValueError, match=f"--mapper-ca {missing}: cannot read"):
        Reporter("127.0.0.1:1", None, 10, "n", mapper_ca=str(missing))
    with pytest.raises(ValueError, match="--mapper-ca .*: no PEM certificate"):
        Reporter("127.0.0.1:1", None, 10, "n", mapper_ca=str(test_pki.key))
    with pytest.raises(ValueError, match="--mapper-server-name needs --mapper-ca"):
        Reporter("127.0.0.1:1", None, 10, "n", server_name="clearance-mapper.clearance-system.svc")


def test_token_file_is_reread_only_when_it_changes(tmp_path, mapper):
    """Cached by (mtime_ns, size, inode): a kubelet-style rotation (a symlink swapped to a new file)
    is picked up by the next RPC; an unchanged file is not read again; a vanished one keeps the last."""
    import os

    from clearance.nodeagent.main import TokenFile

    def project(name: str, token: str) -> None:  # kubelet: write a new dir, swap the ..data symlink
        (tmp_path / name).mkdir()
        (tmp_path / name / "token").write_text(token + "\n")
        os.symlink(name, tmp_path / "..data_tmp")
        os.replace(tmp_path / "..data_tmp", tmp_path / "..data")

    project("v1", "token-one")
    (tmp_path / "token").symlink_to("..data/token")
    tokens = TokenFile(str(tmp_path / "token"))
    assert tokens() == "token-one"

    st = (tmp_path / "v1" / "token").stat()
    (tmp_path / "v1" / "token").write_text("token-xxx\n")  # same size, same inode, mtime put back
    os.utime(tmp_path / "v1" / "token", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tokens() == "token-one"  # the cache key did not change: not read again

    rx = Receiver(token="token-two")
    rep = Reporter(f"127.0.0.1:{mapper(rx)}", tokens, 100, "node-a", backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        project("v2", "token-two")
        rep.submit([call(1)])
        assert wait_for(lambda: len(rx.requests) == 1)
        assert rx.metadata[-1]["authorization"] == "Bearer token-two"
    finally:
        rep.close()

    os.unlink(tmp_path / "..data")  # mid-rotation: the link is gone for a moment
    assert tokens() == "token-two"
    with pytest.raises(ValueError, match="--token-file"):
        TokenFile(str(tmp_path / "token"))


def test_a_failing_lost_events_count_neither_stops_reporting_nor_loses_calls(mapper, caplog):
    """The agent's lost count once came from a dict the poll thread mutates ("dictionary changed size
    during iteration"): such a failure must not kill the sender thread nor drop the batch's calls."""
    rx = Receiver()
    port = mapper(rx)
    answers: list[object] = [RuntimeError("dictionary changed size during iteration")] * 3 + [7, 2**70]

    def lost_events() -> int:
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer  # type: ignore[return-value]

    rep = Reporter(f"127.0.0.1:{port}", CANARY, 100, "node-a", lost_events=lost_events,
                   backoff_initial_s=0.01, backoff_max_s=0.05)
    try:
        with caplog.at_level(logging.INFO, logger="clearance.agent.reporter"):
            for i in range(5):
                rep.submit([call(i)])
                assert wait_for(lambda: len(rx.requests) == i + 1), f"round {i}: the sender stopped"
        assert [c.path for c in rx.calls()] == [f"/c{i}/{{name}}" for i in range(5)]
        assert [r.lost_events for r in rx.requests] == [0, 0, 0, 7, 2**64 - 1]
        assert rep._thread.is_alive()
        assert sum("lost-events count unavailable" in r.getMessage() for r in caplog.records) == 3
        assert_not_logged(caplog.records, CANARY)
    finally:
        rep.close()
