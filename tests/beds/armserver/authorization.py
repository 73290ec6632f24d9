"""Microsoft.Authorization at any scope: role definitions and role assignments."""
from __future__ import annotations

import copy
import time
import uuid
from typing import Any

from aiohttp import web

from .builtin_roles import BUILTIN_ROLES, BY_GUID
from .context import Ctx, page, parse_filter, read_json
from .errors import ArmError, json_response
from .ids import is_within, norm, subscription_of
from .resources import need_scope
from .state import RA_TYPE, RD_TYPE, builtin_body, utc_now


def _is_guid(text: str) -> bool:
    try:
        uuid.UUID(text)
        return True
    except ValueError:
        return False


def _overlaps(a: str, b: str) -> bool:
    return is_within(a, b) or is_within(b, a)


async def handle(ctx: Ctx, request: web.Request, scope: str, rest: list[str], principal: str | None) -> web.Response:
    """``{scope}/providers/Microsoft.Authorization/{roleDefinitions|roleAssignments}[/{name}]``."""
    kind = rest[0].lower() if rest else ""
    if kind not in ("roledefinitions", "roleassignments") or len(rest) > 2:
        raise ArmError(400, "InvalidResourceType", f"'{'/'.join(rest)}' under Microsoft.Authorization is not "
                       "supported by the ARM test bed.")
    name = rest[1] if len(rest) == 2 else None
    if kind == "roledefinitions":
        return await _role_definitions(ctx, request, scope, name)
    return await _role_assignments(ctx, request, scope, name, principal)


# -- role definitions --------------------------------------------------------------------------

def _definition(ctx: Ctx, guid: str, scope: str) -> dict[str, Any] | None:
    role = BY_GUID.get(guid.lower())
    if role is not None:
        return builtin_body(role, subscription_of(scope))
    body = ctx.state.custom_roles.get(guid.lower())
    return copy.deepcopy(body) if body else None


async def _role_definitions(ctx: Ctx, request: web.Request, scope: str, guid: str | None) -> web.Response:
    if guid is None:
        if request.method != "GET":
            raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on roleDefinitions")
        wanted = parse_filter(request.query.get("$filter"), {"rolename", "type"}, set())
        with ctx.state.lock:
            need_scope(ctx, scope)
            items = [builtin_body(r, subscription_of(scope)) for r in BUILTIN_ROLES]
            items += [copy.deepcopy(b) for b in ctx.state.custom_roles.values()
                      if any(_overlaps(scope, a) for a in b["properties"]["assignableScopes"])]
        for field, value in wanted:
            key = "roleName" if field == "rolename" else "type"
            items = [b for b in items if b["properties"][key].lower() == value.lower()]
        return page(ctx, request, items)
    if request.method == "GET":
        with ctx.state.lock:
            body = _definition(ctx, guid, scope)
        if body is None:
            raise ArmError(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does "
                           "not exist.")
        return json_response(body)
    if request.method == "DELETE":
        return _delete_definition(ctx, guid)
    if request.method != "PUT":
        raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on a role definition")
    payload = await read_json(request)
    with ctx.state.lock:
        need_scope(ctx, scope)
        body, created = _put_definition(ctx, scope, guid, payload)
    return json_response(body, 201)  # ARM answers 201 to every roleDefinitions PUT (create or update)


def _put_definition(ctx: Ctx, scope: str, guid: str, payload: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    if not _is_guid(guid):
        raise ArmError(400, "InvalidRoleDefinitionId", f"The role definition ID '{guid}' is not valid. The role "
                       "definition ID must be a GUID.")
    if guid.lower() in BY_GUID:
        raise ArmError(403, "AuthorizationFailed", f"Built-in role definition '{guid}' cannot be modified.")
    props = payload.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must contain 'properties'.")
    name = props.get("roleName")
    if not isinstance(name, str) or not name.strip() or len(name) > 512:
        raise ArmError(400, "InvalidRoleDefinitionName", "roleName must be a non-empty string of at most 512 "
                       "characters.")
    scopes = props.get("assignableScopes")
    if not isinstance(scopes, list) or not scopes or not all(isinstance(s, str) and s.startswith("/") for s in scopes):
        raise ArmError(400, "InvalidAssignableScopes", "assignableScopes must be a non-empty list of scopes.")
    if any(norm(s) == "/" for s in scopes):
        raise ArmError(400, "InvalidAssignableScopes", "Custom roles cannot have '/' as an assignable scope.")
    for s in scopes:
        need_scope(ctx, s)
    perms = props.get("permissions")
    if not isinstance(perms, list) or not perms or not all(isinstance(p, dict) for p in perms):
        raise ArmError(400, "InvalidPermissions", "permissions must be a non-empty list of permission objects.")
    clean = []
    for p in perms:
        block = {}
        for k in ("actions", "notActions", "dataActions", "notDataActions"):
            v = p.get(k) or []
            if not isinstance(v, list) or not all(isinstance(a, str) and a for a in v):
                raise ArmError(400, "InvalidPermissions", f"permissions.{k} must be a list of action strings.")
            block[k] = list(v)
        clean.append(block)
    if not any(b["actions"] or b["dataActions"] for b in clean):
        raise ArmError(400, "InvalidPermissions", "A role definition needs at least one action or dataAction.")
    for other_guid, other in ctx.state.custom_roles.items():
        if other_guid != guid.lower() and other["properties"]["roleName"].lower() == name.lower():
            raise ArmError(409, "RoleDefinitionWithSameNameExists", "A custom role with the same name already exists "
                           "in this directory. Use a different name.")
    existing = ctx.state.custom_roles.get(guid.lower())
    sub = subscription_of(scope)
    now = utc_now()
    body = {"id": (existing or {}).get("id") or (f"/subscriptions/{sub}" if sub else "") + f"/providers/{RD_TYPE}/{guid}",
            "name": guid, "type": RD_TYPE,
            "properties": {"roleName": name, "type": "CustomRole", "description": props.get("description") or "",
                           "assignableScopes": list(scopes), "permissions": clean,
                           "createdOn": (existing or {}).get("properties", {}).get("createdOn", now), "updatedOn": now}}
    ctx.state.custom_roles[guid.lower()] = body
    return copy.deepcopy(body), existing is None


def _delete_definition(ctx: Ctx, guid: str) -> web.Response:
    with ctx.state.lock:
        if guid.lower() in BY_GUID:
            raise ArmError(403, "AuthorizationFailed", f"Built-in role definition '{guid}' cannot be deleted.")
        body = ctx.state.custom_roles.get(guid.lower())
        if body is None:
            return web.Response(status=204)
        if any(_guid_of(a["properties"]["roleDefinitionId"]) == guid.lower()
               for a in ctx.state.role_assignments.values()):
            raise ArmError(409, "RoleDefinitionHasAssignments", "There are existing role assignments referencing "
                           "role (code: RoleDefinitionHasAssignments).")
        del ctx.state.custom_roles[guid.lower()]
    return json_response(body)


def _guid_of(role_definition_id: str) -> str:
    return role_definition_id.rstrip("/").rsplit("/", 1)[-1].lower()


# -- role assignments --------------------------------------------------------------------------

async def _role_assignments(ctx: Ctx, request: web.Request, scope: str, name: str | None,
                            principal: str | None) -> web.Response:
    if name is None:
        if request.method != "GET":
            raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on roleAssignments")
        return _list_assignments(ctx, request, scope)
    key = norm(f"{scope}/providers/{RA_TYPE}/{name}")
    if request.method == "GET":
        with ctx.state.lock:
            body = ctx.state.role_assignments.get(key)
        if body is None:
            raise ArmError(404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return json_response(copy.deepcopy(body))
    if request.method == "DELETE":
        with ctx.state.lock:
            body = ctx.state.role_assignments.pop(key, None)
        return json_response(body) if body else web.Response(status=204)
    if request.method != "PUT":
        raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on a role assignment")
    payload = await read_json(request)
    with ctx.state.lock:
        need_scope(ctx, scope)
        body, created = _put_assignment(ctx, scope, name, payload, principal)
    return json_response(body, 201 if created else 200)


def _put_assignment(ctx: Ctx, scope: str, name: str, payload: dict[str, Any],
                    caller: str | None) -> tuple[dict[str, Any], bool]:
    if not _is_guid(name):
        raise ArmError(400, "InvalidRoleAssignmentId", f"The role assignment ID '{name}' is not valid. The role "
                       "assignment ID must be a GUID.")
    props = payload.get("properties")
    if not isinstance(props, dict):
        raise ArmError(400, "InvalidRequestContent", "The request content must contain 'properties'.")
    rd_id, principal = props.get("roleDefinitionId"), props.get("principalId")
    if not isinstance(rd_id, str) or not rd_id:
        raise ArmError(400, "InvalidRoleDefinitionId", "properties.roleDefinitionId is required.")
    if not isinstance(principal, str) or not _is_guid(principal):
        raise ArmError(400, "InvalidPrincipalId", f"A valid principal ID must be provided, not '{principal}'.")
    guid = _guid_of(rd_id)
    definition = _definition(ctx, guid, scope)
    if definition is None:
        raise ArmError(400, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{guid}' does not "
                       "exist.")
    if not any(is_within(scope, a) for a in definition["properties"]["assignableScopes"]):
        raise ArmError(403, "AuthorizationFailed", f"The role definition '{guid}' is not assignable at scope "
                       f"'{scope}' (its assignableScopes are {definition['properties']['assignableScopes']}).")
    born = ctx.state.principal_born.get(principal.lower())
    skip_lookup = ctx.faults.principal_type_skips_lookup and props.get("principalType") == "ServicePrincipal"
    if born is not None and not skip_lookup and time.monotonic() - born < ctx.faults.principal_not_found_seconds:
        raise ArmError(400, "PrincipalNotFound", f"Principal {principal.replace('-', '')} does not exist in the "
                       f"directory {ctx.state.tenant_id}. Check that you have the correct principal ID. If you are "
                       "creating this principal and then immediately assigning a role, this error might be related "
                       "to a replication delay. In this case, set the role assignment principalType property to a "
                       "value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype")
    key = norm(f"{scope}/providers/{RA_TYPE}/{name}")
    existing = ctx.state.role_assignments.get(key)
    if existing is not None:
        p = existing["properties"]
        if p["principalId"].lower() != principal.lower() or _guid_of(p["roleDefinitionId"]) != guid:
            raise ArmError(400, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and "
                           "scope are not allowed to be updated.")
        return copy.deepcopy(existing), False
    for other in ctx.state.role_assignments.values():
        p = other["properties"]
        if (norm(p["scope"]) == norm(scope) and p["principalId"].lower() == principal.lower()
                and _guid_of(p["roleDefinitionId"]) == guid):
            raise ArmError(409, "RoleAssignmentExists", "The role assignment already exists.")
    now = utc_now()
    principal_type = props.get("principalType") or (
        "ServicePrincipal" if ctx.state.identity_by_principal(principal) else "User")
    body = {"id": f"{scope.rstrip('/')}/providers/{RA_TYPE}/{name}", "name": name, "type": RA_TYPE,
            "properties": {"roleDefinitionId": rd_id, "principalId": principal, "principalType": principal_type,
                           "scope": scope.rstrip("/") or "/", "condition": props.get("condition"),
                           "conditionVersion": props.get("conditionVersion"),
                           "description": props.get("description"), "createdOn": now, "updatedOn": now,
                           "createdBy": caller, "updatedBy": caller, "delegatedManagedIdentityResourceId": None}}
    ctx.state.role_assignments[key] = body
    return copy.deepcopy(body), True


def _list_assignments(ctx: Ctx, request: web.Request, scope: str) -> web.Response:
    wanted = parse_filter(request.query.get("$filter"), {"principalid"}, {"atscope()", "assignedto()"})
    at_scope = any(f == "atscope()" for f, _ in wanted)
    principals = {v.lower() for f, v in wanted if f in ("principalid", "assignedto()")}
    with ctx.state.lock:
        need_scope(ctx, scope)
        items = []
        for body in ctx.state.role_assignments.values():
            p = body["properties"]
            above = is_within(scope, p["scope"])
            if not (above or (not at_scope and is_within(p["scope"], scope))):
                continue
            if principals and p["principalId"].lower() not in principals:
                continue
            items.append(copy.deepcopy(body))
    return page(ctx, request, sorted(items, key=lambda b: b["id"].lower()))
