"""Shared helpers for the catalog tests (no tests here): building calls, writing expected grants."""
from __future__ import annotations

from clearance.mapper.catalog import Grant
from clearance.v1.report_pb2 import ObservedCall

SA = "Microsoft.Storage/storageAccounts/"
KV = "Microsoft.KeyVault/vaults/"
ACCT = "/providers/Microsoft.Storage/storageAccounts/acct"
CONT = ACCT + "/blobServices/default/containers/c1"
QUEUE = ACCT + "/queueServices/default/queues/q1"
TABLE = ACCT + "/tableServices/default/tables/t1"
SHARE = ACCT + "/fileServices/default/fileshares/s1"
SHARE_ARM = ACCT + "/fileServices/default/shares/s1"
VAULT = "/providers/Microsoft.KeyVault/vaults/kv1"
SECRET = VAULT + "/secrets/s1"
KEY = VAULT + "/keys/k1"
CERT = VAULT + "/certificates/c1"

R = ("fileServices/fileshares/files/read", "fileServices/readFileBackupSemantics/action")
W = ("fileServices/fileshares/files/write", "fileServices/writeFileBackupSemantics/action")
P = ("fileServices/fileshares/files/modifypermissions/action",)

HOSTS = {"blob": "acct.blob.core.windows.net", "dfs": "acct.dfs.core.windows.net",
         "queue": "acct.queue.core.windows.net", "table": "acct.table.core.windows.net",
         "file": "acct.file.core.windows.net", "vault": "kv1.vault.azure.net"}


def _full(name: str, scope: str) -> str:
    if name.startswith("Microsoft."):
        return name
    return (KV if "KeyVault" in scope else SA) + name


def G(scope: str, a: tuple[str, ...] | list[str] = (), d: tuple[str, ...] | list[str] = ()) -> Grant:
    """An expected grant; permission names are relative to Microsoft.Storage/storageAccounts/
    (or Microsoft.KeyVault/vaults/ for a vault scope)."""
    return Grant(scope, frozenset(_full(x, scope) for x in a), frozenset(_full(x, scope) for x in d))


def conditions(text: str) -> dict[str, str]:
    out = {}
    for part in filter(None, text.split("&")):
        k, _, v = part.partition("=")
        out[k] = v
    return out


def call(service: str, method: str, path: str, query: str = "", headers: str = "",
         status: int = 200, error_code: str = "", account: str | None = None,
         host: str | None = None) -> ObservedCall:
    """An ObservedCall as the agent reports it (query/headers as ``k=v&k=v``)."""
    return ObservedCall(
        service=service, account=("kv1" if service == "vault" else "acct") if account is None else account,
        host=HOSTS.get(service, "management.azure.com") if host is None else host,
        method=method, path=path, query=conditions(query), headers=conditions(headers),
        status=status, error_code=error_code, count=1)
