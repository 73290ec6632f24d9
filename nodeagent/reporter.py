"""Stage 7: send observed calls to the mapper over gRPC, in batches, surviving mapper outages.

``submit()`` merges calls into a bounded buffer (duplicates merge; a new distinct call beyond the
bound is counted as overflow, never silently dropped). A background thread sends a batch as soon
as there is something to send, retries a failed batch with capped exponential backoff under the
same sequence number, and authenticates with ``authorization: Bearer <token>`` metadata.
"""
from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Callable

import grpc

from clearance.nodeagent.metrics import Metrics
from clearance.v1 import report_pb2, report_pb2_grpc

log = logging.getLogger("clearance.agent.reporter")


def call_key(call: report_pb2.ObservedCall) -> bytes:
    """The identity of a call for merging: everything except count and first/last seen."""
    bare = report_pb2.ObservedCall()
    bare.CopyFrom(call)
    bare.count = 0
    bare.first_seen_unix_ms = 0
    bare.last_seen_unix_ms = 0
    return bare.SerializeToString(deterministic=True)


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()[:8]
    except OSError:
        return "noboot"


class Reporter:
    """Batches ObservedCalls to the mapper's ``AgentReports.Report`` from a background thread."""

    def __init__(self, mapper_addr: str, token: str | Callable[[], str] | None, buffer_size: int, node: str,
                 *, metrics: Metrics | None = None, lost_events: Callable[[], int] | None = None,
                 batch_size: int = 500, backoff_initial_s: float = 0.2, backoff_max_s: float = 5.0,
                 rpc_timeout_s: float = 10.0, credentials: grpc.ChannelCredentials | None = None) -> None:
        if buffer_size < 1:
            raise ValueError(f"--buffer-size {buffer_size}: must be at least 1")
        self.node = node
        self.agent_id = f"{node}/{_boot_id()}/{os.getpid()}-{time.time_ns() // 1_000_000}"
        self.metrics = metrics or Metrics()
        self._token = token
        self._lost_events = lost_events
        self._buffer_size = buffer_size
        self._batch_size = max(1, batch_size)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._rpc_timeout = rpc_timeout_s
        self._channel = (grpc.secure_channel(mapper_addr, credentials) if credentials
                         else grpc.insecure_channel(mapper_addr))
        self._stub = report_pb2_grpc.AgentReportsStub(self._channel)
        self._buffer: OrderedDict[bytes, tuple[report_pb2.ObservedCall, float]] = OrderedDict()
        self._inflight: report_pb2.ReportRequest | None = None
        self._inflight_since = 0.0
        self._sequence = 0
        self.overflow = 0
        self.sent_batches = 0
        self._cond = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="reporter", daemon=True)
        self._thread.start()

    # -- producer side -----------------------------------------------------------------------
    def submit(self, calls: list[report_pb2.ObservedCall]) -> None:
        """Queue calls for the mapper; returns at once."""
        if not calls:
            return
        now = time.monotonic()
        with self._cond:
            for call in calls:
                key = call_key(call)
                held = self._buffer.get(key)
                if held is not None:
                    merged = held[0]
                    merged.count += call.count
                    if call.first_seen_unix_ms and (not merged.first_seen_unix_ms
                                                    or call.first_seen_unix_ms < merged.first_seen_unix_ms):
                        merged.first_seen_unix_ms = call.first_seen_unix_ms
                    merged.last_seen_unix_ms = max(merged.last_seen_unix_ms, call.last_seen_unix_ms)
                elif self._held() < self._buffer_size:
                    copy = report_pb2.ObservedCall()
                    copy.CopyFrom(call)
                    self._buffer[key] = (copy, now)
                else:
                    self.overflow += 1
                    self.metrics.report_overflow.inc()
            self.metrics.buffer_fill.set(self._held())
            self._cond.notify_all()

    def _held(self) -> int:
        return len(self._buffer) + (len(self._inflight.calls) if self._inflight is not None else 0)

    def pending(self) -> int:
        """Distinct calls not yet acknowledged by the mapper."""
        with self._cond:
            return self._held()

    def close(self, timeout: float = 5.0) -> None:
        """Try to deliver what is buffered for up to ``timeout`` seconds, then stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._held() and time.monotonic() < deadline and self._thread.is_alive():
                self._cond.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=max(0.5, deadline - time.monotonic()) + self._rpc_timeout)
        self._channel.close()

    # -- sender thread -----------------------------------------------------------------------
    def _metadata(self) -> list[tuple[str, str]]:
        token = self._token() if callable(self._token) else self._token
        return [("authorization", f"Bearer {token}")] if token else []

    def _next_batch(self) -> None:
        """Move up to batch_size calls from the buffer into a new in-flight request (lock held)."""
        calls = []
        oldest = time.monotonic()
        while self._buffer and len(calls) < self._batch_size:
            _, (call, since) = self._buffer.popitem(last=False)
            calls.append(call)
            oldest = min(oldest, since)
        self._sequence += 1
        lost = self.overflow + (self._lost_events() if self._lost_events else 0)
        self._inflight = report_pb2.ReportRequest(agent_id=self.agent_id, node=self.node,
                                                  sequence=self._sequence, calls=calls, lost_events=lost)
        self._inflight_since = oldest

    def _run(self) -> None:
        backoff = self._backoff_initial
        while True:
            with self._cond:
                while not self._stop and self._inflight is None and not self._buffer:
                    self._cond.wait(1.0)
                if self._stop:
                    return
                if self._inflight is None:
                    self._next_batch()
                request = self._inflight
            try:
                self._stub.Report(request, metadata=self._metadata(), timeout=self._rpc_timeout)
            except grpc.RpcError as exc:
                self.metrics.report_errors.inc()
                code = exc.code() if hasattr(exc, "code") else None
                log.warning("report failed; will retry", extra={"fields": {
                    "code": getattr(code, "name", "unknown"), "sequence": request.sequence,
                    "calls": len(request.calls), "retry_in_s": round(backoff, 2)}})
                with self._cond:
                    if not self._stop:
                        self._cond.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            except Exception as exc:  # a serialisation or channel bug must not kill the thread
                self.metrics.report_errors.inc()
                log.warning("report failed; will retry", extra={"fields": {"error": type(exc).__name__}})
                with self._cond:
                    if not self._stop:
                        self._cond.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max)
                continue
            backoff = self._backoff_initial
            with self._cond:
                self.metrics.report_latency.observe(time.monotonic() - self._inflight_since)
                self.metrics.reports_sent.inc()
                self.sent_batches += 1
                self._inflight = None
                self.metrics.buffer_fill.set(self._held())
                self._cond.notify_all()
