"""Fuzzing the parser and the whole pipeline: no exception on any input, bounded state."""
from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.nodeagent.events import Direction, TlsEvent
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline
from clearance.nodeagent.pipeline.batch import subrequests
from clearance.nodeagent.pipeline.endpoints import parse_template
from clearance.nodeagent.pipeline.http import Ignored, parse_request_head, parse_response_head

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PIECES = [b"GET ", b"PUT ", b"POST ", b"DELETE ", b"MERGE ", b"/", b"c", b"?comp=batch", b"&sig=x", b" HTTP/1.1",
          b" HTTP/2", b"\r\n", b"\r\n\r\n", b"Host: ", b"acct1.blob.core.windows.net", b"127.0.0.1:10000",
          b"Content-Length: ", b"5", b"99999999999999999999", b"Transfer-Encoding: chunked",
          b"Content-Type: multipart/mixed; boundary=b", b"--b", b"--b--", b"application/http", b"HTTP/1.1 200 OK",
          b"x-ms-error-code: X", b"X-HTTP-Method: MERGE", b"\x00", b"\xff", b"\x16\x03\x01", b"PRI * HTTP/2.0",
          b"(PartitionKey='a',RowKey='b')", b"%27", b"%", b":", b" ", b"\n", b"\r"]
http_ish = st.lists(st.sampled_from(PIECES) | st.binary(max_size=40), max_size=40).map(b"".join)


class NoPods:
    def get(self, uid):
        return None


@FUZZ
@given(http_ish)
def test_parsers_raise_only_ignored(data):
    for fn in (parse_request_head, parse_response_head):
        try:
            fn(data)
        except Ignored:
            pass
    try:
        parse_request_head(data, partial=True)
    except Ignored:
        pass
    subrequests("multipart/mixed; boundary=b", data)


@FUZZ
@given(st.text(max_size=80))
def test_endpoint_templates_raise_only_value_error(value):
    try:
        parse_template(value)
    except ValueError as exc:
        assert repr(value) in str(exc)


events = st.lists(st.tuples(st.sampled_from([Direction.WRITE, Direction.READ]), st.integers(0, 3),
                            http_ish, st.integers(0, 100)), max_size=60)


@FUZZ
@given(events)
def test_pipeline_never_raises_and_stays_bounded(evs):
    pipe = Pipeline(EndpointMatcher.from_flags(["blob=https://127.0.0.1:10000/{account}"]),
                    Attributor(NoPods(), "n"), max_conns=3)
    now = time.monotonic_ns()
    for i, (direction, conn, data, extra) in enumerate(evs):
        pipe.feed(TlsEvent(direction, 7, 7, 0, conn, now + i, data, len(data) + extra))
    stats = pipe.stats()
    assert stats["connections"] <= 3
    assert stats["buffered_bytes"] <= 3 * (16 * 1024 + 4 + 16 * 1024)
    for call in pipe.drain(final=True):
        assert b"sig=x" not in call.SerializeToString()
    pipe.flush_metrics()
    assert pipe.metrics.value("clearance_agent_ignored_total", {"reason": "internal_error"}) == 0


def test_memory_bounded_under_a_flood_of_distinct_connections():
    pipe = Pipeline(EndpointMatcher.from_flags([]), Attributor(NoPods(), "n"), max_conns=256)
    head = b"PUT /c/b HTTP/1.1\r\nHost: acct1.blob.core.windows.net\r\nX-Pad: " + b"p" * 8000
    now = time.monotonic_ns()
    for conn in range(5000):  # every connection leaves an unfinished 8 KiB head behind
        pipe.feed(TlsEvent(Direction.WRITE, 1, 1, 0, conn, now + conn, head, len(head)))
    stats = pipe.stats()
    assert stats["connections"] <= 256 and stats["buffered_bytes"] <= 256 * (16 * 1024 + 4)
