"""Resource-id parsing: ARM ids are case-insensitive; scopes nest by path prefix."""
from __future__ import annotations

import re
from dataclasses import dataclass

_SUB_RE = re.compile(r"^/subscriptions/([^/]+)", re.I)
_RG_RE = re.compile(r"^/subscriptions/[^/]+/resourcegroups/([^/]+)", re.I)


def norm(resource_id: str) -> str:
    """The comparison key of an id or scope: lower case, one leading slash, no trailing slash."""
    return "/" + resource_id.strip("/").lower()


def subscription_of(scope: str) -> str | None:
    """The subscription id in ``scope``, if any."""
    m = _SUB_RE.match(scope)
    return m.group(1) if m else None


def resource_group_of(scope: str) -> str | None:
    """The resource group name in ``scope``, if any."""
    m = _RG_RE.match(scope)
    return m.group(1) if m else None


def is_within(scope: str, ancestor: str) -> bool:
    """Whether ``scope`` equals ``ancestor`` or lies below it ("/" contains everything)."""
    a, s = norm(ancestor), norm(scope)
    return a == "/" or s == a or s.startswith(a + "/")


@dataclass(frozen=True)
class ResourcePath:
    """A parsed ``/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}[/{type}/{name}...]``."""

    subscription: str
    resource_group: str | None
    namespace: str
    parts: tuple[str, ...]  # type, name, type, name, ... (odd length = a collection)

    @property
    def is_collection(self) -> bool:
        return len(self.parts) % 2 == 1

    @property
    def resource_type(self) -> str:
        """Full type, e.g. ``Microsoft.Storage/storageAccounts/blobServices/containers``."""
        return "/".join([self.namespace, *self.parts[0::2]])

    @property
    def name(self) -> str:
        return self.parts[-1] if not self.is_collection else ""

    @property
    def id(self) -> str:
        rg = f"/resourceGroups/{self.resource_group}" if self.resource_group else ""
        return f"/subscriptions/{self.subscription}{rg}/providers/{self.namespace}/" + "/".join(self.parts)

    def parent(self) -> ResourcePath | None:
        """The enclosing resource (``None`` for a top-level resource or collection)."""
        keep = len(self.parts) - (1 if self.is_collection else 2)
        if keep < 2:
            return None
        return ResourcePath(self.subscription, self.resource_group, self.namespace, self.parts[:keep])


def parse_resource_path(segments: list[str]) -> ResourcePath | None:
    """Parse path segments of a provider resource (or collection); ``None`` when it is not one."""
    if len(segments) < 4 or segments[0].lower() != "subscriptions":
        return None
    sub = segments[1]
    rest = segments[2:]
    rg = None
    if len(rest) >= 2 and rest[0].lower() == "resourcegroups":
        rg, rest = rest[1], rest[2:]
    if len(rest) < 3 or rest[0].lower() != "providers":
        return None
    return ResourcePath(sub, rg, rest[1], tuple(rest[2:]))
