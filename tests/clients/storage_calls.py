"""A workload: makes Azure Storage calls with the real SDK (bearer auth) and prints what it did.

Run as a process in a fake pod. ``--go FILE`` waits for FILE before working (so the agent can start
in between); with ``--late-import`` nothing TLS-related is imported before that (Python then maps
libssl late). ``--canary S`` puts S in a body, a SAS ``sig`` and a metadata value: none may leave
the agent. Prints one JSON line per call: {"op": ..., "ok": bool}.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def wait_for(path: str | None, timeout_s: float = 120) -> None:
    """Poll for ``path`` to exist (the test's go signal)."""
    if not path:
        return
    end = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if time.monotonic() > end:
            sys.exit(f"go file {path} never appeared")
        time.sleep(0.05)


def report(op: str, fn) -> None:  # noqa: ANN001
    try:
        fn()
        print(json.dumps({"op": op, "ok": True}), flush=True)
    except Exception as e:  # noqa: BLE001 - the op result is the output
        print(json.dumps({"op": op, "ok": False, "error": type(e).__name__}), flush=True)


def blob_calls(url: str, kw: dict, canary: str, suffix: str) -> None:
    from azure.storage.blob import BlobClient, BlobServiceClient

    svc = BlobServiceClient(url, **kw)
    c = svc.get_container_client(f"orders{suffix}")
    report("create_container", c.create_container)
    report("upload_blob", lambda: c.upload_blob(f"invoices/2024/{canary}-name.txt", canary.encode() * 4,
                                                 overwrite=True, metadata={"note": canary}))
    report("get_blob_properties", lambda: c.get_blob_client(f"invoices/2024/{canary}-name.txt").get_blob_properties())
    report("download_blob", lambda: c.download_blob(f"invoices/2024/{canary}-name.txt").readall())
    report("list_blobs", lambda: list(c.list_blobs()))
    sas_url = f"{url}/orders{suffix}/sas-blob.txt?sv=2021-08-06&sp=r&se=2030-01-01&sig={canary}"
    report("sas_download", lambda: BlobClient.from_blob_url(sas_url, **kw).download_blob().readall())
    report("delete_container", c.delete_container)


def queue_calls(url: str, kw: dict, canary: str, suffix: str) -> None:
    from azure.storage.queue import QueueServiceClient

    svc = QueueServiceClient(url, **kw)
    q = svc.get_queue_client(f"jobs{suffix}")
    report("create_queue", q.create_queue)
    report("send_message", lambda: q.send_message(canary))
    report("receive_messages", lambda: list(q.receive_messages()))
    report("peek_messages", lambda: q.peek_messages())
    report("delete_queue", q.delete_queue)


def table_calls(url: str, kw: dict, canary: str, suffix: str) -> None:
    from azure.data.tables import TableServiceClient

    svc = TableServiceClient(url, **kw)
    name = f"ledger{suffix}"
    report("create_table", lambda: svc.create_table(name))
    t = svc.get_table_client(name)
    report("create_entity", lambda: t.create_entity({"PartitionKey": "p", "RowKey": "r", "secret": canary}))
    report("get_entity", lambda: t.get_entity("p", "r"))
    report("query_entities", lambda: list(t.query_entities("PartitionKey eq 'p'")))
    report("delete_table", lambda: svc.delete_table(name))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--service", choices=["blob", "queue", "table"], required=True)
    ap.add_argument("--url", required=True, help="the account endpoint")
    ap.add_argument("--ca", required=True)
    ap.add_argument("--go")
    ap.add_argument("--late-import", action="store_true")
    ap.add_argument("--canary", default="canary")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--hold", help="after the calls, wait for this file before exiting")
    a = ap.parse_args()
    if a.late_import:
        wait_for(a.go)
    from fake_credential import FakeWorkloadIdentityCredential

    kw = {"credential": FakeWorkloadIdentityCredential(), "connection_verify": a.ca, "retry_total": 0}
    calls = {"blob": blob_calls, "queue": queue_calls, "table": table_calls}[a.service]
    if not a.late_import:
        import azure.storage.blob  # noqa: F401 - map libssl now, before the go signal
        import ssl  # noqa: F401
        wait_for(a.go)
    for _ in range(a.rounds):
        calls(a.url, kw, a.canary, uuid.uuid4().hex[:8])
    wait_for(a.hold)


if __name__ == "__main__":
    main()
