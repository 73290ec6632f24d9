"""Stage 1: per (pid, connection) reassembly of request heads (and batch bodies) from TLS writes.

Request heads may span several writes; they are kept up to 16 KiB (more: dropped and counted).
Body writes are skipped by counting Content-Length, except for batch requests, whose body is
kept (up to 16 KiB) for the batch stage. State is bounded: an LRU of connections and a global
byte budget; evicted connections are handed back so nothing they hold is lost silently.
"""
from __future__ import annotations

import re
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Callable

from clearance.nodeagent.events import TlsEvent
from clearance.nodeagent.pipeline.batch import MAX_BODY, is_batch
from clearance.nodeagent.pipeline.http import (MAX_HEAD, METHODS, HeadParser, HttpRequest, Ignored,
                                               classify_garbage, looks_like_request)

_REQUEST_LINE = re.compile(rb"[A-Z]{3,7} [!-~]{1,12288} HTTP/1\.[01]\r\n")
_IDLE, _HEAD, _BODY = 0, 1, 2
MAX_PENDING = 64


@dataclass(slots=True)
class Completed:
    """A request whose head (and, for a batch, body) is complete."""

    request: HttpRequest
    body: bytes | None
    timestamp_ns: int


class Conn:
    """Reassembly state of one TLS connection, plus the requests waiting for their responses."""

    __slots__ = ("key", "cgroup_id", "state", "head", "head_ts", "body_left", "batch", "body", "pending")

    def __init__(self, key: tuple[int, int], cgroup_id: int) -> None:
        self.key = key
        self.cgroup_id = cgroup_id
        self.state = _IDLE
        self.head = bytearray()
        self.head_ts = 0
        self.body_left = 0
        self.batch: HttpRequest | None = None
        self.body = bytearray()
        self.pending: deque = deque()  # owned by the pipeline: entries awaiting a response

    def buffered(self) -> int:
        return len(self.head) + len(self.body)


class Reassembler:
    """Turns WRITE events into completed requests per connection."""

    def __init__(self, ignored: Callable[[str], None], evicted: Callable[[Conn], None], *,
                 max_conns: int = 4096, max_bytes: int = 32 * 1024 * 1024, parser: HeadParser | None = None) -> None:
        self._parse = (parser or HeadParser()).parse
        self._ignored = ignored
        self._evicted = evicted
        self._conns: OrderedDict[tuple[int, int], Conn] = OrderedDict()
        self._max_conns = max_conns
        self._max_bytes = max_bytes
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._conns)

    @property
    def buffered_bytes(self) -> int:
        return self._bytes

    def conns(self) -> list[Conn]:
        return list(self._conns.values())

    def get(self, pid: int, conn: int) -> Conn | None:
        return self._conns.get((pid, conn))

    def drop(self, conn: Conn) -> None:
        """Forget a connection (after its state was flushed)."""
        if self._conns.pop(conn.key, None) is not None:
            self._bytes -= conn.buffered()

    def _conn(self, ev: TlsEvent) -> Conn:
        key = (ev.pid, ev.conn)
        conn = self._conns.get(key)
        if conn is None:
            conn = Conn(key, ev.cgroup_id)
            self._conns[key] = conn
            while len(self._conns) > self._max_conns:
                self._evict()
        else:
            self._conns.move_to_end(key)
            conn.cgroup_id = ev.cgroup_id
        return conn

    def _evict(self) -> None:
        _, old = self._conns.popitem(last=False)
        self._bytes -= old.buffered()
        self._ignored("evicted")
        self._evicted(old)

    def feed(self, ev: TlsEvent) -> tuple[Conn, list[Completed]]:
        """Consume one WRITE event; returns its connection and the requests it completed."""
        key = (ev.pid, ev.conn)
        conn = self._conns.get(key)
        if conn is None:
            conn = self._conn(ev)
        else:
            self._conns.move_to_end(key)
            conn.cgroup_id = ev.cgroup_id
        out: list[Completed] = []
        data = ev.data
        if conn.state == _BODY and conn.batch is None and conn.body_left > 0 and not _REQUEST_LINE.match(data):
            conn.body_left -= ev.length  # a body write of a known length: skipped, nothing kept
            if conn.body_left <= 0:
                conn.state, conn.body_left = _IDLE, 0
            return conn, out
        if conn.state == _IDLE and not conn.head:
            # the common case: a whole head in this one write, nothing buffered before or after
            sp = data.find(b" ", 0, 9)
            if sp > 0 and data[:sp] in METHODS:
                end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
                if end >= 0:
                    conn.head_ts = ev.timestamp_ns
                    rest = self._complete(conn, data[:end], data, end + 4, ev.length, False, out)
                    if rest is None and not conn.body:
                        return conn, out
                    data, length = (rest, len(rest)) if rest is not None else (b"", 0)
                    if rest is None:  # a batch body started: account for its bytes
                        self._bytes += len(conn.body)
                        self._trim()
                        return conn, out
                    self._feed_rest(conn, data, length, ev.timestamp_ns, out)
                    return conn, out
        self._feed_rest(conn, data, ev.length, ev.timestamp_ns, out)
        return conn, out

    def _feed_rest(self, conn: Conn, data: bytes, length: int, ts: int, out: list[Completed]) -> None:
        before = len(conn.head) + len(conn.body)
        try:
            self._consume(conn, data, length, ts, out)
        finally:
            self._bytes += len(conn.head) + len(conn.body) - before
        self._trim()

    def _trim(self) -> None:
        if self._bytes > self._max_bytes:
            while self._bytes > self._max_bytes and len(self._conns) > 1:
                self._evict()

    def finish(self, conn: Conn) -> Completed | None:
        """End a batch body still being collected (its end was never seen); the request or None."""
        if conn.state == _BODY and conn.batch is not None:
            done = Completed(conn.batch, bytes(conn.body), conn.head_ts)
            self._bytes -= len(conn.body)
            conn.batch, conn.body, conn.state = None, bytearray(), _IDLE
            return done
        return None

    def _end_body(self, conn: Conn, out: list[Completed]) -> None:
        if conn.batch is not None:
            out.append(Completed(conn.batch, bytes(conn.body), conn.head_ts))
        conn.batch, conn.body, conn.state, conn.body_left = None, bytearray(), _IDLE, 0

    def _consume(self, conn: Conn, data: bytes, length: int, ts: int, out: list[Completed]) -> None:
        while True:
            if conn.state == _BODY:
                if conn.body_left != 0 and not _REQUEST_LINE.match(data):
                    if conn.batch is not None and len(conn.body) < MAX_BODY:
                        conn.body += data[: MAX_BODY - len(conn.body)]
                    if conn.body_left > 0:
                        conn.body_left -= length
                        if conn.body_left <= 0:
                            self._end_body(conn, out)
                    return
                self._end_body(conn, out)
            if conn.state == _HEAD and not looks_like_request(data):
                prev = len(conn.head)
                conn.head += data[: MAX_HEAD + 4 - prev]
            else:
                if conn.state == _HEAD:
                    self._ignored("truncated")  # a head whose end never came
                if not looks_like_request(data):
                    conn.head = bytearray()
                    conn.state = _IDLE
                    self._ignored(classify_garbage(data))
                    return
                conn.head_ts = ts
                end = data.find(b"\r\n\r\n", 0, MAX_HEAD + 4)
                if end >= 0:  # the common case: the whole head in this one write, no copy
                    conn.state = _HEAD
                    data = self._complete(conn, data[:end], data, end + 4, length, False, out)
                    if data is None:
                        return
                    length = len(data)
                    continue
                prev = 0
                conn.head = bytearray(data[: MAX_HEAD + 4])
                conn.state = _HEAD
            end = conn.head.find(b"\r\n\r\n", max(0, prev - 3))
            if end < 0:
                if len(conn.head) > MAX_HEAD:
                    self._ignored("oversized")
                    self._skip_unknown(conn)
                elif len(data) < length:  # the capture cut this write short: the head ends here
                    self._complete(conn, bytes(conn.head), b"", 0, 0, True, out)
                return
            head = bytes(conn.head[:end])
            # this write's bytes after the head start at ``end + 4 - prev``
            data = self._complete(conn, head, data, end + 4 - prev, length, False, out)
            if data is None:
                return
            length = len(data)

    def _skip_unknown(self, conn: Conn) -> None:
        conn.head = bytearray()
        conn.state, conn.body_left, conn.batch = _BODY, -1, None

    def _complete(self, conn: Conn, head: bytes, data: bytes, offset: int, length: int, partial: bool,
                  out: list[Completed]) -> bytes | None:
        """Parse a finished head whose write continues at ``data[offset:]`` (``length`` bytes in
        all, captured or not); returns the bytes of a pipelined next request in the same write."""
        if conn.head:
            conn.head = bytearray()
        try:
            req = self._parse(head, partial=partial)
        except Ignored as exc:
            self._ignored(exc.reason)
            self._skip_unknown(conn)
            return None
        if partial:
            out.append(Completed(req, None, conn.head_ts))
            self._skip_unknown(conn)
            return None
        headers = req.headers
        if "transfer-encoding" in headers:
            body_len = -1
        else:
            value = headers.get("content-length")
            body_len = 0 if value is None else _length(value)
        batch = req.method == "POST" and is_batch(req)
        if not batch:
            out.append(Completed(req, None, conn.head_ts))
        tail_len = length - offset  # all bytes after the head, captured or not
        if body_len >= 0 and tail_len >= body_len:
            if batch:
                out.append(Completed(req, data[offset:offset + body_len], conn.head_ts))
            conn.state = _IDLE
            if length == len(data) and tail_len > body_len:
                return data[offset + body_len:]
            return None
        conn.state = _BODY
        conn.body_left = body_len - tail_len if body_len >= 0 else -1
        conn.batch = req if batch else None
        conn.body = bytearray(data[offset:offset + MAX_BODY]) if batch else bytearray()
        return None


def _length(value: str) -> int:
    """A Content-Length value, or -1 when it is unparsable."""
    if value.isdigit() and len(value) <= 15:
        return int(value)
    return -1
