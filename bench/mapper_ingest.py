"""Ingest throughput of the mapper over gRPC: observed calls stored per second, mapper on one core.

Starts ``clearance mapper`` (pinned to CPU 0) with a pods file and a shared token, then sends
pre-built batches as one node's agent would (default: 120 pods of 40 Deployments, each calling
40 blob/queue/table signatures on its storage account, 5% of them 403s, 10% unknown) from this
process and prints calls/s (wall), calls per CPU-second of the mapper process (what one core does,
whatever else the machine runs) and the mapper's peak RSS. Every batch is new data for the store
(distinct sequence numbers; counts and times differ).

    .venv/bin/python bench/mapper_ingest.py [--batches 60] [--batch-size 5000] [--streams 2]
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clearance.v1 import report_pb2, report_pb2_grpc  # noqa: E402
from mapperproc import free_port, print_load, status_kb, stop  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"
SIGNATURES = [
    ("blob", "GET", "/c{i}/{{name}}", {}, {}),
    ("blob", "HEAD", "/c{i}/{{name}}", {}, {}),
    ("blob", "PUT", "/c{i}/{{name}}", {}, {"x-ms-blob-type": "BlockBlob"}),
    ("blob", "PUT", "/c{i}/{{name}}", {}, {"x-ms-blob-type": "BlockBlob", "if-none-match": "*"}),
    ("blob", "GET", "/c{i}", {"restype": "container", "comp": "list"}, {}),
    ("blob", "DELETE", "/c{i}/{{name}}", {}, {}),
    ("queue", "POST", "/q{i}/messages", {}, {}),
    ("queue", "GET", "/q{i}/messages", {}, {}),
    ("table", "GET", "/t{i}()", {}, {}),
    ("blob", "PATCH", "/c{i}/{{name}}", {"comp": "frobnicate"}, {}),  # unknown
]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def make_batch(rng: random.Random, size: int, pods: int) -> report_pb2.ReportRequest:
    now = int(time.time() * 1000)
    calls = []
    for _ in range(size):
        p = rng.randrange(pods)
        w = p // 3
        service, method, path, query, headers = SIGNATURES[rng.randrange(len(SIGNATURES))]
        denied = rng.random() < 0.05
        calls.append(report_pb2.ObservedCall(
            caller=report_pb2.Caller(namespace=f"ns{w % 20}", pod_name=f"app{w}-5d8f7c9b4-x{p:04d}",
                                     pod_uid=f"uid-{p}"),
            service=service, account=f"acct{w}", host=f"acct{w}.{service}.core.windows.net",
            method=method, path=path.format(i=rng.randrange(4)), query=query, headers=headers,
            status=403 if denied else 200, error_code="AuthorizationPermissionMismatch" if denied else "",
            count=rng.randrange(1, 50), first_seen_unix_ms=now - 1000, last_seen_unix_ms=now))
    return report_pb2.ReportRequest(agent_id="bench-agent", node="node-1", calls=calls)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=60)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--streams", type=int, default=2, help="concurrent senders")
    ap.add_argument("--pods", type=int, default=120, help="pods on the node (3 per Deployment)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clearance-bench-"))
    (tmp / "token").write_text(TOKEN)
    (tmp / "pods.yaml").write_text(yaml.safe_dump({"pods": [
        {"namespace": f"ns{(p // 3) % 20}", "name": f"app{p // 3}-5d8f7c9b4-x{p:04d}", "uid": f"uid-{p}",
         "owner": {"kind": "ReplicaSet", "name": f"app{p // 3}-5d8f7c9b4"}} for p in range(args.pods)]}))
    port = free_port()
    clearance = str(ROOT / ".venv" / "bin" / "clearance")
    proc = subprocess.Popen(
        ["taskset", "-c", "0", clearance, "--log-level", "warning", "mapper", "--listen", f"127.0.0.1:{port}",
         "--db", str(tmp / "bench.db"), "--pods-file", str(tmp / "pods.yaml"),
         "--agent-token-file", str(tmp / "token")], cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_send_message_length", 64 << 20)])
        grpc.channel_ready_future(channel).result(timeout=60)
        stub = report_pb2_grpc.AgentReportsStub(channel)
        md = (("authorization", f"Bearer {TOKEN}"),)
        rng = random.Random(7)
        templates = [make_batch(rng, args.batch_size, args.pods) for _ in range(8)]
        payloads = []
        for seq in range(args.batches + 1):
            req = report_pb2.ReportRequest()
            req.CopyFrom(templates[seq % len(templates)])
            req.sequence = seq
            payloads.append(req)
        stub.Report(payloads[0], metadata=md, timeout=120)  # warm-up: classification cache, SQLite pages
        work = list(payloads[1:])
        lock = threading.Lock()

        def sender() -> None:
            while True:
                with lock:
                    if not work:
                        return
                    req = work.pop()
                stub.Report(req, metadata=md, timeout=120)

        cpu0 = cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=sender) for _ in range(args.streams)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds(proc.pid) - cpu0
        total = args.batches * args.batch_size
        # taskset execs the mapper in place, so proc.pid is the mapper itself
        hwm = status_kb(proc.pid, "VmHWM")
        print(f"mapper ingest: {total} observed calls in {args.batches} batches of {args.batch_size} "
              f"({args.streams} streams) in {elapsed:.2f} s = {total / elapsed:,.0f} calls/s on one core; "
              f"mapper CPU {cpu:.2f} s = {total / cpu:,.0f} calls per CPU-second; peak RSS {hwm / 1024:.0f} MB")
        print_load()
        channel.close()
    finally:
        stop(proc, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
