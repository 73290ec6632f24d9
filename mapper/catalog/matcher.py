"""Match an observed call against the catalog rows, the way Azurite's dispatcher does (§0).

Candidates are the rows indexed under (service, method, level). A row is out when a required
query key or header is missing or has another constant value, or when the call carries a
discriminating query key (``restype``, ``comp``, ``resource``, ``action``) that the row does not
require: an unknown ``comp`` is an unknown operation, not the plain GET. Each satisfied
requirement scores one; the highest score wins, the first declared row on a tie.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable, Mapping

from .arm import classify_arm
from .model import ANY, UNKNOWN, UNKNOWN_DENIED, Classification, Grant, Row
from .paths import LEVELS, STORAGE_SERVICES, account_from_host, locate, segments, service_from_host
from .rows_storage import MACROS, PREFIXES
from .scopes import copy_source, storage_scope, vault_scope
from .table import load_rows

DISCRIMINATORS = frozenset({"restype", "comp", "resource", "action"})
DENIAL_CODES = frozenset({"authorizationpermissionmismatch", "authorizationfailed", "forbiddenbyrbac"})
CACHE_SIZE = 65536

Query = tuple[tuple[str, str], ...]


class Catalog:
    """The rows, indexed once, and the matching logic over them."""

    def __init__(self, rows: Iterable[Row]) -> None:
        self.rows: tuple[Row, ...] = tuple(rows)
        self._index: dict[tuple[str, str, str], list[Row]] = {}
        self._vault: dict[tuple[str, int], list[tuple[Row, tuple[str, ...]]]] = {}
        for row in self.rows:
            if row.service == "vault":
                pattern = tuple(s for s in row.level.split("/") if s)
                self._vault.setdefault((row.method, len(pattern)), []).append((row, pattern))
                continue
            levels = LEVELS[row.service] if row.level == "*" else (row.level,)
            for level in levels:
                self._index.setdefault((row.service, row.method, level), []).append(row)

    def match_storage(self, service: str, method: str, level: str,
                      query: Mapping[str, str], headers: Mapping[str, str]) -> Row | None:
        """The winning storage row, or ``None``."""
        best: Row | None = None
        best_score = -1
        for row in self._index.get((service, method, level), ()):
            if any(k not in row.query for k in query if k in DISCRIMINATORS):
                continue
            score = _score(row.query, query)
            if score < 0:
                continue
            hscore = _score(row.headers, headers)
            if hscore < 0:
                continue
            if score + hscore > best_score:
                best, best_score = row, score + hscore
        return best

    def match_vault(self, method: str, parts: list[str]) -> tuple[Row, str, str] | None:
        """The winning Key Vault row with the object kind and name it addresses, or ``None``."""
        best: tuple[Row, str, str] | None = None
        best_score = -1
        for row, pattern in self._vault.get((method, len(parts)), ()):
            score, name = 0, ""
            for want, got in zip(pattern, parts):
                if want == "{n}":
                    name = got
                elif want == "{v}":
                    continue
                elif want == got.lower():
                    score += 1
                else:
                    break
            else:
                if score > best_score:
                    best, best_score = (row, pattern[0], name), score
        return best


def _score(required: Mapping[str, str], given: Mapping[str, str]) -> int:
    score = 0
    for key, want in required.items():
        got = given.get(key)
        if got is None or (want != ANY and got.lower() != want.lower()):
            return -1
        score += 1
    return score


CATALOG = Catalog(load_rows())


def classify_parts(service: str, account: str, host: str, method: str, path: str,
                   query: Query, headers: Query, status: int, error_code: str) -> Classification:
    """Classify one call given as plain, hashable values (cached)."""
    return _classify_cached(service, account, host, method, path, query, headers, status, error_code)


@lru_cache(maxsize=CACHE_SIZE)
def _classify_cached(service: str, account: str, host: str, method: str, path: str,
                     query: Query, headers: Query, status: int, error_code: str) -> Classification:
    denied = status == 403 and error_code.lower() in DENIAL_CODES
    q = {k.lower(): v for k, v in query}
    h = {k.lower(): v for k, v in headers}
    method = (h.get("x-http-method") or method).upper()
    service = (service or service_from_host(host)).lower()
    _row, op, grants = _resolve(service, account, host, method, path, q, h, status)
    if op is None:
        return UNKNOWN_DENIED if denied else UNKNOWN
    return Classification(operation=op, grants=grants, unknown=False, denied=denied)


def explain_parts(service: str, account: str, host: str, method: str, path: str,
                  query: Query, headers: Query, status: int) -> Row | None:
    """The catalog row a call matches (``None`` for ARM and unknown calls); for tests and tools."""
    q = {k.lower(): v for k, v in query}
    h = {k.lower(): v for k, v in headers}
    method = (h.get("x-http-method") or method).upper()
    service = (service or service_from_host(host)).lower()
    return _resolve(service, account, host, method, path, q, h, status)[0]


def _resolve(service: str, account: str, host: str, method: str, path: str, q: dict[str, str],
             h: dict[str, str], status: int) -> tuple[Row | None, str | None, tuple[Grant, ...]]:
    if service == "arm":
        arm = classify_arm(method, path, status)
        if arm is None:
            return None, None, ()
        return None, f"arm:{arm.action}", (Grant(arm.scope, frozenset({arm.action}), frozenset()),)
    account = account or account_from_host(host)
    parts = segments(path, account, host)
    if service == "vault":
        hit = CATALOG.match_vault(method, parts)
        if hit is None:
            return None, None, ()
        row, kind, name = hit
        scope = vault_scope(row.scope, account, kind, name)
    elif service in STORAGE_SERVICES:
        where = locate(service, parts)
        row = None if where is None else CATALOG.match_storage(service, method, where.level, q, h)
        if row is None or where is None:
            return None, None, ()
        scope = storage_scope(row.scope, account, where.name)
    else:
        return None, None, ()
    if scope is None:
        return row, None, ()
    return row, row.operation, _grants(row, scope, h, account)


def _grants(row: Row, scope: str, headers: Mapping[str, str], account: str) -> tuple[Grant, ...]:
    data = list(row.data_actions)
    for header, perms in row.extra:
        if header in headers:
            data += [p for p in perms if p not in data]
    if not row.actions and not data:
        return ()
    grants = [Grant(scope, frozenset(row.actions), frozenset(data))]
    if row.source and "x-ms-copy-source" in headers:
        source = _source_grant(row.service, headers, account)
        if source is not None:
            grants.append(source)
    return _merge(grants)


def _source_grant(service: str, headers: Mapping[str, str], account: str) -> Grant | None:
    """Read on the copy source, when RBAC authorizes it (reference §1.3, §7.4).

    The source is read with the caller's token when it is in the same account, or when the call
    carries ``x-ms-copy-source-authorization`` (a bearer for the source). Any other source is
    public or SAS-authorized and needs no role, so none is granted there.
    """
    parsed = copy_source(headers["x-ms-copy-source"])
    if parsed is None:
        return None
    src_service, src_account, name = parsed
    same = src_account.lower() == account.lower()
    if not same and "x-ms-copy-source-authorization" not in headers:
        return None
    if src_service == "file":
        scope = storage_scope("share", src_account, name)
        data = tuple(PREFIXES["file"][1] + p for p in MACROS["R"])
    else:
        scope = storage_scope("container", src_account, name)
        data = (PREFIXES["blob"][1] + "blobs/read",)
    return None if scope is None else Grant(scope, frozenset(), frozenset(data))


def _merge(grants: list[Grant]) -> tuple[Grant, ...]:
    """One grant per scope (a copy within one container needs read and write there)."""
    by_scope: dict[str, Grant] = {}
    for g in grants:
        old = by_scope.get(g.scope)
        by_scope[g.scope] = g if old is None else Grant(
            g.scope, old.actions | g.actions, old.data_actions | g.data_actions)
    return tuple(by_scope.values())
