"""Stage 2: HTTP/1.1 request and response heads, parsed defensively.

Anything that is not a plausible HTTP/1.1 head raises ``Ignored`` with a short reason that the
pipeline counts (``ignored{reason}``); nothing here raises anything else on any input.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

METHODS = frozenset({b"GET", b"PUT", b"POST", b"DELETE", b"HEAD", b"PATCH", b"MERGE", b"OPTIONS"})
OVERRIDABLE = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "MERGE"})
MAX_HEAD = 16 * 1024
MAX_TARGET = 12 * 1024
MAX_HEADERS = 128

_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9a-z-]{1,64}")
# bytes.translate table: control characters (other than TAB, LF, CR) map to 0, the rest to 1
_NOT_CONTROL = bytes(0 if (c < 32 and c not in (9, 10, 13)) or c == 127 else 1 for c in range(256))
_ERROR_HEADER = re.compile(rb"\r\nx-ms-error-code:[ \t]*([A-Za-z0-9_.-]{1,80})", re.IGNORECASE)
_JSON_CODE = re.compile(rb'"code"\s*:\s*"([A-Za-z0-9_.-]{1,80})"')


class Ignored(Exception):
    """The bytes are not something the agent reports; ``reason`` is the metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class HttpRequest:
    """A parsed request head. Header names are lower case; the first occurrence wins."""

    method: str          # effective method (X-HTTP-Method applied), upper case
    target: str          # as sent: origin-form "/path?query" or absolute-form
    headers: dict[str, str]
    partial: bool = False  # the head was cut short by the capture; headers may be missing


def looks_like_request(data: bytes) -> bool:
    """True when ``data`` starts with an HTTP method and a space (cheap pre-check)."""
    sp = data.find(b" ", 0, 9)
    return sp > 0 and data[:sp] in METHODS


def classify_garbage(data: bytes) -> str:
    """The ignored-reason for bytes that do not start an HTTP/1.1 request or response."""
    if data.startswith(b"PRI "):
        return "http2"
    if len(data) >= 3 and data[0] in (0x14, 0x15, 0x16, 0x17) and data[1] == 0x03 and data[2] <= 0x04:
        return "tls_in_tls"
    if _CONTROL.search(data[:64]) or not data[:64].isascii():
        return "binary"
    return "not_http"


def parse_request_head(head: bytes, *, partial: bool = False, require_host: bool = True) -> HttpRequest:
    """Parse ``head`` (the bytes before the blank line; no trailing CRLF CRLF).

    With ``partial`` the head was truncated: its last, incomplete line is dropped. Batch
    sub-requests pass ``require_host=False`` (they inherit the batch's host).
    """
    if len(head) > MAX_HEAD:
        raise Ignored("oversized")
    if partial:
        cut = head.rfind(b"\r\n")
        if cut < 0:
            raise Ignored("truncated")
        head = head[:cut]
    if not head.isascii() or b"\x00" in head.translate(_NOT_CONTROL):
        raise Ignored("binary")
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise Ignored("malformed")  # bare CR or LF: a smuggling attempt or garbage
    line_end = head.find(b"\r\n")
    request_line = head if line_end < 0 else head[:line_end]
    parts = request_line.split(b" ")
    if len(parts) != 3:
        raise Ignored("malformed")
    raw_method, target, version = parts
    if version != b"HTTP/1.1" and version != b"HTTP/1.0":
        raise Ignored("http2" if version.startswith(b"HTTP/2") else "malformed")
    if raw_method not in METHODS:
        raise Ignored("malformed")
    if len(target) > MAX_TARGET:
        raise Ignored("oversized")
    if not (target.startswith(b"/") or target.startswith(b"https://") or target.startswith(b"http://")):
        raise Ignored("malformed")
    if crlf > MAX_HEADERS:
        raise Ignored("oversized")
    headers: dict[str, str] = {}
    if line_end >= 0:
        parts = [line.partition(":") for line in head[line_end + 2:].decode("ascii").split("\r\n")]
        names = [p[0].lower() for p in parts]
        if "" in names or len("".join([p[1] for p in parts])) != len(parts):
            raise Ignored("malformed")  # a line without a name or without a colon
        if not "".join(names).replace("-", "").isalnum() and not all(_TOKEN.fullmatch(n) for n in names):
            raise Ignored("malformed")
        # reversed, so that the first occurrence of a header wins
        headers = dict(zip(reversed(names), [p[2].strip(" \t") for p in reversed(parts)]))
        if len(headers) != len(names) and (names.count("host") > 1 or names.count("content-length") > 1):
            raise Ignored("malformed")  # ambiguous: two hosts or two lengths
    if require_host and "host" not in headers and not target.startswith(b"http"):
        raise Ignored("truncated" if partial else "malformed")
    method = raw_method.decode()
    override = headers.get("x-http-method")
    if override is not None:
        override = override.upper()
        if override in OVERRIDABLE:
            method = override
    return HttpRequest(method, target.decode(), headers, partial)


def parse_response_head(data: bytes) -> tuple[int, str]:
    """(status, error code) from the start of a response; error code "" when none is seen.

    The code is ``x-ms-error-code`` or, failing that, the innermost JSON ``"code"`` of an ARM or
    Key Vault error body when the captured bytes include it.
    """
    if not data.startswith(b"HTTP/1.") or len(data) < 12 or data[8:9] != b" ":
        raise Ignored("malformed")
    status_bytes = data[9:12]
    if not status_bytes.isdigit():
        raise Ignored("malformed")
    status = int(status_bytes)
    if status < 100:
        raise Ignored("malformed")
    if status < 400:
        return status, ""
    end = data.find(b"\r\n\r\n")
    head = data if end < 0 else data[:end]
    m = _ERROR_HEADER.search(head)
    if m:
        return status, m.group(1).decode()
    if end >= 0:
        codes = _JSON_CODE.findall(data, end, end + 4096)
        if codes:
            return status, codes[-1].decode()
    return status, ""
