"""Stage 4: reduce a recognised request to the proto's privacy-safe shape.

Only what identifies the operation and its resource survives: the first path segment of storage
URLs (deeper segments become ``{name}``), Key Vault object type and name, the ARM resource path,
allow-listed query keys and headers. Everything else (Authorization, SAS parameters, Cookie,
blob names, table keys, bodies) is dropped here, never copied; ``x-ms-copy-source-authorization``
survives as its presence only (``"*"``: the catalog grants read on a bearer-authorized source).

``redact_parts`` is the pipeline's form: a hashable ``CallKey`` tuple, cheap to deduplicate.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from typing import TYPE_CHECKING

from clearance.nodeagent.events import AzureCall

if TYPE_CHECKING:
    from clearance.nodeagent.pipeline.endpoints import Endpoint, EndpointMatcher
    from clearance.nodeagent.pipeline.http import HttpRequest

_NAME = re.compile(r"[A-Za-z0-9$][A-Za-z0-9$._-]{0,62}")
_VAULT_NAME = re.compile(r"[A-Za-z0-9-]{1,127}")
_TABLE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,62}")
_TOKEN = re.compile(r"[A-Za-z0-9_.,:-]{1,64}")
_ARM_PATH = re.compile(r"/[A-Za-z0-9_.~()/:,'@+=-]{0,2047}")
INVALID = "{invalid}"
NAME = "{name}"

# Query keys whose values identify the operation (kept, validated) or whose presence does ("*").
_STORAGE_QUERY_VALUES = frozenset({
    "restype", "comp", "resource", "action", "mode", "deletetype", "peekonly", "blocklisttype",
    "recursive", "showonly", "include",
})
_STORAGE_QUERY_PRESENCE = frozenset({
    "snapshot", "versionid", "prevsnapshot", "prevsnapshoturl", "popreceipt", "copyid", "where",
    "sharesnapshot",
})
# Headers (lower case) kept with their value, or reduced to presence ("*").
_HEADER_VALUES = frozenset({
    "x-ms-blob-type", "x-ms-requires-sync", "x-ms-lease-action", "x-ms-page-write",
    "x-ms-delete-snapshots", "x-ms-version", "x-ms-access-tier", "x-ms-copy-action",
    "x-ms-expiry-option", "x-ms-legal-hold", "x-ms-sequence-number-action", "x-ms-type", "x-ms-write",
    "x-ms-file-request-intent", "x-ms-immutability-policy-mode", "x-ms-rehydrate-priority",
    "x-ms-blob-public-access", "x-ms-incremental-copy",
})
_HEADER_PRESENCE = frozenset({
    "if-match", "x-ms-blob-content-length", "x-ms-tags", "x-ms-file-permission",
    "x-ms-file-permission-key", "x-ms-acl", "x-ms-permissions", "x-ms-owner", "x-ms-group",
    "x-ms-undelete-source", "x-ms-immutability-policy-until-date", "x-ms-deleted-container-name",
    "x-ms-source-range", "x-ms-proposed-lease-id", "x-ms-properties", "x-ms-copy-source-authorization",
})
_HEADER_SOURCES = frozenset({"x-ms-copy-source", "x-ms-rename-source", "x-ms-file-rename-source"})
_HEADER_NAMES = frozenset({"x-ms-source-container-name"})
_VALUE, _PRESENCE, _STAR, _SOURCE, _SEGMENT = range(5)
_HEADER_RULES = {**dict.fromkeys(_HEADER_VALUES, _VALUE), **dict.fromkeys(_HEADER_PRESENCE, _PRESENCE),
                 "if-none-match": _STAR, **dict.fromkeys(_HEADER_SOURCES, _SOURCE),
                 **dict.fromkeys(_HEADER_NAMES, _SEGMENT)}
# every header that redaction may read (the pipeline's head parser keeps only these)
KEPT_HEADERS = frozenset(_HEADER_RULES)
_QUERY_KINDS = {**{k: True for k in _STORAGE_QUERY_VALUES}, **{k: False for k in _STORAGE_QUERY_PRESENCE}}
_MEMO_MAX = 4096
_SEGMENTS: dict[str, str] = {}
_TOKENS: dict[str, bool] = {}  # values of _HEADER_VALUES headers (x-ms-version, x-ms-blob-type ...)
_ARM_PATHS: dict[str, str] = {}
_VAULT_TYPES = frozenset({
    "secrets", "keys", "certificates", "deletedsecrets", "deletedkeys", "deletedcertificates",
    "storage", "deletedstorage",
})
_VAULT_WORDS = frozenset({
    "versions", "backup", "restore", "recover", "create", "import", "policy", "pending",
    "rotationpolicy", "rotate", "release", "encrypt", "decrypt", "wrapkey", "unwrapkey", "sign",
    "verify", "attestation", "issuers", "contacts", "sas",
})


# (service, account, host, method, path shape, query items, header items); items sorted by key
CallKey = tuple[str, str, str, str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def redact_parts(service: str, account: str, host: str, method: str, path: str, query: str,
                 headers: dict[str, str], matcher: EndpointMatcher) -> CallKey:
    """The redacted call key of one recognised request (raw path and query, lower-case headers)."""
    if service == "vault":
        return (service, account, host, method, vault_path(path), _api_version_items(query), ())
    if service == "arm":
        return (service, account, host, method, _memo(_ARM_PATHS, arm_path, path), _api_version_items(query), ())
    return (service, account, host, method, storage_path(service, path), _storage_query_items(query),
            _storage_header_items(headers, matcher) if headers else ())


def call_of(key: CallKey, status: int = 0, error_code: str = "") -> AzureCall:
    """The ``AzureCall`` of a call key."""
    service, account, host, method, path, query, headers = key
    return AzureCall(service=service, account=account, host=host, method=method, path=path,
                     query=dict(query), headers=dict(headers), status=status, error_code=error_code)


def redact(ep: Endpoint, req: HttpRequest, matcher: EndpointMatcher) -> AzureCall:
    """The AzureCall for request ``req`` recognised as ``ep``; nothing secret is copied."""
    return call_of(redact_parts(ep.service, ep.account, ep.host, req.method, ep.path, ep.query, req.headers,
                                matcher))


def _memo(cache: dict[str, str], fn, raw: str) -> str:
    """``fn(raw)`` through a bounded cache (for shapes of names that the report carries anyway)."""
    try:
        return cache[raw]
    except KeyError:
        pass
    value = fn(raw)
    if len(cache) >= _MEMO_MAX:
        cache.clear()
    cache[raw] = value
    return value


def _check_segment(raw: str) -> str:
    name = unquote(raw)
    return name if _NAME.fullmatch(name) else INVALID


def _first_segment(raw: str) -> str:
    return _memo(_SEGMENTS, _check_segment, raw)


def _table_segment(raw: str) -> str:
    seg = unquote(raw)
    if seg in ("Tables", "$batch"):
        return seg
    open_ = seg.find("(")
    if open_ < 0 or not seg.endswith(")"):
        return seg if _TABLE.fullmatch(seg) else INVALID
    head, inner = seg[:open_], seg[open_ + 1:-1]
    if head == "Tables":
        name = inner.strip("'")
        return f"Tables('{name}')" if _TABLE.fullmatch(name) else "Tables('{invalid}')"
    if not _TABLE.fullmatch(head):
        return INVALID
    if not inner:
        return head + "()"
    return head + "(PartitionKey='{key}',RowKey='{key}')"


def storage_path(service: str, path: str) -> str:
    """``/uploads/a/b.txt`` -> ``/uploads/{name}``; queues keep ``messages``; tables hide keys."""
    segs = path.split("/", 3)
    first = segs[1] if len(segs) > 1 else ""
    if not first:
        return "/"
    out = "/" + (_table_segment(first) if service == "table" else _first_segment(first))
    if len(segs) < 3 or not (segs[2] or (len(segs) > 3 and segs[3])):
        return out
    if service == "queue" and segs[2] == "messages":
        return out + ("/messages/{name}" if len(segs) > 3 and segs[3] else "/messages")
    return out + "/" + NAME


def vault_path(path: str) -> str:
    """``/secrets/db/0a1b...`` -> ``/secrets/db/{version}``; keeps type, name and operation words."""
    segs = [s for s in path.split("/")[1:6]]
    if not segs or not segs[0]:
        return "/"
    kind = segs[0].lower()
    if kind not in _VAULT_TYPES:
        return "/" + INVALID
    out = ["", kind]
    for i, seg in enumerate(segs[1:], start=1):
        if not seg:
            continue
        word = seg.lower()
        if word in _VAULT_WORDS:
            out.append(word)
        elif i == 1 or (i == 2 and out[-1] == "issuers"):
            out.append(seg if _VAULT_NAME.fullmatch(seg) else INVALID)
        elif i == 2:
            out.append("{version}")
        else:
            out.append(NAME)
    return "/".join(out)


def arm_path(path: str) -> str:
    """The ARM resource path, kept whole when it is made of resource-id characters."""
    path = path.rstrip("/") or "/"
    return path if _ARM_PATH.fullmatch(path) else "/" + INVALID


def _query_key(key: str) -> str:
    """A query key as the allow-lists spell it (percent-decoded, lower case)."""
    if "%" not in key and key.islower():
        return key  # the common case: already in its canonical form
    return unquote(key).lower()


def _api_version_items(query: str) -> tuple[tuple[str, str], ...]:
    if not query:
        return ()
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key == "api-version" or (key and _query_key(key) == "api-version"):
            if "%" in value:
                value = unquote(value)
            return (("api-version", value),) if _TOKEN.fullmatch(value) else ()
    return ()


def _storage_query_items(query: str) -> tuple[tuple[str, str], ...]:
    if not query:
        return ()
    out: dict[str, str] = {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        kind = _QUERY_KINDS.get(key)
        if kind is None:
            if "%" not in key and key.islower():
                continue  # already canonical and not allow-listed: SAS parameters, unknown keys
            key = unquote(key).lower()
            kind = _QUERY_KINDS.get(key)
            if kind is None:
                continue
        if key in out:
            continue
        if kind:
            if "%" in value:
                value = unquote(value)
            if _TOKEN.fullmatch(value):
                out[key] = value
        else:
            out[key] = "*"
    return tuple(sorted(out.items())) if len(out) > 1 else tuple(out.items())


def reduce_source(value: str, matcher: EndpointMatcher) -> str:
    """A copy/rename source URL or path reduced to scheme, host and its container (or share)."""
    scheme = ""
    rest = value.strip()
    if "://" in rest:
        scheme, _, rest = rest.partition("://")
        scheme = scheme.lower()
        if scheme not in ("http", "https"):
            return INVALID
        host, slash, path = rest.partition("/")
        if "@" in host or not host:
            return INVALID
        path = path.partition("?")[0]
        segs = path.split("/")
        keep = 2 if matcher.is_path_style(host) else 1
        kept = [_first_segment(s) for s in segs[:keep] if s]
        return f"{scheme}://{host.lower()}" + "".join("/" + s for s in kept)
    path = rest.partition("?")[0]
    first = path.lstrip("/").split("/", 1)[0]
    return "/" + _first_segment(first) if first else INVALID


def _memo_token(value: str) -> bool:
    """Whether an allow-listed header value is a plain token (remembered, bounded)."""
    valid = _TOKEN.fullmatch(value) is not None
    if len(_TOKENS) >= _MEMO_MAX:
        _TOKENS.clear()
    _TOKENS[value] = valid
    return valid


def _storage_header_items(headers: dict[str, str], matcher: EndpointMatcher) -> tuple[tuple[str, str], ...]:
    out = []
    for key, value in headers.items():
        rule = _HEADER_RULES.get(key)
        if rule is None:
            continue  # Authorization, Cookie and everything not allow-listed never survive
        if rule == _VALUE:
            valid = _TOKENS.get(value)
            if valid is None:
                valid = _memo_token(value)
            if valid:
                out.append((key, value))
        elif rule == _PRESENCE:
            out.append((key, "*"))  # the value (for copy-source authorization: a token) never leaves
        elif rule == _STAR:
            if value == "*":
                out.append((key, "*"))
        elif rule == _SOURCE:
            out.append((key, reduce_source(value, matcher)))
        else:
            out.append((key, _first_segment(value)))
    out.sort()
    return tuple(out)
