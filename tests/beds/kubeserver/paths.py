"""Parse Kubernetes API paths, including the ``/api/v1/namespaces[/name[/status]]`` forms kmock gets wrong."""
from __future__ import annotations

import dataclasses
from typing import Literal

from .catalog import Catalog

Target = Literal["root", "version", "api", "apis", "group", "discovery", "collection", "object", "unknown"]


@dataclasses.dataclass(frozen=True)
class ApiPath:
    """What a request path addresses."""

    target: Target
    group: str | None = None
    version: str | None = None
    plural: str | None = None
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None


def parse_path(path: str, catalog: Catalog) -> ApiPath:
    """Split ``path`` into its API parts; namespaced paths are recognised with the catalog's help."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return ApiPath("root")
    if parts == ["version"]:
        return ApiPath("version")
    if parts[0] == "api":
        if len(parts) == 1:
            return ApiPath("api")
        group, version, rest = "", parts[1], parts[2:]
    elif parts[0] == "apis":
        if len(parts) == 1:
            return ApiPath("apis")
        if len(parts) == 2:
            return ApiPath("group", group=parts[1])
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return ApiPath("unknown")
    if not rest:
        return ApiPath("discovery", group=group, version=version)
    # /namespaces/<ns>/<plural>... when <plural> is a namespaced resource; otherwise the namespace itself.
    if rest[0] == "namespaces" and len(rest) >= 3:
        kind = catalog.find(group, version, rest[2])
        if kind is not None and kind.namespaced:
            namespace, rest = rest[1], rest[2:]
            return _object_or_collection(group, version, namespace, rest)
    return _object_or_collection(group, version, None, rest)


def _object_or_collection(group: str, version: str, namespace: str | None, rest: list[str]) -> ApiPath:
    plural = rest[0]
    if len(rest) == 1:
        return ApiPath("collection", group, version, plural, namespace)
    if len(rest) > 3:
        return ApiPath("unknown", group, version, plural, namespace)
    subresource = rest[2] if len(rest) == 3 else None
    return ApiPath("object", group, version, plural, namespace, rest[1], subresource)
