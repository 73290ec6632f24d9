"""Names of the Azure objects Clearance creates: deterministic, prefixed, within Azure's limits.

Identities and federated credentials are keyed by (namespace, ServiceAccount, cluster), never by
workload name. A name that would be too long, or that holds characters Azure refuses, is cut and
always suffixed with a short hash of the full key, so two keys never share a name.
"""
from __future__ import annotations

import hashlib
import re
import uuid

IDENTITY_PREFIX = "clr-uai-"
CREDENTIAL_PREFIX = "clr-fic-"
IDENTITY_MAX = 128  # Microsoft.ManagedIdentity/userAssignedIdentities: 3-128
CREDENTIAL_MAX = 120  # .../federatedIdentityCredentials: 3-120
MIN_LEN = 3
HASH_LEN = 8

# Allowed by Azure for both kinds: alphanumerics, '-' and '_'; must start with an alphanumeric.
_DISALLOWED = re.compile(r"[^A-Za-z0-9_-]+")
# Namespace for uuid5 GUIDs of role definitions and assignments (fixed forever: changing it
# would orphan everything already created).
GUID_NAMESPACE = uuid.UUID("6f7c1d0e-3b8a-5d2e-9c41-c1ea2a9ce000")


def short_hash(*parts: str, length: int = HASH_LEN) -> str:
    """First ``length`` hex digits of sha256 over the parts joined by NUL (unambiguous)."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def fit_name(prefix: str, parts: tuple[str, ...], max_len: int, *, key: tuple[str, ...] = ()) -> str:
    """``prefix`` + the parts joined by ``-``, cleaned, cut to ``max_len`` and suffixed ``-<hash>``.

    The hash covers the raw ``key`` (default: the parts), so cleaning or cutting never makes two
    keys collide; a ``key`` wider than the readable parts keeps names unique across it too.
    """
    if max_len < len(prefix) + HASH_LEN + 2:
        raise ValueError(f"max_len {max_len} is too small for prefix {prefix!r}")
    body = _DISALLOWED.sub("-", "-".join(parts)).strip("-_")
    digest = short_hash(*(key or parts))
    room = max_len - len(prefix) - len(digest) - 1
    body = body[:room].rstrip("-_")
    name = f"{prefix}{body}-{digest}" if body else f"{prefix}{digest}"
    assert MIN_LEN <= len(name) <= max_len
    return name


def _check_key(namespace: str, service_account: str, cluster: str) -> None:
    for label, value in (("namespace", namespace), ("service account", service_account), ("cluster", cluster)):
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{label} must be a non-empty string, got {value!r}")


def identity_name(namespace: str, service_account: str, cluster: str) -> str:
    """``clr-uai-<ns>-<sa>-<cluster>-<hash>``, at most 128 characters."""
    _check_key(namespace, service_account, cluster)
    return fit_name(IDENTITY_PREFIX, (namespace, service_account, cluster), IDENTITY_MAX)


def credential_name(namespace: str, service_account: str, cluster: str) -> str:
    """``clr-fic-<ns>-<sa>-<cluster>-<hash>``, at most 120 characters."""
    _check_key(namespace, service_account, cluster)
    return fit_name(CREDENTIAL_PREFIX, (namespace, service_account, cluster), CREDENTIAL_MAX)


def service_account_subject(namespace: str, service_account: str) -> str:
    """The token subject Kubernetes issues for a ServiceAccount."""
    return f"system:serviceaccount:{namespace}:{service_account}"


def deterministic_guid(*parts: str) -> str:
    """A stable GUID (uuid5) for role definitions and assignments, from any identifying parts.

    Same parts -> same GUID, so a retried or restarted create finds its earlier object (ARM's
    PUT is idempotent by name) instead of making a duplicate.
    """
    if not parts:
        raise ValueError("deterministic_guid needs at least one part")
    return str(uuid.uuid5(GUID_NAMESPACE, "\0".join(str(p) for p in parts)))
