"""Scope strings in the partial form the tutorial uses (the operator expands them).

Storage: ``/providers/Microsoft.Storage/storageAccounts/<a>[/<svc>Services/default/<kind>/<name>]``.
Key Vault: ``/providers/Microsoft.KeyVault/vaults/<v>[/<secrets|keys|certificates>/<name>]``.
"""
from __future__ import annotations

from urllib.parse import urlsplit

from .paths import account_from_host, host_name, is_placeholder, service_from_host

STORAGE_ACCOUNT = "/providers/Microsoft.Storage/storageAccounts/{a}"
_CHILD = {
    "container": "/blobServices/default/containers/{n}",
    "queue": "/queueServices/default/queues/{n}",
    "table": "/tableServices/default/tables/{n}",
    # File data actions are assigned on ``fileshares`` (the documented share-level assignment
    # scope); share *actions* act on the ARM resource ``shares`` (reference §2.3).
    "share": "/fileServices/default/fileshares/{n}",
    "sharearm": "/fileServices/default/shares/{n}",
}
VAULT = "/providers/Microsoft.KeyVault/vaults/{v}"
VAULT_OBJECT_KINDS = ("secrets", "keys", "certificates")


def storage_scope(level: str, account: str, name: str) -> str | None:
    """The scope of a storage row's scope level; ``None`` when a needed name is missing."""
    if is_placeholder(account):
        return None
    base = STORAGE_ACCOUNT.format(a=account)
    if level == "account":
        return base
    if is_placeholder(name):
        return None
    return base + _CHILD[level].format(n=name)


def vault_scope(level: str, vault: str, kind: str, name: str) -> str | None:
    """The vault, or the object ``<kind>/<name>`` when the row says ``object`` and it is known."""
    if is_placeholder(vault):
        return None
    base = VAULT.format(v=vault)
    if level == "object" and kind in VAULT_OBJECT_KINDS and not is_placeholder(name):
        return f"{base}/{kind}/{name}"
    return base


def copy_source(value: str) -> tuple[str, str, str] | None:
    """(service, account, container-or-share) of a reduced ``x-ms-copy-source``, or ``None``.

    Accepts ``https://<a>.blob.core.windows.net/<c>`` (any cloud suffix) and the emulator forms
    ``https://<a>.blob.localhost:<port>/<c>`` and ``https://127.0.0.1:<port>/<a>/<c>``.
    """
    try:
        url = urlsplit(value.strip())
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not url.netloc:
        return None
    parts = [p for p in url.path.split("/") if p]
    service = service_from_host(url.netloc)
    account = account_from_host(url.netloc)
    if not account:  # path-style emulator: the account is the first segment
        host = host_name(url.netloc)
        if not parts or not (host in ("localhost", "[::1]") or host.replace(".", "").isdigit()):
            return None
        account, parts = parts[0], parts[1:]
        service = service or "blob"
    if service == "dfs":
        service = "blob"
    if service not in ("blob", "file") or not parts or is_placeholder(parts[0]):
        return None
    return service, account, parts[0]
