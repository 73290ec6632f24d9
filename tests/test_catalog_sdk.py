"""Catalog rows driven by the real SDK operations against Azurite (blob, queue, table).

Each SDK operation's requests are recorded with azure-core's public ``raw_request_hook`` /
``raw_response_hook``, reduced to the reported shape by the agent's own endpoint matcher and
redaction (``clearance.nodeagent.pipeline``), and classified. The expected operations and grants
are written by hand.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import pytest

from test_catalog_support import G
from clearance.mapper.catalog import Classification, classify
from clearance.nodeagent.pipeline.endpoints import EndpointMatcher
from clearance.nodeagent.pipeline.http import HttpRequest
from clearance.nodeagent.pipeline.redact import redact
from clearance.v1.report_pb2 import ObservedCall

BB = "blobServices/containers/blobs/"
BC = "blobServices/containers/"
QM = "queueServices/queues/messages/"
TE = "tableServices/tables/entities/"


@dataclass
class Recording:
    """Requests (and their responses) the SDK sent, as the agent would report them."""

    matcher: EndpointMatcher
    calls: list[ObservedCall] = field(default_factory=list)

    def on_request(self, request: Any) -> None:
        r = request.http_request
        url = urlsplit(r.url)
        target = url.path + ("?" + url.query if url.query else "")
        headers = {k.lower(): v for k, v in r.headers.items()}
        method = (headers.get("x-http-method") or r.method).upper()
        ep = self.matcher.match(url.netloc, target)
        assert ep is not None, r.url
        ac = redact(ep, HttpRequest(method, target, headers), self.matcher)
        self.calls.append(ObservedCall(service=ac.service, account=ac.account, host=ac.host, method=ac.method,
                                       path=ac.path, query=ac.query, headers=ac.headers))

    def on_response(self, response: Any) -> None:
        if self.calls:
            self.calls[-1].status = response.http_response.status_code
            self.calls[-1].error_code = response.http_response.headers.get("x-ms-error-code", "")

    def run(self, fn: Callable[[], Any], may_fail: bool = False) -> list[tuple[ObservedCall, Classification]]:
        """Run one SDK operation; the classified calls it made. The catalog classifies the request
        whatever the emulator answers, so ``may_fail`` tolerates an emulator refusal."""
        from azure.core.exceptions import HttpResponseError

        self.calls.clear()
        try:
            result = fn()
            if hasattr(result, "__iter__") and not isinstance(result, (bytes, str, dict)):
                list(result)
            elif hasattr(result, "readall"):
                result.readall()
        except HttpResponseError:
            if not may_fail:
                raise
        return [(c, classify(c)) for c in self.calls]


@pytest.fixture(scope="module")
def clients(azurite):
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient
    from azure.storage.queue import QueueServiceClient

    matcher = EndpointMatcher.from_flags(["blob=" + azurite.endpoint_template("blob", "host"),
                                          "queue=" + azurite.endpoint_template("queue", "path"),
                                          "table=" + azurite.endpoint_template("table", "path")])
    rec = Recording(matcher)
    kw = dict(credential=azurite.credential(), raw_request_hook=rec.on_request,
              raw_response_hook=rec.on_response, retry_total=0, **azurite.sdk_kwargs())
    blob = BlobServiceClient(azurite.blob_url("host"), **kw)
    queue = QueueServiceClient(azurite.queue_url("path"), **kw)
    table = TableServiceClient(azurite.table_url("path"), **kw)
    yield rec, blob, queue, table, azurite.account
    for c in (blob, queue, table):
        c.close()


def _check(got: list[tuple[ObservedCall, Classification]], operation: str, grants: list) -> None:
    assert got, "the SDK operation sent nothing"
    unknown = [(c.method, c.path, dict(c.query), dict(c.headers)) for c, k in got if k.unknown]
    assert not unknown, unknown
    ops = {k.operation: k for _, k in got}
    assert operation in ops, sorted(ops)
    assert sorted(ops[operation].grants, key=lambda g: g.scope) == sorted(grants, key=lambda g: g.scope)
    assert not any(k.denied for _, k in got)


def test_blob_sdk_operations(clients) -> None:
    rec, svc, _, _, acct = clients
    account = f"/providers/Microsoft.Storage/storageAccounts/{acct}"
    name = "cat" + uuid.uuid4().hex[:10]
    cont = f"{account}/blobServices/default/containers/{name}"
    c = svc.get_container_client(name)
    b = c.get_blob_client("dir/a.txt")
    # A fourth item True: Azurite refuses it under OAuth (ACLs) or for its source; the request is
    # still what a workload sends, so it is classified all the same.
    steps: list[tuple[Any, ...]] = [
        (c.create_container, "blob:CreateContainer", [G(account, a=[BC + "write"])]),
        (c.get_container_properties, "blob:GetContainerProperties", [G(cont, a=[BC + "read"])]),
        (lambda: c.set_container_metadata({"k": "v"}), "blob:SetContainerMetadata", [G(cont, a=[BC + "write"])]),
        (c.get_container_access_policy, "blob:GetContainerACL", [G(cont, a=[BC + "getAcl/action"])], True),
        (lambda: c.set_container_access_policy({}), "blob:SetContainerACL", [G(cont, a=[BC + "setAcl/action"])], True),
        (lambda: b.upload_blob(b"hello", overwrite=False), "blob:PutBlob", [G(cont, d=[BB + "add/action"])]),
        (lambda: b.upload_blob(b"hello", overwrite=True), "blob:PutBlob", [G(cont, d=[BB + "write"])]),
        (b.download_blob, "blob:GetBlob", [G(cont, d=[BB + "read"])]),
        (b.get_blob_properties, "blob:GetBlobProperties", [G(cont, d=[BB + "read"])]),
        (lambda: b.set_blob_metadata({"k": "v"}), "blob:SetBlobMetadata", [G(cont, d=[BB + "write"])]),
        (lambda: b.set_http_headers(), "blob:SetBlobProperties", [G(cont, d=[BB + "write"])]),
        (lambda: b.set_blob_tags({"t": "1"}), "blob:SetBlobTags", [G(cont, d=[BB + "tags/write"])]),
        (b.get_blob_tags, "blob:GetBlobTags", [G(cont, d=[BB + "tags/read"])]),
        (b.create_snapshot, "blob:SnapshotBlob", [G(cont, d=[BB + "add/action"])]),
        (lambda: b.set_standard_blob_tier("Cool"), "blob:SetBlobTier", [G(cont, d=[BB + "write"])]),
        (lambda: c.get_blob_client("blocks").stage_block("YmxvY2sx", b"x"), "blob:PutBlock", [G(cont, d=[BB + "write"])]),
        (lambda: c.get_blob_client("blocks").commit_block_list(["YmxvY2sx"]), "blob:PutBlockList", [G(cont, d=[BB + "write"])]),
        (lambda: c.get_blob_client("blocks").get_block_list(), "blob:GetBlockList", [G(cont, d=[BB + "read"])]),
        (lambda: c.get_blob_client("copy").start_copy_from_url(b.url), "blob:CopyBlob", [G(cont, d=[BB + "write", BB + "read"])]),
        (lambda: c.get_blob_client("app").create_append_blob(), "blob:PutBlob", [G(cont, d=[BB + "write"])]),
        (lambda: c.get_blob_client("app").append_block(b"x"), "blob:AppendBlock", [G(cont, d=[BB + "add/action"])]),
        (lambda: c.get_blob_client("pg").create_page_blob(512), "blob:PutBlob", [G(cont, d=[BB + "write"])]),
        (lambda: c.get_blob_client("pg").upload_page(b"\0" * 512, 0, 512), "blob:PutPage", [G(cont, d=[BB + "write"])]),
        (lambda: c.get_blob_client("pg").get_page_ranges(), "blob:GetPageRanges", [G(cont, d=[BB + "read"])]),
        (lambda: b.acquire_lease(15).release(), "blob:AcquireBlobLease", [G(cont, d=[BB + "write"])]),
        (c.list_blobs, "blob:ListBlobs", [G(cont, d=[BB + "read"])]),
        (svc.list_containers, "blob:ListContainers", [G(account, a=[BC + "read"])]),
        (svc.get_service_properties, "blob:GetBlobServiceProperties", [G(account, a=["blobServices/read"])]),
        (lambda: c.get_blob_client("copy").delete_blob(), "blob:DeleteBlob", [G(cont, d=[BB + "delete"])]),
        (lambda: c.delete_blobs("blocks", "app"), "blob:BlobBatch", [G(cont, a=[BC + "write"])]),
        (c.delete_container, "blob:DeleteContainer", [G(cont, a=[BC + "delete"])]),
    ]
    for i, (fn, operation, grants, *may_fail) in enumerate(steps):
        try:
            _check(rec.run(fn, bool(may_fail)), operation, grants)
        except Exception as e:
            raise AssertionError(f"step {i} ({operation})") from e


def test_lease_release_is_its_own_operation(clients) -> None:
    rec, svc, _, _, _ = clients
    c = svc.get_container_client("lease" + uuid.uuid4().hex[:8])
    c.create_container()
    lease = c.acquire_lease(15)
    _check(rec.run(lease.release), "blob:ReleaseContainerLease", [G(
        f"/providers/Microsoft.Storage/storageAccounts/{clients[4]}/blobServices/default/containers/{c.container_name}",
        a=[BC + "write"])])
    c.delete_container()


def test_queue_sdk_operations(clients) -> None:
    rec, _, svc, _, acct = clients
    account = f"/providers/Microsoft.Storage/storageAccounts/{acct}"
    name = "catq" + uuid.uuid4().hex[:10]
    queue = f"{account}/queueServices/default/queues/{name}"
    q = svc.get_queue_client(name)
    _check(rec.run(q.create_queue), "queue:CreateQueue", [G(account, a=["queueServices/queues/write"])])
    _check(rec.run(lambda: q.set_queue_metadata({"k": "v"})), "queue:SetQueueMetadata", [G(queue, a=["queueServices/queues/write"])])
    _check(rec.run(q.get_queue_properties), "queue:GetQueueMetadata", [G(queue, a=["queueServices/queues/read"])])
    _check(rec.run(q.get_queue_access_policy, True), "queue:GetQueueACL", [G(queue, a=["queueServices/queues/getAcl/action"])])
    _check(rec.run(lambda: q.send_message("hi")), "queue:PutMessage", [G(queue, d=[QM + "add/action"])])
    _check(rec.run(q.peek_messages), "queue:PeekMessages", [G(queue, d=[QM + "read"])])
    got = rec.run(lambda: q.receive_messages(max_messages=1, visibility_timeout=1))
    _check(got, "queue:GetMessages", [G(queue, d=[QM + "process/action"])])
    msg = q.send_message("again")
    _check(rec.run(lambda: q.update_message(msg, content="x")), "queue:UpdateMessage", [G(queue, d=[QM + "write"])])
    msg = next(iter(q.receive_messages(max_messages=1)))
    _check(rec.run(lambda: q.delete_message(msg)), "queue:DeleteMessage", [G(queue, d=[QM + "process/action"])])
    _check(rec.run(q.clear_messages), "queue:ClearMessages", [G(queue, d=[QM + "delete"])])
    _check(rec.run(svc.list_queues), "queue:ListQueues", [G(account, a=["queueServices/queues/read"])])
    _check(rec.run(q.delete_queue), "queue:DeleteQueue", [G(queue, a=["queueServices/queues/delete"])])


def test_table_sdk_operations(clients) -> None:
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    rec, _, _, svc, acct = clients
    account = f"/providers/Microsoft.Storage/storageAccounts/{acct}"
    name = "catt" + uuid.uuid4().hex[:10]
    table = f"{account}/tableServices/default/tables/{name}"
    t = svc.get_table_client(name)
    e = {"PartitionKey": "p", "RowKey": "r", "v": 1}
    _check(rec.run(t.create_table), "table:CreateTable", [G(account, a=["tableServices/tables/write"])])
    _check(rec.run(svc.list_tables), "table:QueryTables", [G(account, a=["tableServices/tables/read"])])
    _check(rec.run(lambda: t.create_entity(e)), "table:InsertEntity", [G(table, d=[TE + "add/action"])])
    _check(rec.run(lambda: t.upsert_entity(e, mode=UpdateMode.MERGE)), "table:InsertOrMergeEntity",
           [G(table, d=[TE + "add/action", TE + "update/action"])])
    _check(rec.run(lambda: t.upsert_entity(e, mode=UpdateMode.REPLACE)), "table:InsertOrReplaceEntity",
           [G(table, d=[TE + "add/action", TE + "update/action"])])
    _check(rec.run(lambda: t.update_entity(e, mode=UpdateMode.MERGE)), "table:MergeEntity", [G(table, d=[TE + "update/action"])])
    _check(rec.run(lambda: t.update_entity(e, mode=UpdateMode.REPLACE)), "table:UpdateEntity", [G(table, d=[TE + "update/action"])])
    _check(rec.run(lambda: t.get_entity("p", "r")), "table:QueryEntities", [G(table, d=[TE + "read"])])
    _check(rec.run(lambda: t.query_entities("PartitionKey eq 'p'")), "table:QueryEntities", [G(table, d=[TE + "read"])])
    _check(rec.run(t.get_table_access_policy, True), "table:GetTableACL", [G(table, a=["tableServices/tables/getAcl/action"])])
    _check(rec.run(lambda: t.submit_transaction([("upsert", {"PartitionKey": "p", "RowKey": "r2"})])),
           "table:EntityGroupTransaction", [])
    _check(rec.run(lambda: t.delete_entity("p", "r", match_condition=MatchConditions.Unconditionally)),
           "table:DeleteEntity", [G(table, d=[TE + "delete"])])
    _check(rec.run(t.delete_table), "table:DeleteTable", [G(table, a=["tableServices/tables/delete"])])
