"""Key Vault control plane: vault GET/list (generic) and ``accessPolicies/{add|replace|remove}``."""
from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from .context import Ctx, read_json
from .errors import ArmError, json_response, not_found
from .ids import ResourcePath, norm
from .resources import check_api_version, generic_resource, need_resource_group
from .state import VAULT_TYPE

PERMISSION_KINDS = ("keys", "secrets", "certificates", "storage")


async def handle(ctx: Ctx, request: web.Request, path: ResourcePath) -> web.Response:
    """Dispatch ``Microsoft.KeyVault`` paths."""
    parts = [p.lower() for p in path.parts]
    if len(parts) == 4 and parts[0] == "vaults" and parts[2] == "accesspolicies":
        return await _access_policy(ctx, request, path)
    return generic_resource(ctx, request, path)


async def _access_policy(ctx: Ctx, request: web.Request, path: ResourcePath) -> web.Response:
    check_api_version(path, request.query.get("api-version", ""))
    if request.method != "PUT":
        raise ArmError(405, "MethodNotSupportedByTestBed", f"{request.method} on accessPolicies")
    kind = path.parts[3].lower()
    if kind not in ("add", "replace", "remove"):
        raise ArmError(400, "InvalidAccessPolicyOperation", f"The access policy operation '{path.parts[3]}' is "
                       "invalid; use add, replace or remove.")
    payload = await read_json(request)
    entries = (payload.get("properties") or {}).get("accessPolicies")
    if not isinstance(entries, list) or not entries:
        raise ArmError(400, "BadRequest", "properties.accessPolicies must be a non-empty list.")
    clean = [_clean_entry(e) for e in entries]
    vault_path = path.parent()
    assert vault_path is not None
    vault_id = vault_path.id
    with ctx.state.lock:
        need_resource_group(ctx, path.subscription, path.resource_group or "")
        vault = ctx.state.resources.get(norm(vault_id))
        if vault is None or vault["type"] != VAULT_TYPE:
            raise not_found(VAULT_TYPE, path.parts[1], path.resource_group)
        policies: list[dict[str, Any]] = vault["properties"]["accessPolicies"]
        for entry in clean:
            _apply(policies, entry, kind)
    return json_response({"id": path.id, "name": kind, "type": f"{VAULT_TYPE}/accessPolicies",
                          "properties": {"accessPolicies": copy.deepcopy(clean)}})


def _clean_entry(entry: Any) -> dict[str, Any]:
    if not isinstance(entry, dict) or not entry.get("tenantId") or not entry.get("objectId"):
        raise ArmError(400, "BadRequest", "Each access policy entry needs tenantId and objectId.")
    perms = entry.get("permissions")
    if not isinstance(perms, dict):
        raise ArmError(400, "BadRequest", "Each access policy entry needs a permissions object.")
    out_perms: dict[str, list[str]] = {}
    for k in PERMISSION_KINDS:
        v = perms.get(k) or []
        if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
            raise ArmError(400, "BadRequest", f"permissions.{k} must be a list of strings.")
        out_perms[k] = [x.lower() for x in v]
    out = {"tenantId": entry["tenantId"], "objectId": entry["objectId"], "permissions": out_perms}
    if entry.get("applicationId"):
        out["applicationId"] = entry["applicationId"]
    return out


def _apply(policies: list[dict[str, Any]], entry: dict[str, Any], kind: str) -> None:
    """add: merge permissions; replace: set them; remove: subtract them (entry dropped when empty)."""
    def same(p: dict[str, Any]) -> bool:
        return (p["tenantId"].lower() == entry["tenantId"].lower() and p["objectId"].lower() == entry["objectId"].lower()
                and (p.get("applicationId") or "").lower() == (entry.get("applicationId") or "").lower())
    current = next((p for p in policies if same(p)), None)
    if current is None:
        if kind != "remove":
            policies.append(copy.deepcopy(entry))
        return
    for k in PERMISSION_KINDS:
        have = [x.lower() for x in current["permissions"].get(k, [])]
        given = entry["permissions"][k]
        if kind == "add":
            current["permissions"][k] = have + [x for x in given if x not in have]
        elif kind == "replace":
            current["permissions"][k] = list(given)
        else:
            current["permissions"][k] = [x for x in have if x not in given]
    if kind == "remove" and not any(current["permissions"][k] for k in PERMISSION_KINDS):
        policies.remove(current)
