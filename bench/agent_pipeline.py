"""Benchmark: the agent's user-space pipeline on recorded events, on one core.

Parse, recognise, redact, attribute and dedupe a realistic mix of SDK requests (blob, queue,
table, Key Vault, ARM; SAS and bearer auth; responses paired) from a few pods, and print
requests per second (median of several runs). Target: >= 50,000 requests/s.

Also prints where the time goes: each stage run alone on the same events (best of several
rounds, so other load on the machine inflates it least), and a pure-Python reference loop so
figures from machines of different speed can be compared.

    taskset -c 1 .venv/bin/python bench/agent_pipeline.py [--requests N] [--runs R] [--no-stages]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clearance.nodeagent.events import Direction, TlsEvent  # noqa: E402
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline  # noqa: E402
from clearance.nodeagent.pipeline.attribution import cgroup2_mount  # noqa: E402
from clearance.nodeagent.pipeline.http import HeadParser, parse_response_head  # noqa: E402
from clearance.nodeagent.pipeline.reassembly import Reassembler  # noqa: E402
from clearance.nodeagent.pipeline.redact import KEPT_HEADERS, redact_parts  # noqa: E402

UA = "azsdk-python-storage-blob/12.31.1 Python/3.11.2 (Linux-6.18.0-x86_64-with-glibc2.36)"
SAS = ("sv=2025-01-05&ss=bqt&srt=sco&sp=rwdlacupx&se=2026-01-01T00:00:00Z&st=2025-01-01T00:00:00Z"
       "&spr=https&sig=0a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b%3D")


def head(method: str, target: str, host: str, *extra: str, length: int = 0) -> bytes:
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"User-Agent: {UA}", "Accept-Encoding: gzip, deflate",
             "Accept: application/xml", "Connection: keep-alive", *extra, f"Content-Length: {length}",
             "x-ms-version: 2026-02-06", "x-ms-date: Thu, 04 Dec 2025 20:00:00 GMT",
             "x-ms-client-request-id: 0b3c1f7e-d1a4-11f0-9c1c-0242ac120002",
             "Authorization: Bearer eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "x" * 900 + ".sig"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def recorded(n: int) -> list[TlsEvent]:
    """n requests with their responses over a few connections of a few cgroups."""
    shapes = [
        (head("PUT", "/uploads/invoices/2025/{i}.pdf", "shopdata.blob.core.windows.net",
              "x-ms-blob-type: BlockBlob", "Content-Type: application/pdf", length=2048),
         b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\nETag: \"0x8D\"\r\n\r\n", 2048),
        (head("GET", "/uploads/invoices/2025/{i}.pdf?" + SAS, "shopdata.blob.core.windows.net"),
         b"HTTP/1.1 200 OK\r\nContent-Length: 2048\r\nContent-Type: application/pdf\r\n\r\n", 0),
        (head("GET", "/jobs/messages?numofmessages=32&visibilitytimeout=30", "shopdata.queue.core.windows.net"),
         b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\n\r\n", 0),
        (head("PATCH", "/orders(PartitionKey='p{i}',RowKey='r{i}')", "shopdata.table.core.windows.net",
              "If-Match: *", length=120),
         b"HTTP/1.1 204 No Content\r\n\r\n", 120),
        (head("GET", "/secrets/db-password/0123456789abcdef0123456789abcdef?api-version=7.5", "kv-orders.vault.azure.net"),
         b"HTTP/1.1 403 Forbidden\r\nx-ms-error-code: Forbidden\r\n\r\n", 0),
        (head("GET", "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/shopdata"
              "?api-version=2023-05-01", "management.azure.com"),
         b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n", 0),
    ]
    root = cgroup2_mount()
    own = "/"
    try:
        own = Path(f"/proc/{os.getpid()}/cgroup").read_text().split("0::", 1)[1].split("\n", 1)[0]
    except (OSError, IndexError):
        pass
    cgroup_id = (root / own.lstrip("/")).stat().st_ino if root else 0
    events: list[TlsEvent] = []
    t = time.monotonic_ns()
    for i in range(n):
        req, resp, body = shapes[i % len(shapes)]
        conn = i % 64
        t += 1000
        data = req.replace(b"{i}", str(i % 500).encode())
        events.append(TlsEvent(Direction.WRITE, os.getpid(), os.getpid(), cgroup_id, conn, t, data, len(data)))
        if body:
            events.append(TlsEvent(Direction.WRITE, os.getpid(), os.getpid(), cgroup_id, conn, t, b"\x00" * 64, body))
        events.append(TlsEvent(Direction.READ, os.getpid(), os.getpid(), cgroup_id, conn, t, resp, len(resp)))
    return events


class NoPods:
    def get(self, uid: str):
        return None


def run_once(events: list[TlsEvent], n: int) -> tuple[float, float]:
    """(requests per wall second, requests per CPU second of this thread)."""
    pipe = Pipeline(EndpointMatcher.from_flags([]), Attributor(NoPods(), "bench-node"))
    start, cpu = time.perf_counter(), time.thread_time()
    for ev in events:
        pipe.feed(ev)
    calls = pipe.drain(final=True)
    elapsed, cpu_used = time.perf_counter() - start, time.thread_time() - cpu
    assert sum(c.count for c in calls) == n, "the pipeline lost requests"
    return n / elapsed, n / cpu_used


def stages(n: int = 1200, rounds: int = 15) -> list[tuple[str, float]]:
    """(stage, µs per request), each stage alone on the same recorded events, best of ``rounds``."""
    events = recorded(n)
    writes = [ev for ev in events if ev.direction == Direction.WRITE]
    heads = [ev.data[:ev.data.find(b"\r\n\r\n")] for ev in writes if ev.data[:1] != b"\x00"]
    parser = HeadParser(KEPT_HEADERS)
    requests = [parser.parse(h) for h in heads]
    matcher = EndpointMatcher.from_flags([])
    found = [matcher.locate(r.headers.get("host", ""), r.target) for r in requests]
    attributor = Attributor(NoPods(), "bench-node")
    responses = [ev.data for ev in events if ev.direction == Direction.READ]

    def reassemble() -> None:
        r = Reassembler(lambda reason: None, lambda conn: None, parser=parser)
        for ev in writes:
            r.feed(ev)

    def full(fast: bool = True) -> None:
        pipe = Pipeline(matcher, attributor, fast=fast)
        for ev in events:
            pipe.feed(ev)
        pipe.drain(final=True)

    work = {
        "reference: sum(range(100)) (machine speed)": lambda: [sum(range(100)) for _ in heads],
        "parse heads (validate, request line, kept headers)": lambda: [parser.parse(h) for h in heads],
        "reassemble writes (incl. parse)": reassemble,
        "recognise endpoint": lambda: [matcher.locate(r.headers.get("host", ""), r.target) for r in requests],
        "redact": lambda: [redact_parts(f[0], f[1], f[2], r.method, f[3], f[4], r.headers, matcher)
                           for f, r in zip(found, requests)],
        "attribute (cached cgroup id)": lambda: [attributor.identity(ev.cgroup_id, ev.pid) for ev in writes[:n]],
        "parse responses": lambda: [parse_response_head(d) for d in responses],
        "whole pipeline (feed + pair + dedupe + drain)": full,
        "whole pipeline, staged path only (fast=False)": lambda: full(False),
    }
    best = dict.fromkeys(work, float("inf"))
    for _ in range(rounds):  # interleaved, so that every stage meets the same quiet moments
        for name, fn in work.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return [(name, seconds / n * 1e6) for name, seconds in best.items()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=60000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-stages", action="store_true", help="skip the per-stage breakdown")
    args = ap.parse_args()
    try:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    except (AttributeError, OSError):
        pass
    load_before = os.getloadavg()[0]
    events = recorded(args.requests)
    results = [run_once(events, args.requests) for _ in range(args.runs)]
    wall = [r[0] for r in results]
    cpu = [r[1] for r in results]
    print(f"agent pipeline: {args.requests} requests ({len(events)} events) x {args.runs} runs on one core "
          f"(cpu {sorted(os.sched_getaffinity(0))})")
    print(f"  wall: median {statistics.median(wall):,.0f} requests/s (min {min(wall):,.0f}, max {max(wall):,.0f})")
    print(f"  cpu:  median {statistics.median(cpu):,.0f} requests per CPU-second (target >= 50,000)")
    print(f"  load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after ({os.cpu_count()} CPUs)")
    if not args.no_stages:
        print("  where the time goes (µs per request, each stage alone, best of 15 rounds):")
        for name, us in stages():
            print(f"    {name:52s} {us:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
