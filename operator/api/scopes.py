"""Comparing Azure scopes written in full or in Otterize's partial forms."""
from __future__ import annotations

import re

_VAULT_TAIL = r"/providers/Microsoft\.KeyVault/vaults/[^/]+$"
#: A Key Vault scope, full or partial (also the CRD's CEL rule, hence a pattern string).
VAULT_SCOPE_PATTERN = "(?i)" + _VAULT_TAIL
_VAULT = re.compile(VAULT_SCOPE_PATTERN)
_FULL_VAULT = re.compile(r"(?i)^/subscriptions/[^/]+/resourceGroups/[^/]+" + _VAULT_TAIL)

# Resources whose names are globally unique DNS labels: a partial scope names them exactly.
_GLOBAL_PROVIDERS = re.compile(
    r"^(?:/subscriptions/[^/]+)?(?:/resourcegroups/[^/]+)?"
    r"(/providers/(?:microsoft\.storage/storageaccounts|microsoft\.keyvault/vaults)/.*)$"
)


def scope_key(scope: str) -> str:
    """A key under which equivalent scopes compare equal.

    Azure resource IDs are case-insensitive, so the key is lower-cased and trailing '/' dropped.
    For storage accounts and Key Vaults (globally unique names) the leading
    ``/subscriptions/<s>/resourceGroups/<rg>`` is dropped, so a full scope and the partial
    ``/providers/Microsoft.Storage/storageAccounts/<a>/...`` form the mapper emits are equal.
    """
    key = scope.strip().lower().rstrip("/")
    match = _GLOBAL_PROVIDERS.match(key)
    return match.group(1) if match else key


def is_vault_scope(scope: str, *, full: bool = False) -> bool:
    """Whether ``scope`` names a Key Vault; ``full`` also requires the subscription and resource group."""
    return bool((_FULL_VAULT if full else _VAULT).search(scope))
