"""Scale of the mapper: 10,000 workloads x 10 discovered intents (2 permissions each).

Fills a store through the Store API, starts ``clearance mapper`` on it, then prints the ListIntents
round trip and the wall time of the whole ``clearance intents list -A`` command (table to
/dev/null), each both right after a new agent report (the response is computed afresh) and with
the store unchanged (the mapper answers its cached response), medians of 3; and the mapper's peak
RSS after all that.

    .venv/bin/python bench/mapper_scale.py [--workloads 10000] [--intents 10]
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

import grpc

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from clearance.mapper.store import Batch, Store  # noqa: E402
from clearance.v1 import intents_pb2, intents_pb2_grpc, report_pb2, report_pb2_grpc  # noqa: E402
from mapperproc import free_port, print_load, status_kb, stop  # noqa: E402

BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers"


def fill(db: Path, workloads: int, intents: int) -> int:
    store = Store(db)
    now = int(time.time() * 1000)
    rows = 0
    for start in range(0, workloads, 1000):
        batch = Batch()
        for w in range(start, min(workloads, start + 1000)):
            for i in range(intents):
                scope = f"/providers/Microsoft.Storage/storageAccounts/acct{w % 500}/blobServices/default/containers/c{w}-{i}"
                key = (f"ns{w % 50}", "Deployment", f"app{w}")
                batch.permissions[(*key, scope, f"{BLOBS}/read", 0)] = [1, now, now, 0, now]
                batch.permissions[(*key, scope, f"{BLOBS}/blobs/read", 1)] = [7, now, now, 0, now]
                rows += 2
        store.ingest(batch)
    store.close()
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workloads", type=int, default=10_000)
    ap.add_argument("--intents", type=int, default=10)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="clearance-scale-"))
    db = tmp / "scale.db"
    t = time.perf_counter()
    rows = fill(db, args.workloads, args.intents)
    print(f"filled {rows:,} permission rows ({args.workloads:,} workloads x {args.intents} intents) "
          f"in {time.perf_counter() - t:.1f} s; db {db.stat().st_size / 1e6:.0f} MB")
    token = "scale-token-0123456789abcdef"
    (tmp / "token").write_text(token)
    (tmp / "pods.yaml").write_text("pods: []\n")
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    clearance = str(ROOT / ".venv" / "bin" / "clearance")
    t = time.perf_counter()
    proc = subprocess.Popen([clearance, "--log-level", "warning", "mapper", "--listen", f"127.0.0.1:{port}",
                             "--db", str(db), "--pods-file", str(tmp / "pods.yaml"),
                             "--agent-token-file", str(tmp / "token")], cwd="/", env=env)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=[("grpc.max_receive_message_length", 1 << 30)])
        grpc.channel_ready_future(channel).result(timeout=120)
        print(f"mapper start-up with that store: {time.perf_counter() - t:.2f} s")
        stub = intents_pb2_grpc.IntentsStub(channel)
        reports = report_pb2_grpc.AgentReportsStub(channel)
        seq = iter(range(1, 1000))

        def new_report() -> None:
            """One more observed call: the store changes, so the next list is computed afresh."""
            call = report_pb2.ObservedCall(caller=report_pb2.Caller(host=True, node="bench-node"), service="blob",
                                           account="acct0", method="GET", path="/c0/{name}", status=200, count=1)
            reports.Report(report_pb2.ReportRequest(agent_id="bench", node="bench-node", sequence=next(seq),
                                                    calls=[call]),
                           metadata=(("authorization", f"Bearer {token}"),), timeout=60)

        def rpc() -> float:
            t = time.perf_counter()
            resp = stub.ListIntents(intents_pb2.ListIntentsRequest(), timeout=120)
            rpc.n = len(resp.intents)  # type: ignore[attr-defined]
            return time.perf_counter() - t

        cli_cpu = []

        def cli() -> float:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            subprocess.run([clearance, "intents", "list", "-A", "--mapper", f"127.0.0.1:{port}"], check=True,
                           stdout=subprocess.DEVNULL, cwd="/", env=env)
            wall = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cli_cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            return wall

        first = rpc()
        fresh_rpc, cached_rpc, fresh_cli, cached_cli = [], [], [], []
        for _ in range(3):
            new_report()
            fresh_rpc.append(rpc())
            cached_rpc.append(rpc())
        for _ in range(3):
            new_report()
            fresh_cli.append(cli())
            cached_cli.append(cli())
        t = time.perf_counter()
        subprocess.run([clearance, "--version"], check=True, stdout=subprocess.DEVNULL, cwd="/", env=env)
        startup = time.perf_counter() - t
        hwm, rss = status_kb(proc.pid, "VmHWM"), status_kb(proc.pid, "VmRSS")
        print(f"ListIntents over {rpc.n:,} intents: first {first:.2f} s; after a new report (computed) "  # type: ignore[attr-defined]
              f"median {median(fresh_rpc):.2f} s; unchanged store (cached) median {median(cached_rpc):.2f} s")
        print(f"clearance intents list -A (table to /dev/null), wall: after a new report median "
              f"{median(fresh_cli):.2f} s; unchanged store median {median(cached_cli):.2f} s; "
              f"its own CPU median {median(cli_cpu):.2f} s (interpreter start-up ~{startup:.2f} s)")
        print(f"mapper peak RSS: {hwm / 1024:.0f} MB (now {rss / 1024:.0f} MB)")
        print_load()
        channel.close()
    finally:
        stop(proc, tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
