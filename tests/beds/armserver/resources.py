"""Subscriptions, resource groups, resource providers and generic resources (GET by id, lists)."""
from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from .context import Ctx, page, parse_filter, read_json
from .errors import ArmError, json_response, not_found
from .ids import ResourcePath, norm

_STORAGE = ["2021-09-01", "2022-05-01", "2022-09-01", "2023-01-01", "2023-04-01", "2023-05-01", "2024-01-01",
            "2025-01-01", "2025-06-01"]
_MSI = ["2015-08-31-preview", "2018-11-30", "2021-09-30-preview", "2022-01-31-preview", "2023-01-31",
        "2023-07-31-preview", "2024-11-30", "2025-01-31-preview"]
_KV = ["2019-09-01", "2021-10-01", "2022-07-01", "2022-11-01", "2023-02-01", "2023-07-01", "2024-11-01",
       "2025-05-01"]
_AKS = ["2023-08-01", "2023-10-01", "2024-01-01", "2024-02-01", "2024-05-01", "2024-07-01", "2024-08-01",
        "2024-09-01", "2024-10-01", "2025-01-01", "2025-02-01", "2025-03-01", "2025-04-01", "2025-05-01",
        "2025-07-01", "2025-08-01"]
PROVIDERS: dict[str, dict[str, list[str]]] = {
    "Microsoft.Storage": {t: _STORAGE for t in (
        "storageAccounts", "storageAccounts/blobServices", "storageAccounts/blobServices/containers",
        "storageAccounts/queueServices", "storageAccounts/queueServices/queues", "storageAccounts/tableServices",
        "storageAccounts/tableServices/tables", "storageAccounts/fileServices",
        "storageAccounts/fileServices/shares")},
    "Microsoft.ManagedIdentity": {t: _MSI for t in (
        "userAssignedIdentities", "userAssignedIdentities/federatedIdentityCredentials")},
    "Microsoft.KeyVault": {t: _KV for t in ("vaults", "vaults/accessPolicies", "vaults/secrets")},
    "Microsoft.ContainerService": {"managedClusters": _AKS},
    "Microsoft.Authorization": {t: ["2018-01-01-preview", "2020-10-01", "2022-04-01", "2022-05-01-preview"]
                                for t in ("roleAssignments", "roleDefinitions")},
}
_PROVIDERS_LOWER = {ns.lower(): ns for ns in PROVIDERS}


def need_subscription(ctx: Ctx, sub: str) -> None:
    """404 SubscriptionNotFound unless ``sub`` exists."""
    if sub.lower() not in ctx.state.subscriptions:
        raise ArmError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")


def need_resource_group(ctx: Ctx, sub: str, rg: str) -> dict[str, Any]:
    """The resource group body; 404 SubscriptionNotFound / ResourceGroupNotFound."""
    need_subscription(ctx, sub)
    body = ctx.state.resource_groups.get(norm(f"/subscriptions/{sub}/resourceGroups/{rg}"))
    if body is None:
        raise ArmError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
    return body


def need_scope(ctx: Ctx, scope: str) -> None:
    """404 unless the subscription, resource group and resource named by ``scope`` exist."""
    segs = [s for s in scope.split("/") if s]
    if not segs:
        return
    if segs[0].lower() != "subscriptions" or len(segs) < 2:
        raise ArmError(400, "InvalidScope", f"The scope '{scope}' is not valid.")
    need_subscription(ctx, segs[1])
    if len(segs) >= 4 and segs[2].lower() == "resourcegroups":
        need_resource_group(ctx, segs[1], segs[3])
    if "providers" in (s.lower() for s in segs) and not ctx.state.exists(scope):
        raise ArmError(404, "ResourceNotFound", f"The Resource '{scope}' was not found. For more details please "
                       "go to https://aka.ms/ARMResourceNotFoundFix")


def subscriptions(ctx: Ctx, request: web.Request, segs: list[str]) -> web.Response:
    """``GET /subscriptions`` and ``GET /subscriptions/{s}``."""
    if request.method != "GET":
        raise _unsupported(request)
    with ctx.state.lock:
        if len(segs) == 1:
            return page(ctx, request, [copy.deepcopy(s) for s in ctx.state.subscriptions.values()])
        need_subscription(ctx, segs[1])
        return json_response(copy.deepcopy(ctx.state.subscriptions[segs[1].lower()]))


async def resource_groups(ctx: Ctx, request: web.Request, segs: list[str]) -> web.Response:
    """``/subscriptions/{s}/resourcegroups[/{rg}]``: list, GET, HEAD, PUT."""
    sub = segs[1]
    if len(segs) == 3:
        if request.method != "GET":
            raise _unsupported(request)
        with ctx.state.lock:
            need_subscription(ctx, sub)
            rgs = [copy.deepcopy(b) for k, b in ctx.state.resource_groups.items()
                   if k.startswith(norm(f"/subscriptions/{sub}") + "/")]
        return page(ctx, request, rgs)
    rg = segs[3]
    if request.method in ("GET", "HEAD"):
        with ctx.state.lock:
            body = copy.deepcopy(need_resource_group(ctx, sub, rg))
        return json_response(body) if request.method == "GET" else web.Response(status=204)
    if request.method == "PUT":
        payload = await read_json(request)
        if not payload.get("location"):
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        with ctx.state.lock:
            need_subscription(ctx, sub)
            existed = norm(f"/subscriptions/{sub}/resourceGroups/{rg}") in ctx.state.resource_groups
            body = ctx.state.add_resource_group(sub, rg, payload["location"])
        return json_response(body, 200 if existed else 201)
    raise _unsupported(request)


def providers(ctx: Ctx, request: web.Request, segs: list[str]) -> web.Response:
    """``/subscriptions/{s}/providers[/{ns}[/resourceTypes]]``."""
    if request.method != "GET":
        raise _unsupported(request)
    need_subscription(ctx, segs[1])
    if len(segs) == 3:
        return page(ctx, request, [_provider_body(segs[1], ns) for ns in PROVIDERS])
    ns = _PROVIDERS_LOWER.get(segs[3].lower())
    if ns is None:
        raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{segs[3]}' is invalid.")
    body = _provider_body(segs[1], ns)
    return json_response(body) if len(segs) == 4 else json_response({"value": body["resourceTypes"]})


def _provider_body(sub: str, ns: str) -> dict[str, Any]:
    return {"id": f"/subscriptions/{sub}/providers/{ns}", "namespace": ns, "registrationState": "Registered",
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [{"resourceType": t, "locations": ["East US", "West Europe"], "apiVersions":
                               sorted(v, reverse=True), "defaultApiVersion": v[-1], "capabilities": "None"}
                              for t, v in PROVIDERS[ns].items()]}


def check_api_version(path: ResourcePath, api_version: str) -> None:
    """400 NoRegisteredProviderFound when the provider does not serve ``api_version`` for this type."""
    ns = _PROVIDERS_LOWER.get(path.namespace.lower())
    if ns is None:
        return
    rtype = "/".join(path.parts[0::2])
    versions = next((v for t, v in PROVIDERS[ns].items() if t.lower() == rtype.lower()), None)
    if versions is not None and api_version not in versions:
        raise ArmError(400, "NoRegisteredProviderFound",
                       f"No registered resource provider found for location 'eastus' and API version '{api_version}' "
                       f"for type '{rtype}'. The supported api-versions are '{', '.join(versions)}'. The supported "
                       "locations are 'eastus, westeurope'.")


def generic_resource(ctx: Ctx, request: web.Request, path: ResourcePath) -> web.Response:
    """GET of any stored resource by id, or of a collection under a scope."""
    if request.method != "GET":
        raise _unsupported(request)
    check_api_version(path, request.query.get("api-version", ""))
    with ctx.state.lock:
        if path.resource_group:
            need_resource_group(ctx, path.subscription, path.resource_group)
        else:
            need_subscription(ctx, path.subscription)
        parent = path.parent()
        if parent is not None and not ctx.state.exists(parent.id):
            raise ArmError(404, "ParentResourceNotFound", "Can not perform requested operation on nested resource. "
                           f"Parent resource '{'/'.join(parent.parts[1::2])}' not found.")
        if path.is_collection:
            return page(ctx, request, collection(ctx, path))
        body = ctx.state.resources.get(norm(path.id))
        if body is None and ctx.state.exists(path.id):
            body = {"id": path.id, "name": path.name, "type": path.resource_type, "properties": {}}
        if body is None:
            raise not_found("/".join([path.namespace, *path.parts[0::2]]), path.name, path.resource_group)
        return json_response(copy.deepcopy(body))


def collection(ctx: Ctx, path: ResourcePath) -> list[dict[str, Any]]:
    """The resources of the collection ``path`` (a type under a subscription, group or parent)."""
    rtype = path.resource_type.lower()
    scope = path.id.rsplit("/providers/", 1)[0] if len(path.parts) == 1 else path.id.rsplit("/", 1)[0]
    depth = len(path.parts) + 1
    out = []
    for key, body in ctx.state.resources.items():
        if body["type"].lower() != rtype or not key.startswith(norm(scope) + "/"):
            continue
        parsed_parts = key.split("/providers/", 1)[1].split("/")[1:]
        if len(parsed_parts) == depth:
            out.append(copy.deepcopy(body))
    return sorted(out, key=lambda b: b["id"].lower())


def resources_list(ctx: Ctx, request: web.Request, sub: str, rg: str | None) -> web.Response:
    """``GET /subscriptions/{s}[/resourceGroups/{rg}]/resources?$filter=resourceType eq '...'``."""
    if request.method != "GET":
        raise _unsupported(request)
    with ctx.state.lock:
        if rg:
            need_resource_group(ctx, sub, rg)
        else:
            need_subscription(ctx, sub)
        scope = norm(f"/subscriptions/{sub}" + (f"/resourceGroups/{rg}" if rg else ""))
        wanted = dict(parse_filter(request.query.get("$filter"), {"resourcetype", "name"}, set()))
        out = []
        for key, body in ctx.state.resources.items():
            if not key.startswith(scope + "/") or len(key.split("/providers/", 1)[1].split("/")) != 3:
                continue
            if "resourcetype" in wanted and body["type"].lower() != wanted["resourcetype"].lower():
                continue
            if "name" in wanted and body["name"].lower() != wanted["name"].lower():
                continue
            out.append({k: copy.deepcopy(v) for k, v in body.items()
                        if k in {"id", "name", "type", "location", "tags", "kind", "sku"}})
    return page(ctx, request, sorted(out, key=lambda b: b["id"].lower()))


def _unsupported(request: web.Request) -> ArmError:
    return ArmError(405, "MethodNotSupportedByTestBed",
                    f"The ARM test bed does not implement {request.method} {request.path}.")
