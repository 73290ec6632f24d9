"""Parse the pipe tables of ``rows_storage`` / ``rows_vault`` into ``Row`` objects (once)."""
from __future__ import annotations

from . import rows_storage, rows_vault
from .model import ANY, Row

_COLUMNS = 10


class CatalogError(ValueError):
    """A catalog table line is malformed (a bug in the data, caught at import)."""


def _conditions(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split("&"))):
        key, sep, value = part.partition("=")
        if not key or (sep and not value.strip()):
            raise CatalogError(f"condition {part!r} is neither key=value nor a bare key")
        out[key.strip().lower()] = value.strip() if sep else ANY
    return out


def _perms(text: str, prefix: str, macros: dict[str, tuple[str, ...]]) -> tuple[str, ...]:
    names: list[str] = []
    for token in filter(None, (t.strip() for t in text.split(","))):
        if token == "-":
            continue
        for name in macros.get(token, (token,)):
            names.append(name if name.startswith("Microsoft.") else prefix + name)
    return tuple(dict.fromkeys(names))


def _extra(text: str, prefix: str, macros: dict[str, tuple[str, ...]]) -> tuple[bool, tuple[tuple[str, tuple[str, ...]], ...]]:
    source = False
    extras: list[tuple[str, tuple[str, ...]]] = []
    for token in text.split():
        if token == "source":
            source = True
            continue
        header, sep, perms = token.partition(">")
        if not sep:
            raise CatalogError(f"extra {token!r} is neither 'source' nor header>perms")
        extras.append((header.lower(), _perms(perms, prefix, macros)))
    return source, tuple(extras)


def parse(service: str, text: str, prefixes: tuple[str, str],
          macros: dict[str, tuple[str, ...]] | None = None) -> list[Row]:
    """Rows of one service's table; raises ``CatalogError`` on a malformed line."""
    macros = macros or {}
    rows: list[Row] = []
    for lineno, line in enumerate(text.strip().splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) != _COLUMNS:
            raise CatalogError(f"{service} line {lineno}: {len(cells)} columns, want {_COLUMNS}")
        methods, level, query, headers, op, actions, data, scope, extra, conf = cells
        source, extras = _extra(extra, prefixes[1], macros)
        for method in methods.split(","):
            rows.append(Row(
                service=service, method=method.strip().upper(), level=level,
                operation=f"{service}:{op}",
                actions=_perms(actions, prefixes[0], macros),
                data_actions=_perms(data, prefixes[1], macros),
                scope=scope, query=_conditions(query), headers=_conditions(headers),
                extra=extras, source=source, confidence=conf,
            ))
    return rows


def load_rows() -> list[Row]:
    """Every storage and Key Vault row, in declaration order."""
    rows: list[Row] = []
    for service, text in rows_storage.TABLES.items():
        rows += parse(service, text, rows_storage.PREFIXES[service], rows_storage.MACROS)
    rows += parse("vault", rows_vault.VAULT, (rows_vault.PREFIX, rows_vault.PREFIX))
    return rows
