"""Helpers shared by the mapper tests: observed calls as an agent sends them, pods files, and an
in-process mapper (real gRPC server on a free port, real SQLite store)."""
from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import yaml

from clearance.mapper.applied import AppliedIntents
from clearance.mapper.auth import SharedToken
from clearance.mapper.ingest import Ingestor
from clearance.mapper.service import Mapper, serve
from clearance.mapper.store import Store
from clearance.mapper.workloads import PodsFileResolver
from clearance.v1 import intents_pb2, intents_pb2_grpc, report_pb2, report_pb2_grpc

TOKEN = "agent-token-0123456789abcdef"
ACCOUNT = "shopdata"
CONTAINER_SCOPE = f"/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}/blobServices/default/containers/uploads"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"


def call(pod: str = "web-7d4b9c6f5-abcde", *, namespace: str = "shop", uid: str | None = None, method: str = "GET",
         path: str = "/uploads/{name}", query: dict[str, str] | None = None, headers: dict[str, str] | None = None,
         status: int = 200, error_code: str = "", count: int = 1, first: int = 0, last: int = 0,
         service: str = "blob", account: str = ACCOUNT, host: bool = False, node: str = "") -> report_pb2.ObservedCall:
    """One observed call, shaped as the agent reports it."""
    now = int(time.time() * 1000)
    caller = report_pb2.Caller(host=True, node=node or "node-1") if host else report_pb2.Caller(
        namespace=namespace, pod_name=pod, pod_uid=f"uid-{pod}" if uid is None else uid, container="app")
    return report_pb2.ObservedCall(
        caller=caller, service=service, account=account, host=f"{account}.{service}.core.windows.net",
        method=method, path=path, query=query or {}, headers=headers or {}, status=status, error_code=error_code,
        count=count, first_seen_unix_ms=first or now, last_seen_unix_ms=last or now)


def pods_file(path: Path, pods: list[tuple[str, str, str, str]]) -> Path:
    """Write a pods file: (namespace, name, owner kind, owner name) per pod; uid is uid-<name>."""
    path.write_text(yaml.safe_dump({"pods": [
        {"namespace": ns, "name": name, "uid": f"uid-{name}", "serviceAccount": "default",
         "owner": {"kind": kind, "name": owner} if kind else None} for ns, name, kind, owner in pods]}))
    return path


@dataclass
class Running:
    mapper: Mapper
    port: int
    channel: grpc.Channel
    reports: report_pb2_grpc.AgentReportsStub
    intents: intents_pb2_grpc.IntentsStub
    pods: Path

    def report(self, calls: list[report_pb2.ObservedCall], *, seq: int = 1, agent: str = "node-1/boot",
               token: str | None = TOKEN) -> report_pb2.ReportResponse:
        md = (("authorization", f"Bearer {token}"),) if token is not None else ()
        return self.reports.Report(report_pb2.ReportRequest(agent_id=agent, node="node-1", sequence=seq,
                                                            calls=calls), metadata=md, timeout=30)

    def list(self, **flt: str) -> intents_pb2.ListIntentsResponse:
        return self.intents.ListIntents(intents_pb2.ListIntentsRequest(filter=intents_pb2.IntentFilter(**flt)),
                                        timeout=30)


@contextlib.contextmanager
def running_mapper(tmp: Path, *, pods: list[tuple[str, str, str, str]] | None = None,
                   applied: AppliedIntents | None = None, max_calls: int = 1000,
                   max_message: int = 4 * 1024 * 1024, **kw: Any) -> Iterator[Running]:
    token_file = tmp / "token"
    token_file.write_text(TOKEN + "\n")
    pf = pods_file(tmp / "pods.yaml", pods if pods is not None else [("shop", "web-7d4b9c6f5-abcde", "ReplicaSet", "web-7d4b9c6f5")])
    store = Store(tmp / "mapper.db")
    mapper = Mapper(ingestor=Ingestor(store, PodsFileResolver(pf), max_calls=max_calls),
                    applied=applied or AppliedIntents(), authenticator=kw.get("authenticator") or SharedToken(token_file))
    server, port = serve(mapper, "127.0.0.1:0", max_message=max_message)
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Running(mapper, port, channel, report_pb2_grpc.AgentReportsStub(channel),
                      intents_pb2_grpc.IntentsStub(channel), pf)
    finally:
        channel.close()
        server.stop(None).wait()
        store.close()
