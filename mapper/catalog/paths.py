"""Turn an observed call's host and path shape into the service, account and path level.

Levels (the ``level`` column of the rows):

* blob, dfs: ``service`` ``/``; ``container`` ``/{c}``; ``blob`` ``/{c}/...``
* queue: ``service``; ``queue`` ``/{q}``; ``messages`` ``/{q}/messages``; ``message`` ``/{q}/messages/{id}``
* table: ``service``; ``tables`` ``/Tables``; ``tablename`` ``/Tables('{t}')``; ``table`` ``/{t}``;
  ``entities`` ``/{t}()``; ``entity`` ``/{t}(PartitionKey=..,RowKey=..)``; ``batch`` ``/$batch``
* file: ``service``; ``share`` ``/{s}``; ``path`` ``/{s}/...``
* vault: the path's segments, matched against the rows' patterns (see ``rows_vault``).
"""
from __future__ import annotations

import re
from typing import NamedTuple

STORAGE_SERVICES = ("blob", "dfs", "queue", "table", "file")
LEVELS: dict[str, tuple[str, ...]] = {
    "blob": ("service", "container", "blob"),
    "dfs": ("service", "container", "blob"),
    "queue": ("service", "queue", "messages", "message"),
    "table": ("service", "tables", "tablename", "table", "entities", "entity", "batch"),
    "file": ("service", "share", "path"),
}

_TABLE_NAMED = re.compile(r"^tables\('([^'/]*)'\)$", re.IGNORECASE)
_TABLE_KEYED = re.compile(r"^([A-Za-z][A-Za-z0-9]*)\((.*)\)$")
_TABLE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
_HOST_LABELS = {"blob": "blob", "dfs": "dfs", "queue": "queue", "table": "table", "file": "file"}


class Located(NamedTuple):
    """Where a storage call points: its level and the resource name the scope needs."""

    level: str
    name: str  # container / queue / table / share; empty at service level


def is_placeholder(name: str) -> bool:
    """True for a redacted segment such as ``{name}`` or an empty one."""
    return not name or (name.startswith("{") and name.endswith("}"))


def host_name(host: str) -> str:
    """The host without port, lower case (IPv6 literals keep their brackets)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def service_from_host(host: str) -> str:
    """Best guess of the service from a product host name; ``""`` when it says nothing."""
    labels = host_name(host).split(".")
    if labels[0] == "management":
        return "arm"
    if len(labels) >= 3 and labels[1] == "vault":
        return "vault"
    if len(labels) >= 3 and labels[1] in _HOST_LABELS:
        return _HOST_LABELS[labels[1]]
    if len(labels) >= 4 and labels[1].startswith("z") and labels[2] in _HOST_LABELS:
        return _HOST_LABELS[labels[2]]  # AzureDnsZone endpoints: {a}.z12.blob.storage.azure.net
    return ""


def account_from_host(host: str) -> str:
    """The account or vault name carried by a product-style host, else ``""``."""
    labels = host_name(host).split(".")
    if len(labels) >= 3 and service_from_host(host) not in ("", "arm"):
        return labels[0]
    return ""


def segments(path: str, account: str, host: str) -> list[str]:
    """Path segments relative to the account (a path-style emulator's account segment removed)."""
    path = path.split("?", 1)[0]
    parts = path.strip("/").split("/") if path.strip("/") else []
    if parts and account and parts[0] == account and account_from_host(host) != account.lower():
        parts = parts[1:]
    return parts


def locate(service: str, parts: list[str]) -> Located | None:
    """The level of a storage path (``None`` when the shape fits no level)."""
    if not parts:
        return Located("service", "")
    first = parts[0]
    if service == "table":
        return _locate_table(parts)
    if service in ("blob", "dfs"):
        return Located("container" if len(parts) == 1 else "blob", first)
    if service == "file":
        return Located("share" if len(parts) == 1 else "path", first)
    if service == "queue":
        if len(parts) == 1:
            return Located("queue", first)
        if parts[1].lower() != "messages" or len(parts) > 3:
            return None
        return Located("messages" if len(parts) == 2 else "message", first)
    return None


def _locate_table(parts: list[str]) -> Located | None:
    if len(parts) != 1:
        return None
    seg = parts[0]
    if seg.lower() == "tables":
        return Located("tables", "")
    if seg == "$batch":
        return Located("batch", "")
    named = _TABLE_NAMED.match(seg)
    if named:
        return Located("tablename", named.group(1))
    keyed = _TABLE_KEYED.match(seg)
    if keyed:
        return Located("entities" if not keyed.group(2).strip() else "entity", keyed.group(1))
    if _TABLE_NAME.match(seg):
        return Located("table", seg)
    return None
