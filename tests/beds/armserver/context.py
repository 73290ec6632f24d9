"""What every handler gets: the state, the switches, the signing key, and helpers for lists."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from .errors import ArmError
from .faults import Faults
from .state import ArmState

_CLAUSE = re.compile(r"^\s*(?:(?P<field>\w+)\s+eq\s+'(?P<value>[^']*)'|(?P<fn>\w+)\(\s*(?:'(?P<arg>[^']*)')?\s*\))\s*$",
                     re.I)


@dataclass
class Ctx:
    """Shared by the handlers of one server."""

    url: str
    state: ArmState
    faults: Faults
    key: bytes
    fic_inflight: set[str] = field(default_factory=set)


def page(ctx: Ctx, request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    """One page of a list answer, with ``nextLink`` (``$skiptoken``) when more remain."""
    from .errors import json_response
    try:
        start = int(request.query.get("$skiptoken", "0"))
    except ValueError:
        raise ArmError(400, "InvalidSkipToken", "The $skiptoken in the request is not valid.") from None
    size = max(1, ctx.faults.page_size)
    body: dict[str, Any] = {"value": items[start:start + size]}
    if start + size < len(items):
        query = {k: v for k, v in request.query.items() if k != "$skiptoken"}
        query["$skiptoken"] = str(start + size)
        body["nextLink"] = f"{ctx.url}{request.path}?{urlencode(query)}"
    return json_response(body)


def parse_filter(text: str | None, allowed_fields: set[str], allowed_functions: set[str]) -> list[tuple[str, str]]:
    """``a eq 'x' and f('y')`` -> ``[("a", "x"), ("f()", "y")]`` (names lower-cased); 400 on anything else."""
    if not text:
        return []
    out: list[tuple[str, str]] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.I):
        m = _CLAUSE.match(clause)
        name = (m.group("field") or (m.group("fn") + "()")).lower() if m else ""
        if not m or (m.group("field") and name not in allowed_fields) or (m.group("fn") and name not in allowed_functions):
            raise ArmError(400, "InvalidFilterInQueryString",
                           f"The $filter '{text}' is not supported here: clause '{clause}' is not one of "
                           f"{sorted(allowed_fields)} eq '...' or {sorted(allowed_functions)}.")
        out.append((name, m.group("value") if m.group("field") else (m.group("arg") or "")))
    return out


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 InvalidRequestContent otherwise."""
    raw = await request.read()
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise ArmError(400, "InvalidRequestContent", f"The request content was invalid and could not be deserialized: {e}") \
            from None
    if not isinstance(body, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must be a JSON object.")
    return body
