"""Stage 2: HTTP/1.1 request and response heads, parsed defensively.

Anything that is not a plausible HTTP/1.1 head raises ``Ignored`` with a short reason that the
pipeline counts (``ignored{reason}``); nothing here raises anything else on any input.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

METHODS = frozenset({b"GET", b"PUT", b"POST", b"DELETE", b"HEAD", b"PATCH", b"MERGE", b"OPTIONS"})
OVERRIDABLE = frozenset({"GET", "PUT", "POST", "DELETE", "HEAD", "PATCH", "MERGE"})
MAX_HEAD = 16 * 1024
MAX_TARGET = 12 * 1024
MAX_HEADERS = 128

_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_TOKEN_CHARS = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_BAD_LINE = ("", "")  # what a header line scan yields for a line that is not NAME: VALUE
# the headers the parser itself uses (routing, body length, batches, method override)
PARSER_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "content-type", "x-http-method"})
# bytes.translate table: control characters (other than TAB, LF, CR) map to 0, the rest to 1
_NOT_CONTROL = bytes(0 if (c < 32 and c not in (9, 10, 13)) or c == 127 else 1 for c in range(256))
# what a clean head holds once its CRLF pairs are gone: TAB and printable ASCII
_CLEAN = bytes(c for c in range(256) if c == 9 or 32 <= c < 127)
_METHOD_NAMES = frozenset(m.decode() for m in METHODS)
_ERROR_HEADER = re.compile(rb"\r\nx-ms-error-code:[ \t]*([A-Za-z0-9_.-]{1,80})", re.IGNORECASE)
_JSON_CODE = re.compile(rb'"code"\s*:\s*"([A-Za-z0-9_.-]{1,80})"')


class Ignored(Exception):
    """The bytes are not something the agent reports; ``reason`` is the metric label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(slots=True)
class HttpRequest:
    """A parsed request head. Header names are lower case; the first occurrence wins; the parser
    may have kept only the headers its user asked for."""

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


class HeadParser:
    """Parses request heads, keeping only ``PARSER_HEADERS`` and those named in ``keep`` (None: all).

    Every line is still checked (a name of token characters, a colon); the values of the other
    headers (Authorization, Cookie, dates, request ids) are never copied into the result.
    """

    def __init__(self, keep: Iterable[str] | None = None) -> None:
        names = _TOKEN_CHARS if keep is None else _names_pattern(PARSER_HEADERS | {n.lower() for n in keep})
        # One pass over the line starts: a kept header yields (name, value); a line that is not
        # NAME: VALUE yields ("", ""); any other line yields nothing and its value is not copied.
        self._scan = re.compile(f"\r\n(?:({names}):[ \t]*([^\r]*)|(?!{_TOKEN_CHARS}:))")

    def parse(self, head: bytes, *, partial: bool = False, require_host: bool = True) -> HttpRequest:
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
        # one pass for non-ASCII, control characters and bare CR or LF (what is left of them
        # once the CRLF pairs are gone): deleting TAB and printable ASCII leaves nothing
        lines_only = head.replace(b"\r\n", b"")
        if lines_only.translate(None, _CLEAN):
            raise Ignored(_dirty_reason(head))
        crlf = (len(head) - len(lines_only)) >> 1
        text = head.decode("latin-1")  # clean ASCII: one copy costs less than decoding each value
        line_end = text.find("\r\n")
        parts = (text if line_end < 0 else text[:line_end]).split(" ")
        if len(parts) != 3:
            raise Ignored("malformed")
        method, target, version = parts
        if version != "HTTP/1.1" and version != "HTTP/1.0":
            raise Ignored("http2" if version.startswith("HTTP/2") else "malformed")
        if method not in _METHOD_NAMES:
            raise Ignored("malformed")
        if len(target) > MAX_TARGET:
            raise Ignored("oversized")
        absolute = target[:1] != "/"
        if absolute and not (target.startswith("https://") or target.startswith("http://")):
            raise Ignored("malformed")
        if crlf > MAX_HEADERS:
            raise Ignored("oversized")
        if line_end < 0:
            headers: dict[str, str] = {}
        else:
            found = self._scan.findall(text, line_end)
            if _BAD_LINE in found:
                raise Ignored("malformed")  # a line without a name, a colon, or with a bad name
            # reversed, so that the first occurrence of a header wins
            headers = {name.lower(): value.rstrip(" \t") for name, value in reversed(found)}
            if len(headers) != len(found):  # a kept header came twice
                names = [name.lower() for name, _ in found]
                if names.count("host") > 1 or names.count("content-length") > 1:
                    raise Ignored("malformed")  # ambiguous: two hosts or two lengths
        if require_host and not absolute and "host" not in headers:
            raise Ignored("truncated" if partial else "malformed")
        if "x-http-method" in headers:
            override = headers["x-http-method"].upper()
            if override in OVERRIDABLE:
                method = override
        return HttpRequest(method, target, headers, partial)


def _dirty_reason(head: bytes) -> str:
    if not head.isascii() or b"\x00" in head.translate(_NOT_CONTROL):
        return "binary"
    return "malformed"  # bare CR or LF: a smuggling attempt or garbage


def _names_pattern(names: Iterable[str]) -> str:
    """A case-insensitive regex alternation of header ``names``: one branch per first letter in
    each case (the engine skips a branch cheaply when its first item is a plain literal), the
    rest factored by common prefixes (a flat list of 45 names costs four times as much)."""
    by_first: dict[str, list[str]] = {}
    for name in names:
        by_first.setdefault(name[0], []).append(name[1:])
    branches = []
    for first, rests in sorted(by_first.items()):
        rest = _trie(rests)
        for letter in sorted({first.lower(), first.upper()}):
            branches.append(re.escape(letter) + (f"(?i:{rest})" if rest else ""))
    return "|".join(branches)


def _trie(names: Iterable[str]) -> str:
    """A regex alternation of ``names`` factored by common prefixes ("" for only the empty name)."""
    tree: dict = {}
    for name in names:
        node = tree
        for ch in name:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        group = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        if "" in node:
            return ("(?:" + group + ")?") if len(branches) == 1 else group + "?"
        return group

    return emit(tree)


_ALL_HEADERS = HeadParser()


def parse_request_head(head: bytes, *, partial: bool = False, require_host: bool = True) -> HttpRequest:
    """``HeadParser().parse``: every header kept (the pipeline keeps only those it uses)."""
    return _ALL_HEADERS.parse(head, partial=partial, require_host=require_host)


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
