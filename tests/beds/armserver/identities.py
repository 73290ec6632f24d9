"""User-assigned managed identities and their federated identity credentials."""
from __future__ import annotations

import asyncio
import copy
import re
import uuid
from typing import Any

from aiohttp import web

from .context import Ctx, page, read_json
from .errors import ArmError, json_response, not_found
from .ids import ResourcePath, norm
from .resources import check_api_version, collection, need_resource_group, need_subscription
from .state import FIC_TYPE, IDENTITY_TYPE

_IDENTITY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,127}$")
_FIC_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{2,119}$")
MAX_FICS = 20


async def handle(ctx: Ctx, request: web.Request, path: ResourcePath) -> web.Response:
    """Dispatch ``Microsoft.ManagedIdentity`` paths."""
    check_api_version(path, request.query.get("api-version", ""))
    parts = [p.lower() for p in path.parts]
    if parts[0] != "userassignedidentities" or len(parts) > 4 or (len(parts) >= 3 and
                                                                   parts[2] != "federatedidentitycredentials"):
        raise ArmError(400, "InvalidResourceType", f"The resource type '{path.resource_type}' is not supported by "
                       "the ARM test bed.")
    with ctx.state.lock:
        if path.resource_group:
            need_resource_group(ctx, path.subscription, path.resource_group)
        else:
            need_subscription(ctx, path.subscription)
    if len(parts) == 1:
        if request.method != "GET":
            raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on a collection")
        with ctx.state.lock:
            return page(ctx, request, collection(ctx, path))
    if len(parts) == 2:
        return await _identity(ctx, request, path)
    return await _fic(ctx, request, path)


async def _identity(ctx: Ctx, request: web.Request, path: ResourcePath) -> web.Response:
    key = norm(path.id)
    if request.method == "GET":
        with ctx.state.lock:
            body = ctx.state.resources.get(key)
            if body is None:
                raise not_found(IDENTITY_TYPE, path.name, path.resource_group)
            return json_response(copy.deepcopy(body))
    if request.method == "DELETE":
        with ctx.state.lock:
            if ctx.state.resources.pop(key, None) is None:
                return web.Response(status=204)
            for child in [k for k in ctx.state.resources if k.startswith(key + "/")]:
                del ctx.state.resources[child]
        return web.Response(status=200)
    if request.method not in ("PUT", "PATCH"):
        raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on an identity")
    if not _IDENTITY_NAME.match(path.name):
        raise ArmError(400, "InvalidResourceName", f"Resource name '{path.name}' is invalid. The name can contain "
                       "only letters, numbers, underscores and hyphens, must start with a letter or number, and must "
                       "be 3-128 characters long.")
    payload = await read_json(request)
    with ctx.state.lock:
        existing = ctx.state.resources.get(key)
        if existing is None and request.method == "PATCH":
            raise not_found(IDENTITY_TYPE, path.name, path.resource_group)
        location = payload.get("location") or (existing or {}).get("location")
        if not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        if existing is not None:
            if "tags" in payload:
                existing["tags"] = dict(payload.get("tags") or {})
            return json_response(copy.deepcopy(existing), 200)
        body: dict[str, Any] = {
            "id": path.id, "name": path.name, "type": IDENTITY_TYPE, "location": location,
            "tags": dict(payload.get("tags") or {}),
            "properties": {"tenantId": ctx.state.tenant_id, "principalId": ctx.state.new_principal(),
                           "clientId": str(uuid.uuid4()), "isolationScope": "None"}}
        ctx.state.resources[key] = body
        return json_response(copy.deepcopy(body), 201)


async def _fic(ctx: Ctx, request: web.Request, path: ResourcePath) -> web.Response:
    parent = path.parent()
    assert parent is not None
    identity_key = norm(parent.id)
    with ctx.state.lock:
        if identity_key not in ctx.state.resources:
            raise ArmError(404, "ParentResourceNotFound", "Can not perform requested operation on nested resource. "
                           f"Parent resource '{parent.name}' not found.")
        if path.is_collection:
            if request.method != "GET":
                raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on a collection")
            return page(ctx, request, collection(ctx, path))
        if request.method == "GET":
            body = ctx.state.resources.get(norm(path.id))
            if body is None:
                raise not_found(FIC_TYPE, f"{parent.name}/{path.name}", path.resource_group)
            return json_response(copy.deepcopy(body))
    if request.method not in ("PUT", "DELETE"):
        raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on a federated identity credential")
    payload = await read_json(request) if request.method == "PUT" else {}
    if identity_key in ctx.fic_inflight:
        raise ArmError(409, "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
                       "Too many Federated Identity Credentials are written concurrently for the managed identity "
                       f"'{parent.id}'. Concurrent Federated Identity Credentials writes under the same managed "
                       "identity are not supported.")
    ctx.fic_inflight.add(identity_key)
    try:
        await asyncio.sleep(ctx.faults.fic_write_hold_ms / 1000)
        with ctx.state.lock:
            if request.method == "DELETE":
                gone = ctx.state.resources.pop(norm(path.id), None)
                return web.Response(status=200 if gone else 204)
            return _put_fic(ctx, path, payload)
    finally:
        ctx.fic_inflight.discard(identity_key)


def _put_fic(ctx: Ctx, path: ResourcePath, payload: dict[str, Any]) -> web.Response:
    if not _FIC_NAME.match(path.name):
        raise ArmError(400, "InvalidResourceName", f"Federated identity credential name '{path.name}' is invalid: "
                       "3-120 characters of letters, numbers, '-' and '_', starting with a letter or number.")
    props = payload.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must contain 'properties'.")
    issuer, subject, audiences = props.get("issuer"), props.get("subject"), props.get("audiences")
    if not isinstance(issuer, str) or not issuer.startswith("https://"):
        raise ArmError(400, "BadRequest", f"Issuer '{issuer}' must be an https URL.")
    if not isinstance(subject, str) or not subject:
        raise ArmError(400, "BadRequest", "Subject must be a non-empty string.")
    if not isinstance(audiences, list) or len(audiences) != 1 or not all(isinstance(a, str) and a for a in audiences):
        raise ArmError(400, "BadRequest", "Audiences must contain exactly one non-empty value.")
    parent = path.parent()
    assert parent is not None
    siblings = [b for b in ctx.state.children(parent.id, FIC_TYPE) if norm(b["id"]) != norm(path.id)]
    if any(b["properties"]["issuer"] == issuer and b["properties"]["subject"] == subject for b in siblings):
        raise ArmError(400, "BadRequest", f"A federated identity credential with issuer '{issuer}' and subject "
                       f"'{subject}' already exists on managed identity '{parent.name}'.")
    existed = norm(path.id) in ctx.state.resources
    if not existed and len(siblings) >= MAX_FICS:
        raise ArmError(400, "BadRequest", f"Managed identity '{parent.name}' already has the maximum of {MAX_FICS} "
                       "federated identity credentials.")
    body = {"id": path.id, "name": path.name, "type": FIC_TYPE,
            "properties": {"issuer": issuer, "subject": subject, "audiences": list(audiences)}}
    ctx.state.resources[norm(path.id)] = body
    return json_response(copy.deepcopy(body), 200 if existed else 201)
