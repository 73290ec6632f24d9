"""Entra ID: OpenID discovery and the v2.0 token endpoint (client secret and federated assertion)."""
from __future__ import annotations

import time
import uuid
from typing import Any

from aiohttp import web

from . import tokens
from .context import Ctx
from .errors import entra_error, json_response
from .state import FIC_TYPE

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def app_object_id(tenant_id: str, client_id: str) -> str:
    """A stable service-principal object id for an app registration."""
    return str(uuid.uuid5(uuid.UUID(tenant_id), client_id))


def openid_configuration(ctx: Ctx, tenant: str) -> web.Response:
    """``GET /{tenant}/v2.0/.well-known/openid-configuration``."""
    if tenant.lower() != ctx.state.tenant_id.lower():
        return entra_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
    base = f"{ctx.url}/{ctx.state.tenant_id}"
    return json_response({
        "issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize", "jwks_uri": f"{base}/discovery/v2.0/keys",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "subject_types_supported": ["pairwise"], "id_token_signing_alg_values_supported": ["RS256"],
        "tenant_region_scope": "NA", "cloud_instance_name": "localhost"})


async def token(ctx: Ctx, request: web.Request, tenant: str) -> web.Response:
    """``POST /{tenant}/oauth2/v2.0/token`` with grant_type=client_credentials."""
    if tenant.lower() != ctx.state.tenant_id.lower():
        return entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found.")
    form = await request.post()
    field = lambda name: str(form.get(name, ""))  # noqa: E731
    if field("grant_type") != "client_credentials":
        return entra_error(400, "unsupported_grant_type", 70003,
                           f"The app requested an unsupported grant type '{field('grant_type')}'.")
    scopes = [s for s in field("scope").split() if s not in {"openid", "profile", "offline_access"}]
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        return entra_error(400, "invalid_scope", 1002012,
                           f"The provided value for scope '{field('scope')}' is not valid. Client credential flows "
                           "must have a scope value with /.default suffixed to the resource identifier.")
    audience = scopes[0][: -len("/.default")]
    client_id = field("client_id")
    if not client_id:
        return entra_error(400, "invalid_request", 900144, "The request body must contain the parameter: 'client_id'.")
    if field("client_assertion"):
        result = _check_assertion(ctx, client_id, field("client_assertion_type"), field("client_assertion"))
    elif field("client_secret"):
        result = _check_secret(ctx, client_id, field("client_secret"))
    else:
        return entra_error(401, "invalid_client", 7000218, "The request body must contain the parameter: "
                           "'client_assertion' or 'client_secret'.")
    if isinstance(result, web.Response):
        return result
    claims = tokens.access_token_claims(ctx.state.tenant_id, audience, result, client_id)
    lifetime = claims["exp"] - int(time.time())
    return json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                          "access_token": tokens.encode(claims, ctx.key)})


def _check_secret(ctx: Ctx, client_id: str, secret: str) -> str | web.Response:
    with ctx.state.lock:
        known = ctx.state.apps.get(client_id)
    if known is None:
        return entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was "
                           f"not found in the directory '{ctx.state.tenant_id}'.")
    if secret != known:
        return entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being "
                           f"sent in the request is the client secret value, not the client secret ID, for a secret "
                           f"added to app '{client_id}'.")
    return app_object_id(ctx.state.tenant_id, client_id)


def _check_assertion(ctx: Ctx, client_id: str, assertion_type: str, assertion: str) -> str | web.Response:
    if assertion_type != JWT_BEARER:
        return entra_error(400, "invalid_request", 50027, f"client_assertion_type must be '{JWT_BEARER}'.")
    try:
        claims = tokens.read_claims(assertion)
    except ValueError as e:
        return entra_error(400, "invalid_client", 50027, f"Invalid JWT token in client_assertion: {e}.")
    identity = ctx.state.identity_by_client_id(client_id)
    if identity is None:
        return entra_error(400, "unauthorized_client", 700016, f"Application with identifier '{client_id}' was "
                           f"not found in the directory '{ctx.state.tenant_id}'.")
    now = time.time()
    if not (claims.get("nbf", 0) - 300 <= now < claims.get("exp", 0)):
        return entra_error(400, "invalid_client", 700024, "Client assertion is not within its valid time range.")
    auds: Any = claims.get("aud", [])
    auds = [auds] if isinstance(auds, str) else list(auds)
    for fic in ctx.state.children(identity["id"], FIC_TYPE):
        p = fic["properties"]
        if p["issuer"] == claims.get("iss") and p["subject"] == claims.get("sub") and set(auds) & set(p["audiences"]):
            return str(identity["properties"]["principalId"])
    return entra_error(400, "invalid_client", 70021, "No matching federated identity record found for presented "
                       f"assertion. Assertion Issuer: '{claims.get('iss')}'. Assertion Subject: '{claims.get('sub')}'. "
                       f"Assertion Audience: '{','.join(map(str, auds))}'.")
