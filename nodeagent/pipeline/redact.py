"""Stage 4: reduce a recognised request to the proto's privacy-safe shape.

Only what identifies the operation and its resource survives: the first path segment of storage
URLs (deeper segments become ``{name}``), Key Vault object type and name, the ARM resource path,
allow-listed query keys and headers. Everything else (Authorization, SAS parameters, Cookie,
copy-source credentials, blob names, table keys, bodies) is dropped here, never copied.
"""
from __future__ import annotations

import re
from urllib.parse import unquote

from clearance.nodeagent.events import AzureCall
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
    "x-ms-source-range", "x-ms-proposed-lease-id", "x-ms-properties",
})
_HEADER_SOURCES = frozenset({"x-ms-copy-source", "x-ms-rename-source", "x-ms-file-rename-source"})
_HEADER_NAMES = frozenset({"x-ms-source-container-name"})
_VAULT_TYPES = frozenset({
    "secrets", "keys", "certificates", "deletedsecrets", "deletedkeys", "deletedcertificates",
    "storage", "deletedstorage",
})
_VAULT_WORDS = frozenset({
    "versions", "backup", "restore", "recover", "create", "import", "policy", "pending",
    "rotationpolicy", "rotate", "release", "encrypt", "decrypt", "wrapkey", "unwrapkey", "sign",
    "verify", "attestation", "issuers", "contacts", "sas",
})


def redact(ep: Endpoint, req: HttpRequest, matcher: EndpointMatcher) -> AzureCall:
    """The AzureCall for request ``req`` recognised as ``ep``; nothing secret is copied."""
    service = ep.service
    if service == "vault":
        path = vault_path(ep.path)
        query = _keep_api_version(ep.query)
        headers: dict[str, str] = {}
    elif service == "arm":
        path = arm_path(ep.path)
        query = _keep_api_version(ep.query)
        headers = {}
    else:
        path = storage_path(service, ep.path)
        query = storage_query(ep.query)
        headers = storage_headers(req.headers, matcher)
    return AzureCall(service=service, account=ep.account, host=ep.host, method=req.method,
                     path=path, query=query, headers=headers)


def _first_segment(raw: str) -> str:
    name = unquote(raw)
    return name if _NAME.fullmatch(name) else INVALID


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
    deeper = [s for s in segs[2:] if s]
    if not deeper:
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


def _pairs(query: str):
    for part in query.split("&"):
        if part:
            key, _, value = part.partition("=")
            yield unquote(key).lower(), value


def _keep_api_version(query: str) -> dict[str, str]:
    for key, value in _pairs(query):
        if key == "api-version":
            value = unquote(value)
            return {key: value} if _TOKEN.fullmatch(value) else {}
    return {}


def storage_query(query: str) -> dict[str, str]:
    """Only the operation-identifying query keys; SAS and unknown keys never survive."""
    out: dict[str, str] = {}
    if not query:
        return out
    for key, value in _pairs(query):
        if key in out:
            continue
        if key in _STORAGE_QUERY_VALUES:
            value = unquote(value)
            if _TOKEN.fullmatch(value):
                out[key] = value
        elif key in _STORAGE_QUERY_PRESENCE:
            out[key] = "*"
    return out


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


def storage_headers(headers: dict[str, str], matcher: EndpointMatcher) -> dict[str, str]:
    """Only operation-identifying headers; Authorization, Cookie, copy-source auth never survive."""
    out: dict[str, str] = {}
    for key, value in headers.items():
        if key in _HEADER_VALUES:
            if _TOKEN.fullmatch(value):
                out[key] = value
        elif key in _HEADER_PRESENCE:
            out[key] = "*"
        elif key == "if-none-match":
            if value == "*":
                out[key] = "*"
        elif key in _HEADER_SOURCES:
            out[key] = reduce_source(value, matcher)
        elif key in _HEADER_NAMES:
            out[key] = _first_segment(value)
    return out
