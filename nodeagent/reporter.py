"""Stage 7: send observed calls to the mapper over gRPC, in batches, surviving mapper outages.

``submit()`` merges calls into a bounded buffer (duplicates merge; a new distinct call beyond the
bound is counted as overflow, never silently dropped). A background thread sends a batch as soon
as there is something to send and authenticates with ``authorization: Bearer <token>`` metadata.

What a refusal does to a batch (see ``Verdict``): transient statuses are retried with capped
exponential backoff under the same sequence number, forever; a batch too large for the mapper is
split in halves (new sequence numbers: the mapper never stored it); UNAUTHENTICATED is retried a
few times with the token re-read (a rotated projected token), then dropped; INVALID_ARGUMENT
bisects the batch so only the calls the mapper refuses are dropped; other refusals drop the batch
at once. Every drop is counted and logged without secrets.

Transport: with ``mapper_ca`` (``--mapper-ca``) a TLS channel that verifies the mapper's
certificate against that CA (for ``server_name``, default the host of the mapper address);
without it plaintext, announced by one warning at start.
"""
from __future__ import annotations

import enum
import logging
import os
import re
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

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


TRANSIENT = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                       grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.ABORTED, grpc.StatusCode.CANCELLED})
BOUNDED = frozenset({grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL})
_TOO_LARGE = re.compile(r"larger than max|message too large|too large", re.IGNORECASE)
_BEARER = re.compile(r"(?i)bearer\s+\S+")


class Verdict(enum.Enum):
    RETRY = "retry"      # send the same batch again after a backoff
    SPLIT = "split"      # send each half as a new batch
    DROP = "drop"        # the mapper will never take it


def verdict(code: grpc.StatusCode | None, details: str, calls: int, attempts: int, bounded_retries: int) -> Verdict:
    """What to do with a batch of ``calls`` calls refused with ``code`` on its ``attempts``-th try."""
    too_large = code == grpc.StatusCode.RESOURCE_EXHAUSTED and bool(_TOO_LARGE.search(details))
    if too_large or code == grpc.StatusCode.INVALID_ARGUMENT:
        return Verdict.SPLIT if calls > 1 else Verdict.DROP
    if code in TRANSIENT:
        return Verdict.RETRY
    if code in BOUNDED or code is None:
        return Verdict.RETRY if attempts <= bounded_retries else Verdict.DROP
    return Verdict.DROP


def safe_details(details: str, token: str | None) -> str:
    """The mapper's explanation for a log line: short, and without bearer tokens."""
    text = _BEARER.sub("Bearer [redacted]", details or "")
    if token:
        text = text.replace(token, "[redacted]")
    return text[:200]


def mapper_channel(mapper_addr: str, mapper_ca: str | None = None, server_name: str | None = None,
                   credentials: grpc.ChannelCredentials | None = None) -> grpc.Channel:
    """The channel to the mapper: TLS verified against ``mapper_ca`` (or ``credentials``), else plaintext.

    Raises ValueError naming the flag when the CA file cannot be read or holds no certificate.
    """
    if mapper_ca:
        try:
            ca = Path(mapper_ca).read_bytes()
        except OSError as exc:
            raise ValueError(f"--mapper-ca {mapper_ca}: cannot read it ({exc.strerror or exc})") from None
        if b"-----BEGIN CERTIFICATE-----" not in ca:
            raise ValueError(f"--mapper-ca {mapper_ca}: no PEM certificate in it")
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    elif server_name:
        raise ValueError("--mapper-server-name needs --mapper-ca (it names the certificate to verify)")
    if credentials is None:
        log.warning("no --mapper-ca: reports and the agent's token travel to the mapper unencrypted",
                    extra={"fields": {"mapper": mapper_addr}})
        return grpc.insecure_channel(mapper_addr)
    options: list[tuple[str, Any]] = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    return grpc.secure_channel(mapper_addr, credentials, options=options)


@dataclass
class _Batch:
    request: report_pb2.ReportRequest
    since: float      # monotonic time its oldest call was submitted
    attempts: int = 0


class Reporter:
    """Batches ObservedCalls to the mapper's ``AgentReports.Report`` from a background thread."""

    def __init__(self, mapper_addr: str, token: str | Callable[[], str] | None, buffer_size: int, node: str,
                 *, metrics: Metrics | None = None, lost_events: Callable[[], int] | None = None,
                 batch_size: int = 500, backoff_initial_s: float = 0.2, backoff_max_s: float = 5.0,
                 rpc_timeout_s: float = 10.0, credentials: grpc.ChannelCredentials | None = None,
                 bounded_retries: int = 5, mapper_ca: str | None = None,
                 server_name: str | None = None) -> None:
        if buffer_size < 1:
            raise ValueError(f"--buffer-size {buffer_size}: must be at least 1")
        self._channel = mapper_channel(mapper_addr, mapper_ca, server_name, credentials)
        self.node = node
        self.agent_id = f"{node}/{_boot_id()}/{os.getpid()}-{time.time_ns() // 1_000_000}"
        self.metrics = metrics or Metrics()
        self._token = token
        self._lost_events = lost_events
        self._lost_seen = 0
        self._buffer_size = buffer_size
        self._batch_size = max(1, batch_size)
        self._backoff_initial = backoff_initial_s
        self._backoff_max = backoff_max_s
        self._rpc_timeout = rpc_timeout_s
        self._bounded_retries = bounded_retries
        self._stub = report_pb2_grpc.AgentReportsStub(self._channel)
        self._buffer: OrderedDict[bytes, tuple[report_pb2.ObservedCall, float]] = OrderedDict()
        self._outbox: deque[_Batch] = deque()  # the first one is in flight
        self._sequence = 0
        self.overflow = 0
        self.dropped_calls = 0
        self.dropped_batches = 0
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
        return len(self._buffer) + sum(len(b.request.calls) for b in self._outbox)

    def pending(self) -> int:
        """Distinct calls not yet acknowledged (nor dropped)."""
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
    def _current_token(self) -> str | None:
        return self._token() if callable(self._token) else self._token

    def _metadata(self) -> list[tuple[str, str]]:
        token = self._current_token()
        return [("authorization", f"Bearer {token}")] if token else []

    def _capture_lost(self) -> int:
        """Events lost before the reporter (``lost_events``); the last value seen if it fails now."""
        if self._lost_events is not None:
            try:
                self._lost_seen = max(0, int(self._lost_events()))
            except Exception as exc:  # noqa: BLE001 - a count must never cost the batch its calls
                log.warning("lost-events count unavailable", extra={"fields": {"error": type(exc).__name__}})
        return self._lost_seen

    def _safe_token(self) -> str | None:
        try:
            return self._current_token()
        except Exception:  # noqa: BLE001 - only for redaction; the RPC path reports its own error
            return None

    def _request(self, calls: list[report_pb2.ObservedCall]) -> report_pb2.ReportRequest:
        """A new ReportRequest with the next sequence number (lock held)."""
        self._sequence += 1
        lost = min(self.overflow + self.dropped_calls + self._capture_lost(), 2**64 - 1)
        return report_pb2.ReportRequest(agent_id=self.agent_id, node=self.node,
                                        sequence=self._sequence, calls=calls, lost_events=lost)

    def _next_batch(self) -> None:
        """Move up to batch_size calls from the buffer into a new batch to send (lock held)."""
        calls = []
        oldest = time.monotonic()
        while self._buffer and len(calls) < self._batch_size:
            _, (call, since) = self._buffer.popitem(last=False)
            calls.append(call)
            oldest = min(oldest, since)
        self._outbox.append(_Batch(self._request(calls), oldest))

    def _run(self) -> None:
        """Send batches until closed; an unexpected error is logged (no secrets), backed off and survived."""
        backoff = self._backoff_initial
        while True:
            try:
                next_backoff = self._send_next(backoff)
            except Exception as exc:  # noqa: BLE001 - a local bug must not silently stop all reporting
                self.metrics.report_errors.inc()
                log.error("reporter error; continuing", extra={"fields": {
                    "error": type(exc).__name__, "reason": safe_details(str(exc), self._safe_token()),
                    "retry_in_s": round(backoff, 2)}})
                next_backoff = min(backoff * 2, self._backoff_max)
                with self._cond:
                    if not self._stop:
                        self._cond.wait(backoff)
            if next_backoff is None:
                return
            backoff = next_backoff

    def _send_next(self, backoff: float) -> float | None:
        """One attempt at the first batch; returns the next backoff, or None once closed."""
        with self._cond:
            while not self._stop and not self._outbox and not self._buffer:
                self._cond.wait(1.0)
            if self._stop:
                return None
            if not self._outbox:
                self._next_batch()
            batch = self._outbox[0]
            batch.attempts += 1
        try:
            self._stub.Report(batch.request, metadata=self._metadata(), timeout=self._rpc_timeout)
        except Exception as exc:  # noqa: BLE001 - an RpcError, or a local error (e.g. the token unreadable)
            self.metrics.report_errors.inc()
            if self._refused(batch, exc, backoff) is not Verdict.RETRY:
                return self._backoff_initial
            with self._cond:
                if not self._stop:
                    self._cond.wait(backoff)
            return min(backoff * 2, self._backoff_max)
        with self._cond:
            self.metrics.report_latency.observe(time.monotonic() - batch.since)
            self.metrics.reports_sent.inc()
            self.sent_batches += 1
            self._outbox.popleft()
            self.metrics.buffer_fill.set(self._held())
            self._cond.notify_all()
        return self._backoff_initial

    def _refused(self, batch: _Batch, exc: Exception, backoff: float) -> Verdict:
        """Retry, split or drop the failed in-flight ``batch``; returns what was decided."""
        is_rpc = isinstance(exc, grpc.RpcError) and hasattr(exc, "code")
        code = exc.code() if is_rpc else None
        details = (exc.details() or "") if is_rpc else type(exc).__name__
        request = batch.request
        decided = verdict(code, details, len(request.calls), batch.attempts, self._bounded_retries)
        fields = {"code": getattr(code, "name", "LOCAL_ERROR"), "sequence": request.sequence,
                  "calls": len(request.calls), "attempt": batch.attempts,
                  "reason": safe_details(details, self._safe_token())}
        with self._cond:
            if decided is Verdict.RETRY:
                log.warning("report failed; will retry", extra={"fields": {**fields, "retry_in_s": round(backoff, 2)}})
                return decided
            self._outbox.popleft()
            if decided is Verdict.SPLIT:
                half = len(request.calls) // 2
                calls = list(request.calls)
                self._outbox.extendleft([_Batch(self._request(calls[half:]), batch.since),
                                         _Batch(self._request(calls[:half]), batch.since)])
                log.info("report refused; sending it in two halves", extra={"fields": fields})
            else:
                self.dropped_batches += 1
                self.dropped_calls += len(request.calls)
                self.metrics.reports_dropped.labels(code=fields["code"]).inc()
                self.metrics.report_dropped_calls.inc(len(request.calls))
                log.warning("report refused permanently; its calls are dropped", extra={"fields": fields})
            self.metrics.buffer_fill.set(self._held())
            self._cond.notify_all()
        return decided
