"""Fuzzing the parser and the whole pipeline: no exception on any input, bounded state."""
from __future__ import annotations

import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.nodeagent.events import Direction, TlsEvent
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline
from clearance.nodeagent.pipeline.batch import subrequests
from clearance.nodeagent.pipeline.endpoints import parse_template
from clearance.nodeagent.pipeline.http import (MAX_HEAD, MAX_HEADERS, MAX_TARGET, METHODS, PARSER_HEADERS, HeadParser,
                                               Ignored, parse_request_head, parse_response_head)
from clearance.nodeagent.pipeline.redact import KEPT_HEADERS

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


# -- the fast head parser against a plain reading of the grammar ---------------------------------
TOKEN = frozenset(b"!#$%&'*+.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-")


def reference_parse(head: bytes, partial: bool = False, require_host: bool = True) -> tuple:
    """The request-head grammar written plainly and slowly: (method, target, all headers)."""
    if len(head) > MAX_HEAD:
        raise Ignored("oversized")
    if partial:
        if b"\r\n" not in head:
            raise Ignored("truncated")
        head = head[:head.rfind(b"\r\n")]
    if any(c > 127 or c == 127 or (c < 32 and c not in (9, 10, 13)) for c in head):
        raise Ignored("binary")
    lines = head.split(b"\r\n")
    if any(b"\r" in line or b"\n" in line for line in lines):
        raise Ignored("malformed")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise Ignored("malformed")
    method, target, version = parts
    if version not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise Ignored("http2" if version.startswith(b"HTTP/2") else "malformed")
    if method not in METHODS:
        raise Ignored("malformed")
    if len(target) > MAX_TARGET:
        raise Ignored("oversized")
    if not target.startswith((b"/", b"https://", b"http://")):
        raise Ignored("malformed")
    if len(lines) - 1 > MAX_HEADERS:
        raise Ignored("oversized")
    fields = [line.partition(b":") for line in lines[1:]]
    if any(not colon or not name or not set(name) <= TOKEN for name, colon, _ in fields):
        raise Ignored("malformed")
    headers: dict[str, str] = {}
    for name, _, value in fields:
        key = name.decode().lower()
        if key in headers:
            if key in ("host", "content-length"):
                raise Ignored("malformed")
            continue
        headers[key] = value.decode().strip(" \t")
    if require_host and "host" not in headers and not target.startswith(b"http"):
        raise Ignored("truncated" if partial else "malformed")
    effective = method.decode()
    override = headers.get("x-http-method", "").upper()
    if override in ("GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "MERGE"):
        effective = override
    return effective, target.decode(), headers


GOOD_LINES = [b"Host: acct1.blob.core.windows.net", b"HOST:a", b"Content-Length: 12", b"content-length:  7 \t",
              b"x-ms-blob-type: BlockBlob", b"X-MS-Copy-Source: https://a/b", b"x-ms-copy-source-authorization: Bearer t",
              b"Authorization: Bearer secret", b"X-HTTP-Method: delete", b"x-ms-version:", b"x-ms-blob-typeX: 1",
              b"If-None-Match: *", b"Cookie: c=1", b"x-ms-meta-" + b"n" * 80 + b": v", b"Transfer-Encoding: chunked"]
BAD_LINES = [b"Bad Header: 1", b"host : a", b": no name", b"no colon", b"\tfolded", b"X-A: \xff", b"X-B: \x01",
             b"X-E: \x7f", b"X-C: a\rb", b"X-D: a\nb", b"x-ms-", b""]
request_lines = st.sampled_from([b"GET / HTTP/1.1", b"PUT /c/b?comp=block HTTP/1.1", b"POST https://a.b/c HTTP/1.1",
                                 b"GET / HTTP/2", b"FOO / HTTP/1.1", b"GET /x HTTP/1.0", b"GET  / HTTP/1.1",
                                 b"GET /\x7f HTTP/1.1"])
header_lists = st.tuples(st.lists(st.sampled_from(GOOD_LINES), max_size=10),
                         st.none() | st.sampled_from(BAD_LINES) | st.binary(max_size=12), st.integers(0, 10))
heads = st.builds(lambda first, h: b"\r\n".join([first, *h[0][:h[2]], *([h[1]] if h[1] is not None else []),
                                                  *h[0][h[2]:]]), request_lines, header_lists)


def outcome(fn, head: bytes, partial: bool) -> tuple:
    try:
        return ("ok", fn(head, partial))
    except Ignored as exc:
        return ("ignored", exc.reason)


@FUZZ
@given(heads, st.booleans())
def test_head_parsers_agree_with_the_plain_grammar(head, partial):
    kept = HeadParser(KEPT_HEADERS)
    want = outcome(reference_parse, head, partial)
    every = outcome(lambda h, p: parse_request_head(h, partial=p), head, partial)
    only_kept = outcome(lambda h, p: kept.parse(h, partial=p), head, partial)
    if want[0] == "ignored":
        assert every == only_kept == want
        return
    method, target, headers = want[1]
    for got, names in ((every[1], headers.keys()), (only_kept[1], KEPT_HEADERS | PARSER_HEADERS)):
        assert (got.method, got.target, got.partial) == (method, target, partial)
        assert got.headers == {k: v for k, v in headers.items() if k in names}
