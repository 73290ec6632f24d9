"""The aiohttp application: recording, faults, authentication, throttling, then routing."""
from __future__ import annotations

import asyncio
import json
import logging
from urllib.parse import unquote

from aiohttp import web

from . import authorization, entra, identities, keyvault, resources, tokens
from .calls import Call, now
from .context import Ctx
from .errors import ArmError
from .ids import parse_resource_path, subscription_of

log = logging.getLogger(__name__)
ARM_AUDIENCES = {"https://management.azure.com", "https://management.core.windows.net"}
_WRITE_METHODS = {"PUT": "writes", "PATCH": "writes", "POST": "writes", "DELETE": "deletes"}


def make_app(ctx: Ctx, calls_log) -> web.Application:  # noqa: ANN001 - CallLog, avoids an import cycle in docs
    """Build the application serving Entra ID and ARM for ``ctx``."""

    async def handler(request: web.Request) -> web.StreamResponse:
        seen: dict[str, str | None] = {"principal": None, "error_code": None}
        status = 0
        try:
            response = await _answer(ctx, request, seen)
            status = response.status
            return response
        finally:
            calls_log.add(Call(request.method, request.path, dict(request.query), status, now(), seen["principal"],
                               seen["error_code"]))

    app = web.Application(client_max_size=4 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


async def _answer(ctx: Ctx, request: web.Request, seen: dict[str, str | None]) -> web.StreamResponse:
    """The response to one request; fills ``seen`` with the caller and the ARM error code for the record."""
    faults = ctx.faults
    if faults.unreachable:
        if request.transport is not None:
            request.transport.abort()
        raise ConnectionResetError("ARM test bed is switched to unreachable")
    if faults.latency_ms > 0:
        await asyncio.sleep(faults.latency_ms / 1000)
    segs = [unquote(s) for s in request.path.split("/") if s]
    try:
        injected = faults.take_injected(request.method, request.path)
        if injected is not None:
            headers = {"Retry-After": str(injected.retry_after)} if injected.retry_after is not None else None
            raise ArmError(injected.status, injected.code, f"Injected failure ({injected.status}) from the ARM test "
                           "bed.", headers)
        entra_answer = await _entra(ctx, request, segs)
        if entra_answer is not None:
            if entra_answer.status >= 400 and isinstance(entra_answer, web.Response) and entra_answer.text:
                seen["error_code"] = str(json.loads(entra_answer.text).get("error"))
            return entra_answer
        if "api-version" not in request.query:
            raise ArmError(400, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is "
                           "required for all requests.")
        seen["principal"] = _authenticate(ctx, request)
        _throttle(ctx, request, segs, seen["principal"])
        response = await _route(ctx, request, segs, seen["principal"])
    except ArmError as e:
        response = e.response()
        seen["error_code"] = e.code
    except (ConnectionResetError, asyncio.CancelledError):
        raise
    except Exception as e:  # noqa: BLE001 - a bed bug must reach the test as a clear ARM error, not a bare 500
        log.exception("ARM test bed failed on %s %s", request.method, request.path)
        response = ArmError(500, "TestBedInternalError", f"The ARM test bed failed: {type(e).__name__}: {e}").response()
        seen["error_code"] = "TestBedInternalError"
    response.headers.setdefault("x-ms-request-id", _rid())
    return response


def _rid() -> str:
    import uuid
    return str(uuid.uuid4())


async def _entra(ctx: Ctx, request: web.Request, segs: list[str]) -> web.StreamResponse | None:
    low = [s.lower() for s in segs]
    if len(segs) == 4 and low[1:] == ["oauth2", "v2.0", "token"] and request.method == "POST":
        return await entra.token(ctx, request, segs[0])
    if len(segs) == 4 and low[1:] == ["v2.0", ".well-known", "openid-configuration"] and request.method == "GET":
        return entra.openid_configuration(ctx, segs[0])
    return None


def _authenticate(ctx: Ctx, request: web.Request) -> str:
    header = request.headers.get("Authorization", "")
    challenge = {"WWW-Authenticate": f'Bearer authorization_uri="{ctx.url}/{ctx.state.tenant_id}", '
                                     'error="invalid_token", error_description="The authentication failed."'}
    if not header.startswith("Bearer "):
        raise ArmError(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.",
                       challenge)
    try:
        claims = tokens.verify(header[len("Bearer "):], ctx.key)
    except ValueError as e:
        raise ArmError(401, "InvalidAuthenticationToken", f"The access token is invalid: {e}.", challenge) from None
    audience = str(claims.get("aud", "")).rstrip("/")
    if audience not in ARM_AUDIENCES | {ctx.url}:
        raise ArmError(401, "InvalidAuthenticationTokenAudience", f"The access token has been obtained for wrong "
                       f"audience or resource '{claims.get('aud')}'. It should exactly match with one of the allowed "
                       f"audiences {sorted(ARM_AUDIENCES | {ctx.url})}.", challenge)
    return str(claims.get("oid"))


def _throttle(ctx: Ctx, request: web.Request, segs: list[str], principal: str | None) -> None:
    kind = _WRITE_METHODS.get(request.method)
    if kind is None:
        return
    sub = subscription_of(request.path) or "tenant"
    ok, _remaining, retry_after = ctx.faults.take_write_token(sub, kind)
    if not ok:
        raise ArmError(429, "TooManyRequests", f"Number of '{kind[:-1]}' requests for subscription '{sub}' actor "
                       f"'{principal}' on scope 'Subscription' exceeded. Please try again after '{retry_after}' "
                       "seconds after additional tokens are available. Refer to https://aka.ms/arm-throttling",
                       {"Retry-After": str(retry_after), f"x-ms-ratelimit-remaining-subscription-{kind}": "0"})


async def _route(ctx: Ctx, request: web.Request, segs: list[str], principal: str | None) -> web.StreamResponse:
    low = [s.lower() for s in segs]
    # {scope}/providers/Microsoft.Authorization/... : the last such marker decides the scope.
    for i in range(len(low) - 2, -1, -1):
        if low[i] == "providers" and low[i + 1] == "microsoft.authorization":
            scope = "/" + "/".join(segs[:i])
            return await authorization.handle(ctx, request, scope, segs[i + 2:], principal)
    if not low or low[0] != "subscriptions":
        raise ArmError(404, "InvalidResourceType", f"The ARM test bed serves nothing at '{request.path}'.")
    if len(low) <= 2:
        return resources.subscriptions(ctx, request, segs)
    if low[2] == "resourcegroups" and len(low) in (3, 4):
        return await resources.resource_groups(ctx, request, segs)
    if low[2] == "resources" and len(low) == 3:
        return resources.resources_list(ctx, request, segs[1], None)
    if low[2] == "resourcegroups" and len(low) == 5 and low[4] == "resources":
        return resources.resources_list(ctx, request, segs[1], segs[3])
    if low[2] == "providers" and (len(low) in (3, 4) or (len(low) == 5 and low[4] == "resourcetypes")):
        return resources.providers(ctx, request, segs)
    path = parse_resource_path(segs)
    if path is None:
        raise ArmError(404, "InvalidResourceType", f"The ARM test bed serves nothing at '{request.path}'.")
    ns = path.namespace.lower()
    if ns == "microsoft.managedidentity":
        return await identities.handle(ctx, request, path)
    if ns == "microsoft.keyvault":
        return await keyvault.handle(ctx, request, path)
    return resources.generic_resource(ctx, request, path)
