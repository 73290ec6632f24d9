"""The pipeline: TLS events in, deduplicated ``ObservedCall`` protos out.

capture -> reassemble -> parse -> recognise -> redact -> attribute -> dedupe, each stage a
separate module; this one wires them and pairs responses to requests (HTTP/1.1 order per
connection). It never raises on input and never logs request bytes.
"""
from __future__ import annotations

import logging
import re
import threading
import time

from clearance.nodeagent.events import Direction, TlsEvent
from clearance.nodeagent.metrics import Metrics
from clearance.nodeagent.pipeline.attribution import Attributor, Identity
from clearance.nodeagent.pipeline.batch import is_batch, subrequests
from clearance.nodeagent.pipeline.dedupe import Deduper, Seen
from clearance.nodeagent.pipeline.endpoints import EndpointMatcher
from clearance.nodeagent.pipeline.http import MAX_HEAD, METHODS, HeadParser, Ignored, parse_response_head
from clearance.nodeagent.pipeline.reassembly import (_BODY, _IDLE, _REQUEST_LINE, MAX_PENDING, Completed, Conn,
                                                     Reassembler, _length)
from clearance.nodeagent.pipeline.redact import KEPT_HEADERS, CallKey, redact_parts
from clearance.v1 import report_pb2

log = logging.getLogger("clearance.agent.pipeline")

_SUB_STATUS = re.compile(rb"\r\nHTTP/1\.[01] (\d{3})")
_SUB_ERROR = re.compile(rb"\r\nx-ms-error-code:[ \t]*([A-Za-z0-9_.-]{1,80})", re.IGNORECASE)

# a pending entry: (calls or None when not Azure, caller identity, request timestamp)
Pending = tuple[list[CallKey] | None, Identity | None, int]
_WRITE = Direction.WRITE


class Pipeline:
    """Feed TLS events; ``drain()`` returns what was seen since the last drain."""

    def __init__(self, endpoints: EndpointMatcher, attributor: Attributor, metrics: Metrics | None = None,
                 *, response_wait_s: float = 2.0, pod_grace_s: float = 5.0, max_conns: int = 4096,
                 max_calls: int = 100_000, fast: bool = True) -> None:
        self.endpoints = endpoints
        self.attributor = attributor
        self.metrics = metrics or Metrics()
        self._captured = self._parsed = 0
        self._ignored_counts: dict[str, int] = {}
        parser = HeadParser(KEPT_HEADERS)
        self._reasm = Reassembler(self._ignore, self._evicted, max_conns=max_conns, parser=parser)
        self._parse_head = parser.parse
        self._fast = fast  # False: every event takes the staged path (tests compare the two)
        self._calls = Deduper(max_calls)
        self._wait_ns = int(response_wait_s * 1e9)
        self._grace_ns = int(pod_grace_s * 1e9)
        self._unix_offset_ns = time.time_ns() - time.monotonic_ns()
        self._lock = threading.Lock()  # feed (capture thread) and drain (report loop) may differ

    # -- input -------------------------------------------------------------------------------
    def feed(self, event: TlsEvent) -> None:
        """Consume one TLS event; bad input is counted as ignored, never raised."""
        try:
            with self._lock:
                self._captured += 1
                if event.direction == _WRITE:
                    if self._fast and self._fast_write(event):
                        return
                    conn, done = self._reasm.feed(event)
                    for completed in done:
                        self._request(conn, completed, event.pid)
                elif not (self._fast and self._fast_read(event)):
                    self._response(event)
        except Exception as exc:  # a bug must not stop the capture; the bytes are never logged
            self._ignore("internal_error")
            log.warning("event dropped by an internal error", extra={"fields": {"error": type(exc).__name__}})

    def _fast_write(self, ev: TlsEvent) -> bool:
        """The common WRITE cases without the staged path's objects: a body write of a known
        length, or one whole non-batch head alone in its write on a connection with nothing
        buffered. Same state changes and results as the staged path; False (nothing changed)
        for anything else."""
        conns = self._reasm._conns
        key = (ev.pid, ev.conn)
        conn = conns.get(key)
        if conn is None or conn.head or conn.batch is not None:
            return False
        data = ev.data
        state = conn.state
        if state == _BODY:
            if conn.body_left > 0 and not _REQUEST_LINE.match(data):
                conns.move_to_end(key)
                conn.cgroup_id = ev.cgroup_id
                left = conn.body_left - ev.length
                conn.body_left = left if left > 0 else 0
                if left <= 0:
                    conn.state = _IDLE
                return True
            return False
        if state != _IDLE:
            return False
        sp = data.find(b" ", 0, 9)
        if sp <= 0 or data[:sp] not in METHODS:
            return False
        end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
        if end < 0 or end + 4 != len(data):
            return False  # a head across writes, or a body or a next request in this write
        try:
            req = self._parse_head(data[:end])  # pure: a fall-back below parses again, same result
            failed = None
        except Ignored as exc:
            failed = exc.reason
        if failed is None:
            headers = req.headers
            if req.method == "POST" and is_batch(req):
                return False
            if "transfer-encoding" in headers:
                body_len = -1
            else:
                value = headers.get("content-length")
                body_len = 0 if value is None else _length(value)
        conns.move_to_end(key)
        cgroup_id = conn.cgroup_id = ev.cgroup_id
        ts = conn.head_ts = ev.timestamp_ns
        if failed is not None:
            self._ignore(failed)
            conn.state, conn.body_left = _BODY, -1
            return True
        tail_len = ev.length - end - 4  # body bytes of this write the capture did not copy
        if body_len >= 0 and tail_len >= body_len:
            conn.state = _IDLE
        else:
            conn.state = _BODY
            conn.body_left = body_len - tail_len if body_len >= 0 else -1
        endpoints = self.endpoints
        found = endpoints.locate(headers.get("host", ""), req.target)
        if found is None:
            self._ignore("not_azure")
            calls = ident = None
        else:
            service, account, host, path, query = found
            calls = [redact_parts(service, account, host, req.method, path, query, headers, endpoints)]
            self._parsed += 1
            ident = self.attributor.identity(cgroup_id, ev.pid)
        pending = conn.pending
        if len(pending) >= MAX_PENDING:
            self._settle(pending.popleft(), 0, "", b"")
        pending.append((calls, ident, ts))
        return True

    def _fast_read(self, ev: TlsEvent) -> bool:
        """The common READ case of ``_response``: a 2xx or 3xx response to a pending single call
        (no error code to look for, no batch to end). False (nothing changed) for anything else."""
        data = ev.data
        if data[:7] != b"HTTP/1." or data[8:9] != b" ":
            return False
        digits = data[9:12]
        if len(digits) != 3 or not digits.isdigit():
            return False
        status = int(digits)
        if not 200 <= status < 400:
            return False
        conn = self._reasm._conns.get((ev.pid, ev.conn))
        if conn is None or conn.batch is not None or not conn.pending:
            return False
        calls, ident, ts = conn.pending[0]
        if calls is not None and len(calls) != 1:
            return False
        conn.pending.popleft()
        if calls is not None:
            entry = self._calls._seen.get((ident, calls[0], status, ""))
            if entry is not None:  # Deduper.add of a call seen before, inline
                entry.count += 1
                if ts > entry.last_ns:
                    entry.last_ns = ts
                elif ts < entry.first_ns:
                    entry.first_ns = ts
            elif not self._calls.add(ident, calls[0], status, "", ts):
                self._overflow()
        return True

    def _ignore(self, reason: str) -> None:
        self._ignored_counts[reason] = self._ignored_counts.get(reason, 0) + 1

    def flush_metrics(self) -> None:
        """Move the counts kept locally (cheaper per event) into the Prometheus metrics (drain does)."""
        m = self.metrics
        m.captured.inc(self._captured)
        m.parsed.inc(self._parsed)
        self._captured = self._parsed = 0
        counts, self._ignored_counts = self._ignored_counts, {}
        for reason, n in counts.items():
            m.ignored.labels(reason=reason).inc(n)

    def _recognise(self, completed: Completed) -> list[CallKey] | None:
        req = completed.request
        endpoints = self.endpoints
        found = endpoints.locate(req.headers.get("host", ""), req.target)
        if found is None:
            self._ignore("not_azure")
            return None
        service, account, host, path, query = found
        calls = [redact_parts(service, account, host, req.method, path, query, req.headers, endpoints)]
        if completed.body is not None and (service == "blob" or service == "table"):
            for sub in subrequests(req.headers.get("content-type", ""), completed.body):
                sub_found = endpoints.locate(sub.headers.get("host") or host, sub.target)
                if sub_found is not None:
                    s_service, s_account, s_host, s_path, s_query = sub_found
                    calls.append(redact_parts(s_service, s_account, s_host, sub.method, s_path, s_query,
                                              sub.headers, endpoints))
        self._parsed += len(calls)
        return calls

    def _request(self, conn: Conn, completed: Completed, pid: int) -> None:
        calls = self._recognise(completed)
        ident = self.attributor.identity(conn.cgroup_id, pid) if calls else None
        if len(conn.pending) >= MAX_PENDING:
            self._settle(conn.pending.popleft(), 0, "", b"")
        conn.pending.append((calls, ident, completed.timestamp_ns))

    def _response(self, ev: TlsEvent) -> None:
        data = ev.data
        if not data.startswith(b"HTTP/1."):
            self._ignore("not_http")
            return
        try:
            status, code = parse_response_head(data)
        except Ignored as exc:
            self._ignore(exc.reason)
            return
        conn = self._reasm.get(ev.pid, ev.conn)
        if conn is not None and conn.batch is not None:
            batch = self._reasm.finish(conn)  # the response proves the batch body has ended
            if batch is not None:
                self._request(conn, batch, ev.pid)
        if status < 200:
            return  # 1xx interim response: the final one follows
        if conn is None or not conn.pending:
            self._ignore("unpaired_response")
            return
        entry = conn.pending.popleft()
        calls = entry[0]
        if calls is not None and len(calls) == 1:  # the common case of _settle, inline
            if not self._calls.add(entry[1], calls[0], status, code, entry[2]):
                self._overflow()
        else:
            self._settle(entry, status, code, data)

    # -- recording ---------------------------------------------------------------------------
    def _settle(self, entry: Pending, status: int, code: str, data: bytes) -> None:
        calls, ident, ts = entry
        if not calls:
            return
        add = self._calls.add
        if len(calls) == 1:
            if not add(ident, calls[0], status, code, ts):
                self._overflow()
            return
        sub_results = _batch_results(data) if status and status < 300 else []
        for i, call in enumerate(calls):
            if i == 0:
                sub_status, sub_code = status, code
            elif i - 1 < len(sub_results):
                sub_status, sub_code = sub_results[i - 1]
            elif status >= 400:
                sub_status, sub_code = status, code
            else:
                sub_status, sub_code = 0, ""
            if not add(ident, call, sub_status, sub_code, ts):
                self._overflow()

    def _overflow(self) -> None:
        self._ignore("dedupe_overflow")
        self.metrics.lost.inc()

    def _evicted(self, conn: Conn) -> None:
        batch = self._reasm.finish(conn)
        if batch is not None:
            calls = self._recognise(batch)
            if calls:
                self._settle((calls, self.attributor.identity(conn.cgroup_id, conn.key[0]), batch.timestamp_ns),
                             0, "", b"")
        while conn.pending:
            self._settle(conn.pending.popleft(), 0, "", b"")

    # -- output ------------------------------------------------------------------------------
    def drain(self, now_ns: int | None = None, *, final: bool = False) -> list[report_pb2.ObservedCall]:
        """Distinct calls seen since the last drain, as protos.

        Requests still waiting for their response (less than ``response_wait_s``) and calls of a
        pod the pod source does not know yet (less than ``pod_grace_s``) wait for the next drain,
        unless ``final``.
        """
        now = time.monotonic_ns() if now_ns is None else now_ns

        def ready(seen: Seen) -> bool:
            return (final or seen.ident is None or now - seen.first_ns >= self._grace_ns
                    or self.attributor.known(seen.ident))

        with self._lock:
            self._flush_pending(now, final)
            self.flush_metrics()
            taken = self._calls.take(ready)
        return [self._proto(seen) for seen in taken]

    def _flush_pending(self, now: int, final: bool) -> None:
        for conn in self._reasm.conns():
            if conn.pending or conn.batch is not None:
                if final or now - conn.head_ts >= self._wait_ns:
                    batch = self._reasm.finish(conn)
                    if batch is not None:
                        self._request(conn, batch, conn.key[0])
                while conn.pending and (final or now - conn.pending[0][2] >= self._wait_ns):
                    self._settle(conn.pending.popleft(), 0, "", b"")

    def _proto(self, seen: Seen) -> report_pb2.ObservedCall:
        service, account, host, method, path, query, headers = seen.call
        return report_pb2.ObservedCall(
            caller=self.attributor.caller(seen.ident), service=service, account=account, host=host,
            method=method, path=path, query=dict(query), headers=dict(headers), status=seen.status,
            error_code=seen.error_code, count=seen.count,
            first_seen_unix_ms=(seen.first_ns + self._unix_offset_ns) // 1_000_000,
            last_seen_unix_ms=(seen.last_ns + self._unix_offset_ns) // 1_000_000)

    def stats(self) -> dict[str, int]:
        """Sizes of the bounded state (tests and benchmarks)."""
        return {"connections": len(self._reasm), "buffered_bytes": self._reasm.buffered_bytes,
                "distinct_calls": len(self._calls)}


def _batch_results(data: bytes) -> list[tuple[int, str]]:
    """Per-sub-request (status, x-ms-error-code) from a batch response's captured body."""
    head_end = data.find(b"\r\n\r\n")
    if head_end < 0:
        return []
    found = list(_SUB_STATUS.finditer(data, head_end))
    results = []
    for i, m in enumerate(found):
        end = found[i + 1].start() if i + 1 < len(found) else len(data)
        err = _SUB_ERROR.search(data, m.end(), end)
        results.append((int(m.group(1)), err.group(1).decode() if err else ""))
    return results
