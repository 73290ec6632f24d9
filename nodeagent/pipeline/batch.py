"""Batch requests (blob ``POST ?comp=batch``, table ``POST /$batch``): their sub-requests.

The multipart body is walked here, in the agent; each sub-request head is parsed like any other
request and the body itself goes no further than this module.
"""
from __future__ import annotations

import re

from clearance.nodeagent.pipeline.http import HttpRequest, Ignored, parse_request_head

MAX_BODY = 16 * 1024
MAX_PARTS = 256
_BOUNDARY = re.compile(r"""boundary=(?:"([^"]{1,70})"|([A-Za-z0-9'()+_,./:=?-]{1,70}))""", re.IGNORECASE)


def is_batch(req: HttpRequest) -> bool:
    """True for a blob or table batch request (its body holds the real operations)."""
    if req.method != "POST":
        return False
    target = req.target
    return "comp=batch" in target or target.partition("?")[0].endswith("/$batch")


def boundary_of(content_type: str) -> bytes | None:
    """The multipart boundary named in a Content-Type value, or None."""
    if not content_type.lower().lstrip().startswith("multipart/"):
        return None
    m = _BOUNDARY.search(content_type)
    if not m:
        return None
    return (m.group(1) or m.group(2)).encode()


def _split_parts(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    chunks = body.split(delimiter)
    parts = []
    for chunk in chunks[1:MAX_PARTS + 2]:
        if chunk.startswith(b"--"):
            break  # the closing delimiter
        parts.append(chunk.removeprefix(b"\r\n"))
    return parts


def subrequests(content_type: str, body: bytes, *, depth: int = 0) -> list[HttpRequest]:
    """The sub-request heads of a multipart batch body (a truncated body yields what it holds)."""
    boundary = boundary_of(content_type)
    if boundary is None or depth > 1:
        return []
    found: list[HttpRequest] = []
    for part in _split_parts(body[:MAX_BODY], boundary):
        head_end = part.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        part_type = ""
        for line in part[:head_end].split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-type":
                part_type = value.strip().decode("latin-1")
        inner = part[head_end + 4:]
        if part_type.lower().startswith("multipart/"):
            found.extend(subrequests(part_type, inner, depth=depth + 1))
        elif part_type.lower().startswith("application/http"):
            sub_end = inner.find(b"\r\n\r\n")
            head = inner if sub_end < 0 else inner[:sub_end]
            try:
                found.append(parse_request_head(head, partial=sub_end < 0, require_host=False))
            except Ignored:
                continue
        if len(found) >= MAX_PARTS:
            break
    return found[:MAX_PARTS]
