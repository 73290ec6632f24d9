"""Unit tests of the agent's user-space pipeline stages, on requests shaped as the Azure SDKs send them."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from clearance.nodeagent.events import Direction, TlsEvent
from clearance.nodeagent.metrics import Metrics
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline
from clearance.nodeagent.pipeline.attribution import cgroup2_mount, parse_cgroup_path
from clearance.nodeagent.pipeline.batch import subrequests
from clearance.nodeagent.pipeline.endpoints import parse_template
from clearance.nodeagent.pipeline.http import Ignored, parse_request_head, parse_response_head
from clearance.nodeagent.pipeline.redact import storage_path, vault_path
from clearance.nodeagent.pods import Pod, PodsFile
from logcheck import assert_not_logged

CANARIES = ("CANARYSIG0123456789abcdef", "CANARYBEARERTOKEN", "CANARYCOPYAUTH", "CANARYBODYTEXT",
            "CANARYBLOBNAME", "CANARYPARTITION", "CANARYROWKEY", "CANARYCOOKIE", "CANARYSKOID",
            "CANARYKVVERSION0123456789abcdef")
UA = "azsdk-python-storage-blob/12.31.1 Python/3.11.2 (Linux-6.18.0-x86_64-with-glibc2.36)"


def sdk_request(method: str, target: str, host: str, *extra: str, body: bytes = b"") -> bytes:
    """A request head as azure-core's requests transport writes it (header order included)."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", f"User-Agent: {UA}",
             "Accept-Encoding: gzip, deflate", "Accept: application/xml", "Connection: keep-alive",
             *extra, f"Content-Length: {len(body)}", "x-ms-version: 2026-02-06",
             "x-ms-date: Thu, 04 Dec 2025 20:00:00 GMT",
             "x-ms-client-request-id: 0b3c1f7e-d1a4-11f0-9c1c-0242ac120002",
             f"Authorization: Bearer eyJ0eXAiOiJKV1QifQ.{CANARIES[1]}.c2ln",
             f"Cookie: session={CANARIES[7]}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def response(status: int, reason: str, *extra: str, body: bytes = b"") -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", "Server: Azurite-Blob/3.35.0", *extra,
             f"Content-Length: {len(body)}", "Date: Thu, 04 Dec 2025 20:00:00 GMT"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class NoPods:
    def get(self, uid: str) -> Pod | None:
        return None


class Feeder:
    """A pipeline and helpers that turn bytes into TlsEvents of one process."""

    def __init__(self, endpoints: list[str] | None = None, pods=None, **kw) -> None:
        self.metrics = Metrics()
        self.pipe = Pipeline(EndpointMatcher.from_flags(endpoints or []),
                             Attributor(pods or NoPods(), "node-1"), self.metrics, **kw)
        self.now = time.monotonic_ns()

    def write(self, data: bytes, conn: int = 1, pid: int = 4242, cgroup: int = 1, length: int | None = None,
              cap: int | None = None) -> None:
        self.now += 1000
        captured = data[:cap] if cap else data
        self.pipe.feed(TlsEvent(Direction.WRITE, pid, pid, cgroup, conn, self.now, captured,
                                length if length is not None else len(data)))

    def read(self, data: bytes, conn: int = 1, pid: int = 4242) -> None:
        self.now += 1000
        self.pipe.feed(TlsEvent(Direction.READ, pid, pid, 1, conn, self.now, data, len(data)))

    def drain(self, final: bool = True):
        return self.pipe.drain(final=final)

    def ignored(self, reason: str) -> float:
        self.pipe.flush_metrics()
        return self.metrics.value("clearance_agent_ignored_total", {"reason": reason})


# -- stage 2: HTTP ------------------------------------------------------------------------------
def test_parse_request_head_and_method_override():
    req = parse_request_head(b"POST /orders(PartitionKey='a',RowKey='b') HTTP/1.1\r\nHost: a.table.core.windows.net"
                             b"\r\nX-HTTP-Method: MERGE\r\nIf-Match: *\r\nHost2: x")
    assert req.method == "MERGE" and req.headers["if-match"] == "*" and req.headers["host2"] == "x"


@pytest.mark.parametrize("head, reason", [
    (b"PRI * HTTP/2.0", "http2"),
    (b"GET / HTTP/2\r\nHost: a", "http2"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b", "malformed"),
    (b"GET / HTTP/1.1\r\nHost: a\nX-Smuggle: 1", "malformed"),
    (b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: 1", "malformed"),
    (b"GET / HTTP/1.1\r\nHost: \xff\xfe", "binary"),
    (b"GET / HTTP/1.1\r\nHost: a\x00", "binary"),
    (b"FOO / HTTP/1.1\r\nHost: a", "malformed"),
    (b"GET / HTTP/1.1\r\nAccept: x", "malformed"),
    (b"GET /" + b"a" * 13000 + b" HTTP/1.1\r\nHost: a", "oversized"),
    (b"GET / HTTP/1.1\r\n" + b"X-A: 1\r\n" * 200 + b"Host: a", "oversized"),
])
def test_parse_request_head_rejects(head, reason):
    with pytest.raises(Ignored) as exc:
        parse_request_head(head)
    assert exc.value.reason == reason


def test_parse_response_head_error_codes():
    assert parse_response_head(response(201, "Created")) == (201, "")
    assert parse_response_head(response(403, "Forbidden", "x-ms-error-code: AuthorizationPermissionMismatch")) == (
        403, "AuthorizationPermissionMismatch")
    kv = response(403, "Forbidden", "Content-Type: application/json", body=(
        b'{"error":{"code":"Forbidden","message":"Caller is not authorized. Action: '
        b'\'Microsoft.KeyVault/vaults/secrets/getSecret/action\'","innererror":{"code":"ForbiddenByRbac"}}}'))
    assert parse_response_head(kv) == (403, "ForbiddenByRbac")
    with pytest.raises(Ignored):
        parse_response_head(b"HTTP/1.1 abc")


# -- stage 3: endpoints -------------------------------------------------------------------------
@pytest.mark.parametrize("host, service, account", [
    ("shopdata.blob.core.windows.net", "blob", "shopdata"),
    ("shopdata.queue.core.windows.net:443", "queue", "shopdata"),
    ("shopdata.table.core.usgovcloudapi.net", "table", "shopdata"),
    ("shopdata.file.core.chinacloudapi.cn", "file", "shopdata"),
    ("shopdata.dfs.core.windows.net", "dfs", "shopdata"),
    ("shopdata-secondary.blob.core.windows.net", "blob", "shopdata"),
    ("shopdata.z17.blob.storage.azure.net", "blob", "shopdata"),
    ("kv-orders.vault.azure.net", "vault", "kv-orders"),
    ("kv-orders.vault.usgovcloudapi.net", "vault", "kv-orders"),
    ("kv-orders.vault.azure.cn", "vault", "kv-orders"),
    ("management.azure.com", "arm", ""),
    ("management.usgovcloudapi.net", "arm", ""),
    ("management.chinacloudapi.cn", "arm", ""),
    ("ShopData.Blob.Core.Windows.Net", "blob", "shopdata"),
])
def test_builtin_endpoints(host, service, account):
    ep = EndpointMatcher.from_flags([]).match(host, "/c")
    assert ep is not None and (ep.service, ep.account) == (service, account)


@pytest.mark.parametrize("host", ["example.com", "blob.core.windows.net", "a.b.blob.core.windows.net",
                                  "x.web.core.windows.net", "evil.com.blob.core.windows.net.evil.com",
                                  "login.microsoftonline.com", "UPPER_.blob.core.windows.net", ""])
def test_not_azure(host):
    assert EndpointMatcher.from_flags([]).match(host, "/") is None


def test_custom_endpoints_host_and_path_style():
    m = EndpointMatcher.from_flags(["blob=https://{account}.blob.localhost:10000",
                                    "queue=https://127.0.0.1:10001/{account}", "arm=https://127.0.0.1:8443",
                                    "vault=https://{account}.vault.localhost:8444"])
    ep = m.match("devstoreaccount1.blob.localhost:10000", "/orders/x?comp=list")
    assert (ep.service, ep.account, ep.path, ep.query) == ("blob", "devstoreaccount1", "/orders/x", "comp=list")
    ep = m.match("127.0.0.1:10001", "/devstoreaccount1/jobs/messages")
    assert (ep.service, ep.account, ep.path) == ("queue", "devstoreaccount1", "/jobs/messages")
    assert m.match("127.0.0.1:8443", "/subscriptions/s1").service == "arm"
    assert m.match("kv1.vault.localhost:8444", "/secrets/a").account == "kv1"
    assert m.match("127.0.0.1:10002", "/devstoreaccount1/t") is None       # other port
    assert m.match("devstoreaccount1.blob.localhost", "/c") is None         # default port
    ep = m.match("ignored", "https://devstoreaccount1.blob.localhost:10000/c/b")  # absolute-form target
    assert (ep.account, ep.path) == ("devstoreaccount1", "/c/b")


@pytest.mark.parametrize("value, words", [
    ("blob", "SERVICE=TEMPLATE"), ("cosmos=https://{account}.x", "unknown service"),
    ("blob=ftp://{account}.x", "https://"), ("blob=https://x.localhost", "needs {account}"),
    ("arm=https://{account}.x", "no {account}"), ("blob=https://x:0/{account}", "port"),
    ("blob=https://x:abc/{account}", "port"), ("blob=https://{account}.x/{account}", "not both"),
    ("blob=https://x/{account}/more", "path may only"), ("blob=https://a.{account}.x", "first label"),
    ("blob=https://{account}.x?sig=1", "no query"), ("blob=https://u:p@{account}.x", "credentials"),
])
def test_bad_endpoint_flag_names_the_value(value, words):
    with pytest.raises(ValueError) as exc:
        EndpointMatcher.from_flags(["blob=https://{account}.ok.localhost", value])
    assert repr(value) in str(exc.value) and words in str(exc.value)
    assert parse_template("blob=https://{account}.ok.localhost").host_style


# -- stage 4: redaction -------------------------------------------------------------------------
@pytest.mark.parametrize("service, path, shape", [
    ("blob", "/", "/"), ("blob", "", "/"), ("blob", "/uploads", "/uploads"), ("blob", "/uploads/", "/uploads"),
    ("blob", f"/uploads/a/b/{CANARIES[4]}.txt", "/uploads/{name}"), ("blob", "/$root/x", "/$root/{name}"),
    ("blob", "/up%20loads/x", "/{invalid}/{name}"), ("queue", "/jobs/messages", "/jobs/messages"),
    ("queue", "/jobs/messages/0a1b2c", "/jobs/messages/{name}"), ("queue", "/jobs", "/jobs"),
    ("table", "/Tables", "/Tables"), ("table", "/Tables('orders')", "/Tables('orders')"),
    ("table", "/orders()", "/orders()"), ("table", "/$batch", "/$batch"),
    ("table", f"/orders(PartitionKey='{CANARIES[5]}',RowKey='{CANARIES[6]}')",
     "/orders(PartitionKey='{key}',RowKey='{key}')"),
    ("table", f"/orders(PartitionKey=%27{CANARIES[5]}%27,RowKey=%27x%27)", "/orders(PartitionKey='{key}',RowKey='{key}')"),
    ("file", "/share/dir/file.txt", "/share/{name}"), ("dfs", "/fs/dir/f", "/fs/{name}"),
])
def test_storage_path_shapes(service, path, shape):
    assert storage_path(service, path) == shape


@pytest.mark.parametrize("path, shape", [
    ("/secrets/db-password", "/secrets/db-password"),
    (f"/secrets/db-password/{CANARIES[9]}", "/secrets/db-password/{version}"),
    ("/secrets/db-password/versions", "/secrets/db-password/versions"),
    ("/keys/signing/0123abcd/sign", "/keys/signing/{version}/sign"),
    ("/keys/signing/create", "/keys/signing/create"), ("/secrets", "/secrets"),
    ("/deletedsecrets/x/recover", "/deletedsecrets/x/recover"), ("/certificates/issuers/ca1", "/certificates/issuers/ca1"),
    ("/bogus/x", "/{invalid}"), ("/secrets/bad name", "/secrets/{invalid}"),
])
def test_vault_path_shapes(path, shape):
    assert vault_path(path) == shape


def test_blob_put_keeps_operation_identifying_parts_only(caplog):
    caplog.set_level(logging.DEBUG)
    f = Feeder()
    sas = (f"sv=2025-01-05&ss=b&srt=sco&sp=rwdlac&se=2026-01-01T00:00:00Z&st=2025-01-01&spr=https"
           f"&skoid={CANARIES[8]}&sktid=t&skt=a&ske=b&sks=b&skv=2025&sr=b&sip=1.2.3.4&sig={CANARIES[0]}")
    f.write(sdk_request("PUT", f"/uploads/invoices/{CANARIES[4]}.pdf?{sas}&timeout=30",
                        "shopdata.blob.core.windows.net", "x-ms-blob-type: BlockBlob", "If-None-Match: *",
                        f"x-ms-meta-note: {CANARIES[3]}", "x-ms-tags: project=" + CANARIES[3],
                        f"x-ms-copy-source: https://src.blob.core.windows.net/golden/{CANARIES[4]}?sig={CANARIES[0]}",
                        f"x-ms-copy-source-authorization: Bearer {CANARIES[2]}",
                        body=CANARIES[3].encode() * 10))
    f.read(response(201, "Created"))
    (call,) = f.drain()
    assert (call.service, call.account, call.method, call.path, call.status) == (
        "blob", "shopdata", "PUT", "/uploads/{name}", 201)
    assert dict(call.query) == {}
    assert dict(call.headers) == {"x-ms-blob-type": "BlockBlob", "if-none-match": "*", "x-ms-tags": "*",
                                  "x-ms-copy-source": "https://src.blob.core.windows.net/golden",
                                  "x-ms-copy-source-authorization": "*", "x-ms-version": "2026-02-06"}
    assert call.caller.host and call.caller.node == "node-1"
    blob = call.SerializeToString()
    for canary in CANARIES:
        assert canary.encode() not in blob
        assert_not_logged(caplog.records, canary)


def test_copy_source_authorization_leaves_as_presence_only_and_grants_source_read(caplog):
    """The catalog grants read on a cross-account copy source only when the call carried a bearer
    for it (x-ms-copy-source-authorization); the agent reports that header as "*", never its value."""
    from clearance.mapper.catalog import classify

    caplog.set_level(logging.DEBUG)
    f = Feeder()
    source = f"x-ms-copy-source: https://other.blob.core.windows.net/golden/{CANARIES[4]}?sig={CANARIES[0]}"
    f.write(sdk_request("PUT", "/uploads/copy-1", "shopdata.blob.core.windows.net", "x-ms-blob-type: BlockBlob",
                        source, f"x-ms-copy-source-authorization: Bearer {CANARIES[2]}"), conn=1)
    f.write(sdk_request("PUT", "/uploads/copy-2", "shopdata.blob.core.windows.net", "x-ms-blob-type: BlockBlob",
                        source), conn=2)
    f.read(response(201, "Created"), conn=1)
    f.read(response(201, "Created"), conn=2)
    calls = sorted(f.drain(), key=lambda c: len(c.headers))  # blob names are redacted: tell them by headers
    assert [c.path for c in calls] == ["/uploads/{name}"] * 2
    no_auth, with_auth = calls
    assert with_auth.headers["x-ms-copy-source-authorization"] == "*"
    assert "x-ms-copy-source-authorization" not in no_auth.headers
    for call in (with_auth, no_auth):
        wire = call.SerializeToString()
        for canary in CANARIES:
            assert canary.encode() not in wire
    assert_not_logged(caplog.records, *CANARIES)
    source_scope = "/providers/Microsoft.Storage/storageAccounts/other/blobServices/default/containers/golden"
    assert any(g.scope.endswith(source_scope) for g in classify(with_auth).grants)
    assert not any(g.scope.endswith(source_scope) for g in classify(no_auth).grants)


def test_query_allow_list_and_presence_values():
    f = Feeder()
    f.write(sdk_request("DELETE", "/uploads/x?snapshot=2025-01-01T00%3A00%3A00Z&versionid=v1&deletetype=permanent"
                        f"&sig={CANARIES[0]}&comp=tags&restype=bad%20value&unknown=1", "shop1.blob.core.windows.net",
                        "If-None-Match: \"0x8D\"", "x-ms-delete-snapshots: include"))
    f.write(sdk_request("GET", "/jobs/messages?peekonly=true&numofmessages=32&popreceipt=AgAAAA", "shop1.queue.core.windows.net"),
            conn=2)
    calls = {c.service: c for c in f.drain()}
    assert dict(calls["blob"].query) == {"snapshot": "*", "versionid": "*", "deletetype": "permanent", "comp": "tags"}
    assert dict(calls["blob"].headers) == {"x-ms-delete-snapshots": "include", "x-ms-version": "2026-02-06"}
    assert dict(calls["queue"].query) == {"peekonly": "true", "popreceipt": "*"}
    assert calls["queue"].status == 0  # no response seen


def test_vault_and_arm_calls():
    f = Feeder()
    f.write(sdk_request("GET", f"/secrets/db-password/{CANARIES[9]}?api-version=7.5&maxresults=3",
                        "kv-orders.vault.azure.net"))
    f.read(response(403, "Forbidden", body=b'{"error":{"code":"Forbidden","innererror":{"code":"ForbiddenByRbac"}}}'))
    arm = ("/subscriptions/0000/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/shopdata/"
           "listKeys?api-version=2023-05-01&$skiptoken=" + CANARIES[0])
    f.write(sdk_request("POST", arm, "management.azure.com"), conn=2)
    f.read(response(200, "OK", body=b'{"keys":[{"value":"' + CANARIES[3].encode() + b'"}]}'), conn=2)
    calls = {c.service: c for c in f.drain()}
    kv = calls["vault"]
    assert (kv.account, kv.path, dict(kv.query), kv.status, kv.error_code) == (
        "kv-orders", "/secrets/db-password/{version}", {"api-version": "7.5"}, 403, "ForbiddenByRbac")
    a = calls["arm"]
    assert a.path.endswith("/storageAccounts/shopdata/listKeys") and dict(a.query) == {"api-version": "2023-05-01"}
    assert a.account == "" and a.status == 200
    for c in calls.values():
        for canary in CANARIES:
            assert canary.encode() not in c.SerializeToString()


# -- stage 1: reassembly and response pairing ---------------------------------------------------
def test_headers_spanning_writes_and_pipelined_responses():
    f = Feeder(["blob=https://127.0.0.1:10000/{account}"])
    first = sdk_request("GET", "/devstoreaccount1/orders?restype=container&comp=list", "127.0.0.1:10000")
    for i in range(0, len(first), 40):  # a head written in 40-byte pieces
        f.write(first[i:i + 40])
    f.write(sdk_request("PUT", "/devstoreaccount1/orders?restype=container", "127.0.0.1:10000"))
    f.read(response(200, "OK", body=b"<EnumerationResults/>"))
    f.read(response(409, "Conflict", "x-ms-error-code: ContainerAlreadyExists"))
    calls = sorted(f.drain(), key=lambda c: c.method)
    assert [(c.method, c.path, c.query.get("comp", ""), c.status, c.error_code) for c in calls] == [
        ("GET", "/orders", "list", 200, ""), ("PUT", "/orders", "", 409, "ContainerAlreadyExists")]


def test_body_writes_are_skipped_and_next_request_found():
    f = Feeder()
    body = b"GET / HTTP/1.1 inside a body is not a request " * 200
    head = sdk_request("PUT", "/c/b", "shop1.blob.core.windows.net", "x-ms-blob-type: BlockBlob", body=body)
    split = head.index(b"\r\n\r\n") + 4
    f.write(head[:split + 100])                   # head and the start of the body in one write
    f.write(head[split + 100:split + 5000])       # body continues
    f.write(head[split + 5000:], cap=64)          # the rest, captured only in part
    f.write(sdk_request("GET", "/c/b", "shop1.blob.core.windows.net"))
    f.read(response(201, "Created"))
    f.read(response(200, "OK"))
    assert sorted((c.method, c.status) for c in f.drain()) == [("GET", 200), ("PUT", 201)]
    assert f.ignored("not_http") == 0 and f.ignored("malformed") == 0


def test_oversized_head_dropped_and_counted_then_recovers():
    f = Feeder()
    huge = sdk_request("GET", "/c/b", "shop1.blob.core.windows.net", *[f"x-ms-meta-k{i}: {'v' * 200}" for i in range(100)])
    for i in range(0, len(huge), 4096):
        f.write(huge[i:i + 4096])
    assert f.ignored("oversized") == 1
    f.write(sdk_request("GET", "/c", "shop1.blob.core.windows.net"))
    assert [c.path for c in f.drain()] == ["/c"]
    assert f.pipe.stats()["buffered_bytes"] == 0


def test_truncated_capture_keeps_request_line_and_host():
    f = Feeder()
    req = sdk_request("GET", "/c/b?comp=tags&sig=" + "s" * 1500, "shop1.blob.core.windows.net")
    f.write(req, cap=2048, length=len(req))
    (call,) = f.drain()
    assert (call.path, dict(call.query)) == ("/c/{name}", {"comp": "tags"})


def test_garbage_is_counted_never_raised():
    f = Feeder()
    f.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", conn=1)
    f.write(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", conn=2)
    f.write(bytes(range(256)), conn=3)
    f.write(b"hello world\r\n", conn=4)
    f.read(b"HTTP/1.1 200 OK\r\n\r\n", conn=5)
    f.read(b"\x00\x01", conn=5)
    assert (f.ignored("http2"), f.ignored("tls_in_tls"), f.ignored("binary"), f.ignored("not_http"),
            f.ignored("unpaired_response")) == (1, 1, 1, 2, 1)
    assert f.drain() == []


def test_interim_100_continue_is_skipped():
    f = Feeder()
    f.write(sdk_request("PUT", "/c/b", "shop1.blob.core.windows.net", "Expect: 100-continue"))
    f.read(b"HTTP/1.1 100 Continue\r\n\r\n")
    f.read(response(201, "Created"))
    assert [c.status for c in f.drain()] == [201]


def test_connection_lru_flushes_pending_calls_not_drops_them():
    f = Feeder(max_conns=8)
    for conn in range(20):
        f.write(sdk_request("GET", f"/c{conn}", "shop1.blob.core.windows.net"), conn=conn)
    assert f.pipe.stats()["connections"] == 8
    assert f.ignored("evicted") == 12
    assert len(f.drain()) == 20


def test_pending_waits_for_response_until_timeout():
    f = Feeder(response_wait_s=2.0)
    f.write(sdk_request("GET", "/c", "shop1.blob.core.windows.net"))
    assert f.pipe.drain(now_ns=f.now + 10**9) == []
    (call,) = f.pipe.drain(now_ns=f.now + 3 * 10**9)
    assert call.status == 0


# -- batches ------------------------------------------------------------------------------------
BLOB_BATCH = (
    "--batch_7a1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 0\r\n\r\n"
    f"DELETE /devstoreaccount1/orders/{CANARIES[4]}-1.txt?sig={CANARIES[0]} HTTP/1.1\r\n"
    f"x-ms-delete-snapshots: include\r\nx-ms-date: Thu, 04 Dec 2025 20:00:00 GMT\r\n"
    f"Authorization: Bearer {CANARIES[1]}\r\nContent-Length: 0\r\n\r\n\r\n"
    "--batch_7a1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
    f"PUT /devstoreaccount1/archive/{CANARIES[4]}-2.txt?comp=tier HTTP/1.1\r\nx-ms-access-tier: Cool\r\n"
    "Content-Length: 0\r\n\r\n\r\n--batch_7a1--\r\n").encode()
BLOB_BATCH_RESPONSE = (
    "HTTP/1.1 202 Accepted\r\nContent-Type: multipart/mixed; boundary=batchresponse_1\r\n\r\n"
    "--batchresponse_1\r\nContent-Type: application/http\r\nContent-ID: 0\r\n\r\nHTTP/1.1 202 Accepted\r\n"
    "x-ms-delete-type-permanent: false\r\n\r\n--batchresponse_1\r\nContent-Type: application/http\r\n"
    "Content-ID: 1\r\n\r\nHTTP/1.1 403 This request is not authorized\r\nx-ms-error-code: "
    "AuthorizationPermissionMismatch\r\n\r\n--batchresponse_1--\r\n").encode()


def test_blob_batch_subrequests_each_become_a_call():
    f = Feeder(["blob=https://127.0.0.1:10000/{account}"])
    req = sdk_request("POST", "/devstoreaccount1/?comp=batch", "127.0.0.1:10000",
                      "Content-Type: multipart/mixed; boundary=batch_7a1", body=BLOB_BATCH)
    split = req.index(b"\r\n\r\n") + 4
    f.write(req[:split])          # head, then the body in a separate write
    f.write(req[split:])
    f.read(BLOB_BATCH_RESPONSE)
    calls = sorted(f.drain(), key=lambda c: c.path)
    assert [(c.method, c.path, dict(c.query), c.status) for c in calls] == [
        ("POST", "/", {"comp": "batch"}, 202),
        ("PUT", "/archive/{name}", {"comp": "tier"}, 403),
        ("DELETE", "/orders/{name}", {}, 202)]
    assert calls[1].error_code == "AuthorizationPermissionMismatch"
    assert calls[1].headers["x-ms-access-tier"] == "Cool"
    assert calls[2].headers["x-ms-delete-snapshots"] == "include"
    for c in calls:
        for canary in CANARIES:
            assert canary.encode() not in c.SerializeToString()


def test_table_batch_changeset_with_absolute_urls():
    body = (
        "--batch_b1\r\nContent-Type: multipart/mixed; boundary=changeset_c1\r\n\r\n"
        "--changeset_c1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        "POST https://shopdata.table.core.windows.net/orders HTTP/1.1\r\nContent-Type: application/json\r\n"
        f"Accept: application/json;odata=minimalmetadata\r\n\r\n{{\"PartitionKey\":\"{CANARIES[5]}\",\"v\":\"{CANARIES[3]}\"}}\r\n"
        "--changeset_c1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        f"PATCH https://shopdata.table.core.windows.net/orders(PartitionKey='{CANARIES[5]}',RowKey='{CANARIES[6]}') HTTP/1.1\r\n"
        "If-Match: W/\"datetime'2025'\"\r\nContent-Type: application/json\r\n\r\n{}\r\n"
        "--changeset_c1--\r\n--batch_b1--\r\n").encode()
    subs = subrequests("multipart/mixed; boundary=batch_b1", body)
    assert [(s.method, s.headers.get("if-match", "")[:2]) for s in subs] == [("POST", ""), ("PATCH", "W/")]
    f = Feeder()
    f.write(sdk_request("POST", "/$batch", "shopdata.table.core.windows.net",
                        "Content-Type: multipart/mixed; boundary=batch_b1", body=body))
    f.read(response(202, "Accepted"))
    calls = sorted((c.method, c.path, dict(c.headers).get("if-match", "")) for c in f.drain())
    assert calls == [("PATCH", "/orders(PartitionKey='{key}',RowKey='{key}')", "*"),
                     ("POST", "/$batch", ""), ("POST", "/orders", "")]


# -- stage 6: dedupe ----------------------------------------------------------------------------
def test_dedupe_counts_and_first_last_seen():
    f = Feeder()
    for i in range(5):
        f.write(sdk_request("GET", f"/orders/{CANARIES[4]}{i}", "shop1.blob.core.windows.net"))
        f.read(response(200, "OK"))
    f.write(sdk_request("GET", "/orders/x", "shop1.blob.core.windows.net"))
    f.read(response(404, "Not Found", "x-ms-error-code: BlobNotFound"))
    calls = sorted(f.drain(), key=lambda c: c.status)
    assert [(c.count, c.status) for c in calls] == [(5, 200), (1, 404)]
    assert calls[0].first_seen_unix_ms <= calls[0].last_seen_unix_ms
    assert abs(calls[0].first_seen_unix_ms - time.time() * 1000) < 60_000
    assert f.drain() == []
    assert f.metrics.value("clearance_agent_parsed_requests_total") == 6


# -- stage 5: attribution -----------------------------------------------------------------------
@pytest.mark.parametrize("path, ident", [
    ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0b3c1f7e_d1a4_11f0_9c1c_0242ac120002.slice/"
     "cri-containerd-" + "a" * 64 + ".scope", ("0b3c1f7e-d1a4-11f0-9c1c-0242ac120002", "a" * 64)),
    ("/kubepods.slice/kubepods-pod0b3c1f7e_d1a4_11f0_9c1c_0242ac120002.slice/crio-" + "b" * 64 + ".scope",
     ("0b3c1f7e-d1a4-11f0-9c1c-0242ac120002", "b" * 64)),
    ("/kubepods/burstable/pod0b3c1f7e-d1a4-11f0-9c1c-0242ac120002/" + "c" * 64,
     ("0b3c1f7e-d1a4-11f0-9c1c-0242ac120002", "c" * 64)),
    ("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b3c1f7e_d1a4_11f0_9c1c_0242ac120002.slice/"
     "docker-" + "d" * 64 + ".scope", ("0b3c1f7e-d1a4-11f0-9c1c-0242ac120002", "d" * 64)),
    ("/kubepods.slice/kubepods-pod0b3c1f7e_d1a4_11f0_9c1c_0242ac120002.slice", ("0b3c1f7e-d1a4-11f0-9c1c-0242ac120002", "")),
    ("/system.slice/docker-" + "e" * 64 + ".scope", None), ("/user.slice/session-1.scope", None), ("/", None),
])
def test_parse_cgroup_path(path, ident):
    assert parse_cgroup_path(path) == ident


def test_attribution_through_real_cgroups(fake_pods, tmp_path):
    root = cgroup2_mount()
    assert root is not None
    a = fake_pods.start("shop", "orders-7d9c-x2x1", ["sleep", "60"], service_account="orders",
                        owner=("Deployment", "orders"), container="api")
    b = fake_pods.start("shop", "billing-5f-abcde", ["sleep", "60"], service_account="billing",
                        owner=("StatefulSet", "billing"))
    pods = PodsFile(fake_pods.pods_file(tmp_path / "pods.yaml"))
    f = Feeder(pods=pods)
    f.write(sdk_request("GET", "/orders", "shop1.blob.core.windows.net"), pid=a.pid, cgroup=a.cgroup_id, conn=1)
    f.write(sdk_request("GET", "/billing", "shop1.blob.core.windows.net"), pid=b.pid, cgroup=b.cgroup_id, conn=2)
    b.terminate()  # gone before the next call: found through the cgroup index, not /proc
    f.write(sdk_request("PUT", "/billing", "shop1.blob.core.windows.net"), pid=b.pid, cgroup=b.cgroup_id, conn=3)
    f.write(sdk_request("GET", "/host", "shop1.blob.core.windows.net"), pid=1, cgroup=1, conn=4)
    calls = {(c.method, c.path): c.caller for c in f.drain()}
    assert (calls["GET", "/orders"].namespace, calls["GET", "/orders"].pod_name, calls["GET", "/orders"].container,
            calls["GET", "/orders"].service_account, calls["GET", "/orders"].owner_kind) == (
        "shop", "orders-7d9c-x2x1", "api", "orders", "Deployment")
    assert calls["GET", "/orders"].pod_uid == a.uid and not calls["GET", "/orders"].host
    assert calls["GET", "/billing"].pod_name == calls["PUT", "/billing"].pod_name == "billing-5f-abcde"
    assert calls["GET", "/host"].host and calls["GET", "/host"].node == "node-1"


def test_unknown_pod_waits_for_grace_then_reports_host_with_ids(fake_pods, tmp_path):
    p = fake_pods.start("shop", "new-pod", ["sleep", "60"])
    pods_path = tmp_path / "pods.yaml"
    pods_path.write_text("pods: []\n")
    pods = PodsFile(pods_path, check_interval=0)
    f = Feeder(pods=pods, pod_grace_s=5)
    f.write(sdk_request("GET", "/c", "shop1.blob.core.windows.net"), pid=p.pid, cgroup=p.cgroup_id)
    assert f.pipe.drain(now_ns=f.now + 3 * 10**9) == []           # response wait over, pod grace not
    fake_pods.pods_file(pods_path)                                 # the pod becomes known
    (call,) = f.pipe.drain(now_ns=f.now + 4 * 10**9)
    assert call.caller.pod_name == "new-pod" and not call.caller.host
    pods_path.write_text("pods: []\n")
    f.write(sdk_request("GET", "/c", "shop1.blob.core.windows.net"), pid=p.pid, cgroup=p.cgroup_id)
    (call,) = f.pipe.drain(now_ns=f.now + 6 * 10**9)
    assert call.caller.host and call.caller.pod_uid == p.uid


def test_pods_file_errors_name_the_entry(tmp_path):
    path = tmp_path / "pods.yaml"
    path.write_text("pods:\n  - {namespace: shop, name: a}\n")
    with pytest.raises(ValueError, match=r"pods\[0\].*uid"):
        PodsFile(path)
    path.write_text("pods: [\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        PodsFile(path)
    with pytest.raises(ValueError, match="cannot read"):
        PodsFile(tmp_path / "missing.yaml")


def test_pods_file_bad_reload_keeps_previous(tmp_path, caplog):
    path = tmp_path / "pods.yaml"
    path.write_text("pods:\n  - {namespace: shop, name: a, uid: U1, serviceAccount: sa}\n")
    pods = PodsFile(path, check_interval=0)
    assert pods.get("u1").service_account == "sa"
    path.write_text("pods: {broken\n")
    assert pods.get("u1") is not None
    assert "not reloaded" in caplog.text
    Path(path).write_text("pods:\n  - {namespace: shop, name: b, uid: U2}\n")
    assert pods.get("u1") is None and pods.get("u2").name == "b"
