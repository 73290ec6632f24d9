"""The catalog's public result types and its row type."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping


@dataclass(frozen=True)
class Grant:
    """Permissions needed at one scope (partial form, e.g. ``/providers/Microsoft.Storage/...``)."""

    scope: str
    actions: frozenset[str]
    data_actions: frozenset[str]


@dataclass(frozen=True)
class Classification:
    """What one observed call is, and what it needs."""

    operation: str
    grants: tuple[Grant, ...]
    unknown: bool
    denied: bool


UNKNOWN = Classification(operation="unknown", grants=(), unknown=True, denied=False)
UNKNOWN_DENIED = Classification(operation="unknown", grants=(), unknown=True, denied=True)

ANY = "\x00any"
"""The value of a required query key or header that only has to be present (written bare)."""


@dataclass(frozen=True)
class Row:
    """One catalog row: the wire signature of an operation and what it needs.

    ``query``/``headers`` are the required conditions: ``ANY`` (a bare key in the tables) needs
    only presence; any other value must match (case-insensitively). ``scope`` names a scope level understood by
    ``scopes.storage_scope`` (``account``, ``container``, ``queue``, ``table``, ``share``, ...)
    or ``scopes.vault_scope`` (``vault``, ``object``).
    ``extra`` adds data actions when an optional header is present. ``source`` marks copy-style
    operations whose ``x-ms-copy-source`` also needs read on the source.
    """

    service: str
    method: str
    level: str
    operation: str
    actions: tuple[str, ...]
    data_actions: tuple[str, ...]
    scope: str
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()
    source: bool = False
    confidence: str = "D"

    @property
    def row_id(self) -> str:
        """A stable identifier, unique within the catalog."""
        q = "&".join(k if v == ANY else f"{k}={v}" for k, v in sorted(self.query.items()))
        h = "&".join(k if v == ANY else f"{k}={v}" for k, v in sorted(self.headers.items()))
        return f"{self.service} {self.method} {self.level} ?{q} [{h}]"
