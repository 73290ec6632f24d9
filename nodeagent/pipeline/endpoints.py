"""Stage 3: which Azure service and account a request is for, from its Host header and target.

Built in: the public and sovereign storage, Key Vault and ARM endpoints. Custom endpoints
(emulators, private setups) come from ``--endpoint SERVICE=TEMPLATE`` flags, host style
(``blob=https://{account}.blob.localhost:10000``) or path style
(``blob=https://127.0.0.1:10000/{account}``).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

STORAGE = ("blob", "queue", "table", "file", "dfs")
SERVICES = STORAGE + ("vault", "arm")

_STORAGE_SUFFIXES = ("core.windows.net", "core.usgovcloudapi.net", "core.chinacloudapi.cn")
_VAULT_SUFFIXES = ("vault.azure.net", "vault.usgovcloudapi.net", "vault.azure.cn")
_ARM_HOSTS = frozenset({"management.azure.com", "management.usgovcloudapi.net", "management.chinacloudapi.cn"})
_STORAGE_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_VAULT_NAME = re.compile(r"[a-z0-9-]{3,24}")
_PATH_ACCOUNT = re.compile(r"[A-Za-z0-9-]{1,63}")
_DNS_ZONE = re.compile(r"z[0-9]{2}")
_HOST_LABEL = re.compile(r"[a-z0-9-]{1,63}")
_CACHE_MAX = 4096
_DEFAULT_PORTS = {"https": 443, "http": 80}


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A recognised Azure request: the service, account and resource path (account prefix removed)."""

    service: str
    account: str   # storage account or vault name; "" for ARM
    host: str      # the Host header as sent, lower case
    path: str      # the raw resource path, without the query
    query: str     # the raw query string


@dataclass(frozen=True, slots=True)
class _Template:
    service: str
    hostname: str      # host style: the suffix after "{account}."; path style / fixed: the host name
    port: int
    host_style: bool
    path_style: bool


def _split_host(host: str) -> tuple[str, int | None]:
    """``"a.b:10000"`` -> (``"a.b"``, 10000); IPv6 in brackets is kept whole."""
    if host.startswith("["):
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1:]
        port_text = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port_text = host.partition(":")
    if port_text:
        if not port_text.isdigit() or len(port_text) > 5:
            return name, -1
        return name, int(port_text)
    return name, None


def parse_template(value: str) -> _Template:
    """Parse one ``SERVICE=URL`` flag value; ``ValueError`` names the bad value and why."""
    def bad(why: str) -> ValueError:
        return ValueError(f"--endpoint {value!r}: {why}")

    service, sep, url = value.partition("=")
    service = service.strip().lower()
    url = url.strip()
    if not sep or not url:
        raise bad("expected SERVICE=TEMPLATE, e.g. blob=https://{account}.blob.localhost:10000")
    if service not in SERVICES:
        raise bad(f"unknown service {service!r} (one of {', '.join(SERVICES)})")
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise bad("the template must start with https:// or http://")
    if any(c in rest for c in "?#@ \t"):
        raise bad("a template has no query, fragment, credentials or spaces")
    netloc, slash, path = rest.partition("/")
    path = (slash + path).rstrip("/")
    hostname, port = _split_host(netloc.lower())
    if port == -1 or (port is not None and not 0 < port < 65536):
        raise bad("the port is not a number between 1 and 65535")
    if not hostname:
        raise bad("the host is missing")
    host_style = hostname.startswith("{account}.")
    name = hostname[len("{account}."):] if host_style else hostname
    if "{account}" in name or "{" in name or "}" in name:
        raise bad("{account} may only be the first label of the host")
    if path not in ("", "/{account}"):
        raise bad("the path may only be empty or /{account}")
    path_style = path == "/{account}"
    if host_style and path_style:
        raise bad("{account} may appear in the host or in the path, not both")
    if service == "arm" and (host_style or path_style):
        raise bad("ARM endpoints have no {account}")
    if service != "arm" and not (host_style or path_style):
        raise bad("the template needs {account} in the host (host style) or as the path (path style)")
    bare = name[1:-1] if name.startswith("[") and name.endswith("]") else name
    if not bare.replace(":", "") or not all(_HOST_LABEL.fullmatch(label) or ":" in bare
                                              for label in bare.split(".")):
        raise bad(f"{name!r} is not a valid host name")
    return _Template(service, name, port or _DEFAULT_PORTS[scheme], host_style, path_style)


class EndpointMatcher:
    """Recognises Azure endpoints; ``match`` is called for every request, so results are cached."""

    def __init__(self, templates: list[_Template] | None = None) -> None:
        self._templates = list(templates or [])
        self._cache: dict[str, tuple[str, str | None] | None] = {}
        # the Host header as sent -> (its kind, its lower-case form)
        self._hosts: dict[str, tuple[tuple[str, str | None] | None, str]] = {}

    @classmethod
    def from_flags(cls, values: list[str]) -> EndpointMatcher:
        """Build from ``--endpoint`` values; raises ``ValueError`` naming the first bad one."""
        return cls([parse_template(v) for v in values])

    def match(self, host: str, target: str) -> Endpoint | None:
        """The endpoint of a request with this Host header and target, or None (not Azure)."""
        found = self.locate(host, target)
        return None if found is None else Endpoint(*found)

    def locate(self, host: str, target: str) -> tuple[str, str, str, str, str] | None:
        """``match`` as a tuple (service, account, host, path, query): the pipeline's hot path."""
        if target[:1] != "/" and (target.startswith("http://") or target.startswith("https://")):
            rest = target.split("://", 1)[1]
            slash = rest.find("/")
            host, target = (rest, "/") if slash < 0 else (rest[:slash], rest[slash:])
        hit = self._hosts.get(host)
        if hit is None:
            low = host.lower()
            hit = (self._kind(low), low)
            if len(self._hosts) >= _CACHE_MAX:
                self._hosts.clear()
            self._hosts[host] = hit
        kind, host = hit
        if kind is None:
            return None
        path, _, query = target.partition("?")
        if "#" in path:
            path = path.partition("#")[0]
        service, account = kind
        if account is None:  # path style: the account is the first path segment
            seg, _, rest = path[1:].partition("/")
            if not _PATH_ACCOUNT.fullmatch(seg):
                return None
            return service, seg.lower(), host, "/" + rest, query
        return service, account, host, path or "/", query

    def is_path_style(self, host: str) -> bool:
        """True when requests to ``host`` carry the account as their first path segment."""
        kind = self._kind(host.lower())
        return kind is not None and kind[1] is None

    def _kind(self, host: str) -> tuple[str, str | None] | None:
        kind = self._cache.get(host, False)
        if kind is False:
            kind = self._classify(host)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[host] = kind
        return kind

    def _classify(self, host: str) -> tuple[str, str | None] | None:
        """(service, account) for a host; account None means "take it from the path"."""
        hostname, port = _split_host(host)
        for t in self._templates:
            want = t.port
            if port != want and not (port is None and want in (443, 80)):
                continue
            if t.host_style:
                if hostname.endswith("." + t.hostname):
                    account = hostname[: -len(t.hostname) - 1]
                    if _HOST_LABEL.fullmatch(account):
                        return t.service, account
            elif hostname == t.hostname:
                return (t.service, None) if t.path_style else (t.service, "")
        return _builtin(hostname)


def _builtin(hostname: str) -> tuple[str, str] | None:
    """Recognise the public and sovereign cloud host names."""
    if hostname in _ARM_HOSTS:
        return "arm", ""
    first, _, rest = hostname.partition(".")
    if first.endswith("-secondary"):
        first = first[: -len("-secondary")]
    svc, _, suffix = rest.partition(".")
    if suffix in _STORAGE_SUFFIXES and svc in STORAGE:
        return (svc, first) if _STORAGE_ACCOUNT.fullmatch(first) else None
    if rest in _VAULT_SUFFIXES:
        return ("vault", first) if _VAULT_NAME.fullmatch(first) else None
    if suffix.endswith("storage.azure.net") and _DNS_ZONE.fullmatch(svc):
        svc2, _, tail = suffix.partition(".")
        if tail == "storage.azure.net" and svc2 in STORAGE and _STORAGE_ACCOUNT.fullmatch(first):
            return svc2, first
    return None
