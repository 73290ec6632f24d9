"""The pipeline's fused fast path gives exactly the staged path's results, on random inputs."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clearance.nodeagent.events import Direction, TlsEvent
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline

HEADS = [
    b"GET /c/b.txt?sv=1&sig=SECRET&comp=list HTTP/1.1\r\nHost: acct1.blob.core.windows.net\r\nx-ms-version: 1",
    b"PUT /c/b HTTP/1.1\r\nHost: acct1.blob.core.windows.net\r\nx-ms-blob-type: BlockBlob\r\nContent-Length: 5",
    b"PUT /c/b HTTP/1.1\r\nHost: acct1.blob.core.windows.net\r\nTransfer-Encoding: chunked",
    b"PUT /c/b HTTP/1.1\r\nHost: acct1.blob.core.windows.net\r\nContent-Length: x",
    b"PATCH /t(PartitionKey='a',RowKey='b') HTTP/1.1\r\nHost: acct1.table.core.windows.net\r\nIf-Match: *",
    b"POST /t HTTP/1.1\r\nHost: acct1.table.core.windows.net\r\nX-HTTP-Method: MERGE\r\nContent-Length: 3",
    b"POST /$batch HTTP/1.1\r\nHost: acct1.table.core.windows.net\r\nContent-Type: multipart/mixed; boundary=b"
    b"\r\nContent-Length: 120",
    b"POST /c?restype=container&comp=batch HTTP/1.1\r\nHost: acct1.blob.core.windows.net\r\n"
    b"Content-Type: multipart/mixed; boundary=b",
    b"GET /secrets/s/0123?api-version=7.5 HTTP/1.1\r\nHost: kv1.vault.azure.net\r\nAuthorization: Bearer T",
    b"GET /subscriptions/0/resourceGroups/rg?api-version=2023 HTTP/1.1\r\nHost: management.azure.com",
    b"GET https://acct1.queue.core.windows.net/q/messages HTTP/1.1\r\nAccept: */*",
    b"GET / HTTP/1.1\r\nHost: example.com",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b",
    b"GET / HTTP/1.1\r\nbad line",
    b"GET / HTTP/2\r\nHost: x",
    b"DELETE /c/\xff HTTP/1.1\r\nHost: acct1.blob.core.windows.net",
]
BODIES = [b"hello", b"\x00" * 64, b"--b\r\nContent-Type: application/http\r\n\r\nDELETE /c/x HTTP/1.1\r\n\r\n--b--",
          b"0\r\n\r\n"]
RESPONSES = [b"HTTP/1.1 200 OK\r\n\r\n", b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n",
             b"HTTP/1.1 100 Continue\r\n\r\n", b"HTTP/1.1 403 Forbidden\r\nx-ms-error-code: AuthFailed\r\n\r\n",
             b"HTTP/1.1 404 Not Found\r\n\r\n{\"error\":{\"code\":\"NotFound\"}}", b"HTTP/1.1 20", b"garbage",
             b"HTTP/1.1 202 Accepted\r\n\r\n--b\r\nHTTP/1.1 204 No Content\r\n\r\n--b--"]

request_write = st.tuples(st.sampled_from(HEADS), st.sampled_from([b"\r\n\r\n", b"\r\n", b""]),
                          st.sampled_from([b""] + BODIES + HEADS), st.integers(0, 200)).map(
    lambda t: (Direction.WRITE, t[0] + t[1] + t[2], t[3]))
body_write = st.tuples(st.sampled_from(BODIES), st.integers(0, 200)).map(lambda t: (Direction.WRITE, t[0], t[1]))
response = st.sampled_from(RESPONSES).map(lambda d: (Direction.READ, d, 0))
events = st.lists(st.tuples(st.integers(0, 2), st.integers(0, 2), request_write | body_write | response),
                  max_size=80)


class NoPods:
    def get(self, uid):
        return None


def _run(fast: bool, evs: list[TlsEvent], max_conns: int) -> tuple:
    pipe = Pipeline(EndpointMatcher.from_flags([]), Attributor(NoPods(), "n"), fast=fast, max_conns=max_conns)
    pipe._unix_offset_ns = 0
    middle = None
    for i, ev in enumerate(evs):
        pipe.feed(ev)
        if i == len(evs) // 2:
            middle = sorted(c.SerializeToString(deterministic=True) for c in pipe.drain(now_ns=ev.timestamp_ns))
    counts = (dict(pipe._ignored_counts), pipe._parsed, pipe._captured, pipe.stats())
    final = sorted(c.SerializeToString(deterministic=True) for c in pipe.drain(final=True))
    return middle, counts, final


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.sampled_from([2, 4096]))
def test_fast_path_matches_staged_path(spec, max_conns):
    evs = []
    for i, (pid, conn, (direction, data, extra)) in enumerate(spec):
        # extra > 100: the capture copied only part of a longer write
        length = len(data) + (extra - 100 if extra > 100 else 0)
        evs.append(TlsEvent(direction, pid, pid, 0, conn, 1_000_000 * (i + 1), data, length))
    assert _run(True, evs, max_conns) == _run(False, evs, max_conns)


def test_fast_path_is_taken_and_counts_like_the_staged_path():
    head = HEADS[1] + b"\r\n\r\n"
    evs = [TlsEvent(Direction.WRITE, 1, 1, 0, 7, 10, head, len(head)),
           TlsEvent(Direction.WRITE, 1, 1, 0, 7, 11, b"hello", 5),
           TlsEvent(Direction.READ, 1, 1, 0, 7, 12, RESPONSES[1], len(RESPONSES[1]))] * 3
    fast = Pipeline(EndpointMatcher.from_flags([]), Attributor(NoPods(), "n"))
    taken = []
    for ev in evs:  # what feed does, recording which writes the fast path took
        took = ev.direction == Direction.WRITE and fast._fast_write(ev)
        taken.append(took)
        if not took:
            fast.feed(ev)
    assert taken[0] is False and taken[3:5] == [True, True]  # the first head creates the connection
    [call] = fast.drain(final=True)
    assert (call.service, call.method, call.path, call.count, call.status) == ("blob", "PUT", "/c/{name}", 3, 201)
