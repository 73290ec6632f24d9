"""The stateful Kubernetes API: kmock's handler with the gaps of its ``KubernetesEmulator`` closed.

kmock 0.8 gives the HTTP plumbing, request recording and the reaction DSL (tests may still add
reactions such as ``handler['get /api/v1/pods'] << 500`` to inject faults). Its emulator's state
handling is replaced here: server-set metadata, 201/404/409/422 Status bodies, PUT, all PATCH types,
server-side apply, status subresources, selectors, watch resourceVersion/timeoutSeconds, finalizers,
CRD registration and discovery, TokenReview, and parsing of ``/api/v1/namespaces`` paths.
"""
from __future__ import annotations

import asyncio
import copy
import datetime
import json
import re
import secrets
import string
import traceback
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import enums, references, rendering

from . import discovery
from .applying import ApplyConflict, record_update, server_side_apply
from .catalog import Catalog, ResourceKind
from .errors import (ApiError, already_exists, bad_request, conflict, gone, invalid, method_not_allowed,
                     no_such_path, not_found, unsupported_media)
from .patching import PatchError, json_patch, merge_patch, strategic_merge_patch
from .paths import ApiPath, parse_path
from .selection import field_matcher, label_matcher
from .store import Change, ObjectKey, Store
from .tokens import TokenTable

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
Matcher = Callable[[dict[str, Any]], bool]


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _spec_part(obj: dict[str, Any], kind: ResourceKind) -> dict[str, Any]:
    """What ``metadata.generation`` tracks: everything but metadata (and status, with a status subresource)."""
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if kind.status_subresource else set())
    return {k: v for k, v in obj.items() if k not in skip}


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in ("resourceVersion", "managedFields")}
    return {**obj, "metadata": meta}


@attrs.define(kw_only=True)
class KubeEmulator(kmock.KubernetesScaffold):
    """A kmock handler that behaves like kube-apiserver for the kinds in its :class:`Catalog`."""

    catalog: Catalog = attrs.field(factory=Catalog)
    tokens: TokenTable = attrs.field(factory=TokenTable)
    address: str = "127.0.0.1:0"
    _store: Store | None = attrs.field(default=None, init=False)
    _stopping: bool = attrs.field(default=False, init=False)

    def __attrs_post_init__(self) -> None:
        # Deliberately none of the scaffold's fallbacks: _handle() serves whatever no reaction catches.
        pass

    @property
    def store(self) -> Store:
        """Created lazily so that its asyncio primitives belong to the serving loop."""
        if self._store is None:
            self._store = Store()
            for name in DEFAULT_NAMESPACES:
                self.create_object(self.catalog.find("", "v1", "namespaces"), "v1", None,  # type: ignore[arg-type]
                                   {"metadata": {"name": name}}, manager="kube-apiserver")
        return self._store

    def stop_watches(self) -> None:
        self._stopping = True
        self.store.wake_all()

    # --- kmock plumbing -------------------------------------------------------------------------

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        """As kmock's ``RawHandler.__call__``, but with a path parser that knows namespaces and subresources."""
        raw_response: aiohttp.web.StreamResponse | None = None
        try:
            body = await raw_request.read()
            request = self._parse(raw_request, body)
            self._requests.append(request)
            try:
                return await self._handle(request)
            except rendering.StreamingError as e:
                raw_response = e.args[0]
                raise e.__cause__ or e
        except Exception as e:
            if raw_response is None or not raw_response.prepared:
                return await self._render_error(e)
            await self._stream_error(e, raw_response)
            await raw_response.write_eof()
            return raw_response

    def _parse(self, raw: aiohttp.web.BaseRequest, body: bytes) -> rendering.Request:
        path = parse_path(raw.path, self.catalog)
        method = enums.method(raw.method)
        action = None
        if path.target in ("collection", "object"):
            if method == enums.method.GET and raw.query.get("watch") in ("true", "1"):
                action = enums.action.WATCH
            elif path.target == "collection":
                action = {"GET": enums.action.LIST, "POST": enums.action.CREATE}.get(raw.method)
            else:
                action = {"GET": enums.action.FETCH, "PATCH": enums.action.UPDATE,
                          "DELETE": enums.action.DELETE}.get(raw.method)
        resource = None
        if path.group is not None and path.version is not None:
            resource = references.resource(group=path.group, version=path.version, plural=path.plural)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        return rendering.Request(
            id=len(self._requests), raw_request=raw, url=raw.url, method=raw.method,
            params=dict(raw.query), headers=dict(raw.headers), cookies=dict(raw.cookies),
            body=body, text=body.decode("utf-8", "replace"), data=data, action=action, resource=resource,
            namespace=path.namespace, name=path.name, subresource=path.subresource)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        """Reactions a test added (fault injection) win; everything else is served from the state."""
        if self._payloads:
            try:
                return await super()._handle(request)
            except NotImplementedError:
                pass
        # Not through kmock's Response: it keeps the status of one reply for the next ones.
        result = await self._serve(request)
        status, payload = result if isinstance(result, tuple) else (200, result)
        if isinstance(payload, dict):
            return aiohttp.web.json_response(payload, status=status)
        assert request._raw_request is not None
        return await self._stream(request._raw_request, payload)

    async def _stream(self, raw: aiohttp.web.BaseRequest,
                      events: AsyncIterator[dict[str, Any]]) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        try:
            first = await anext(events, None)  # errors in the parameters still get a plain error reply
            await response.prepare(raw)
            first = await anext(events, None)
            while first is not None:
                await response.write(json.dumps(first).encode() + b"\n")
                first = await anext(events, None)
            await response.write_eof()
        except ApiError as e:
            if not response.prepared:
                raise
            await response.write(json.dumps({"type": "ERROR", "object": e.status_body()}).encode() + b"\n")
        except ConnectionError:
            pass  # the client went away
        finally:
            await events.aclose()  # type: ignore[attr-defined]
        return response

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if not isinstance(exc, ApiError):
            exc = ApiError(500, "InternalError", f"{type(exc).__name__}: {exc}",
                           {"causes": [{"message": line} for line in traceback.format_exception(exc)[-3:]]})
        return aiohttp.web.json_response(exc.status_body(), status=exc.status)

    async def _stream_error(self, exc: Exception, raw_response: aiohttp.web.StreamResponse) -> None:
        if not isinstance(exc, ApiError):
            exc = ApiError(500, "InternalError", f"{type(exc).__name__}: {exc}")
        await raw_response.write(json.dumps({"type": "ERROR", "object": exc.status_body()}).encode() + b"\n")

    # --- routing --------------------------------------------------------------------------------

    async def _serve(self, request: rendering.Request) -> Any:
        path = parse_path(request.url.path, self.catalog)
        method = request.method.value
        if path.target in ("root", "version", "api", "apis", "group", "discovery"):
            if method != "GET":
                raise method_not_allowed(method, request.url.path)
            match path.target:
                case "root":
                    return discovery.root_paths(self.catalog)
                case "version":
                    return discovery.server_version()
                case "api":
                    return discovery.api_versions(self.address)
                case "apis":
                    return discovery.api_groups(self.catalog)
                case "group":
                    return discovery.api_group(self.catalog, str(path.group))
                case _:
                    return discovery.api_resources(self.catalog, str(path.group), str(path.version))
        if path.target == "unknown":
            raise no_such_path(request.url.path)
        kind = self.catalog.find(str(path.group), str(path.version), str(path.plural))
        if kind is None or (path.namespace is not None and not kind.namespaced):
            raise no_such_path(request.url.path)
        if path.subresource is not None and path.subresource not in kind.subresources():
            raise no_such_path(request.url.path)
        if kind.plural == "tokenreviews" and kind.group == "authentication.k8s.io":
            if method != "POST" or path.target != "collection":
                raise method_not_allowed(method, request.url.path)
            return 201, self._review_token(request)
        version = str(path.version)
        if path.target == "collection":
            match method:
                case "GET" if request.params.get("watch") in ("true", "1"):
                    return 200, self._watch(request, kind, version, path)
                case "GET":
                    return self._list(request, kind, version, path.namespace)
                case "POST":
                    if kind.namespaced and path.namespace is None:
                        raise no_such_path(request.url.path)
                    body = self._body_object(request)
                    obj = self.create_object(kind, version, path.namespace, body, manager=self._manager(request),
                                             dry_run="dryRun" in request.params)
                    return 201, obj
                case "DELETE":
                    return self._delete_collection(request, kind, version, path.namespace)
            raise method_not_allowed(method, request.url.path)
        if kind.namespaced and path.namespace is None:
            raise no_such_path(request.url.path)
        key: ObjectKey = (kind.storage_key, path.namespace, str(path.name))
        match method:
            case "GET":
                return self._out(self._existing(kind, key), kind, version)
            case "PUT":
                return self._replace(request, kind, version, key, path.subresource or "")
            case "PATCH":
                return self._patch(request, kind, version, key, path.subresource or "")
            case "DELETE":
                return self._delete(request, kind, version, key)
        raise method_not_allowed(method, request.url.path)

    # --- helpers --------------------------------------------------------------------------------

    @staticmethod
    def _manager(request: rendering.Request) -> str:
        if request.params.get("fieldManager"):
            return request.params["fieldManager"]
        agent = request.headers.get("User-Agent", "unknown")
        return agent.split("/")[0] or "unknown"

    @staticmethod
    def _body_object(request: rendering.Request) -> dict[str, Any]:
        if not request.body:
            raise bad_request("the request body is empty; an object was expected")
        try:
            data = json.loads(request.body)
        except ValueError as e:
            raise bad_request(f"the request body is not valid JSON: {e}") from None
        if not isinstance(data, dict):
            raise bad_request(f"the request body must be a JSON object, not {type(data).__name__}")
        if "metadata" in data and not isinstance(data["metadata"], dict):
            raise bad_request("metadata must be an object")
        return data

    def _existing(self, kind: ResourceKind, key: ObjectKey) -> dict[str, Any]:
        obj = self.store.get(key)
        if obj is None:
            raise not_found(kind.plural, kind.group, key[2])
        return obj

    @staticmethod
    def _out(obj: dict[str, Any], kind: ResourceKind, version: str) -> dict[str, Any]:
        result = copy.deepcopy(obj)
        result["apiVersion"] = kind.api_version(version)
        result["kind"] = kind.kind
        return result

    def _check_type(self, body: dict[str, Any], kind: ResourceKind, version: str) -> None:
        api_version, kind_name = body.get("apiVersion"), body.get("kind")
        if api_version is not None and api_version != kind.api_version(version):
            if self.catalog.by_kind(str(api_version), str(kind_name)) is not kind:
                raise bad_request(f"the API version in the data ({api_version}) does not match the expected "
                                  f"API version ({kind.api_version(version)})")
        if kind_name is not None and kind_name != kind.kind:
            raise bad_request(f"the kind in the data ({kind_name}) does not match the expected kind ({kind.kind})")

    # --- writes ---------------------------------------------------------------------------------

    def create_object(self, kind: ResourceKind, version: str, namespace: str | None, body: dict[str, Any], *,
                      manager: str, keep_status: bool = False, dry_run: bool = False,
                      owners_done: bool = False) -> dict[str, Any]:
        """Validate and store a new object; returns it as the API shows it. Raises :class:`ApiError`."""
        self._check_type(body, kind, version)
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        name = meta.get("name")
        if not name:
            prefix = meta.get("generateName")
            if not prefix or not isinstance(prefix, str):
                raise invalid(kind.plural, kind.group, None, "metadata.name: Required value: name or generateName "
                                                             "is required")
            name = prefix + "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(5))
        pattern = _LABEL_RE if kind.plural == "namespaces" else _NAME_RE
        if not isinstance(name, str) or len(name) > 253 or not pattern.match(name):
            raise invalid(kind.plural, kind.group, str(name), f"metadata.name: Invalid value: {name!r}: must "
                                                              f"consist of lower case alphanumeric characters, "
                                                              f"'-' or '.'")
        if kind.namespaced:
            body_ns = meta.get("namespace")
            if namespace is None:
                namespace = body_ns
            if not namespace:
                raise bad_request("a namespace is required for namespaced resources")
            if body_ns and body_ns != namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent "
                                  "on the request")
            if self.store.get((("", "namespaces"), None, namespace)) is None:
                raise not_found("namespaces", "", namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
            namespace = None
        self._check_labels(meta, kind, name)
        key: ObjectKey = (kind.storage_key, namespace, name)
        if self.store.get(key) is not None:
            raise already_exists(kind.plural, kind.group, name)
        if kind.status_subresource and not keep_status:
            obj.pop("status", None)
        meta.update(name=name, uid=str(uuid.uuid4()), creationTimestamp=now_rfc3339(), generation=1)
        for server_field in ("deletionTimestamp", "deletionGracePeriodSeconds", "selfLink"):
            meta.pop(server_field, None)
        obj["apiVersion"], obj["kind"] = kind.api_version(version), kind.kind
        self._defaults(kind, obj)
        if kind.plural == "customresourcedefinitions":
            registered = self.catalog.register_crd(obj) if not dry_run else None
            if registered is not None:
                obj["status"] = self._crd_status(obj)
        if dry_run:
            return obj
        if not owners_done:
            record_update(None, obj, manager, "", obj["apiVersion"])
        meta["resourceVersion"] = str(self.store.next_rv())
        self.store.put(key, obj, "ADDED")
        return self._out(obj, kind, version)

    @staticmethod
    def _check_labels(meta: dict[str, Any], kind: ResourceKind, name: str) -> None:
        for field in ("labels", "annotations"):
            value = meta.get(field)
            if value is not None and (not isinstance(value, dict)
                                      or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())):
                raise invalid(kind.plural, kind.group, name, f"metadata.{field}: Invalid value: must be a map of "
                                                             f"strings to strings")
        finalizers = meta.get("finalizers")
        if finalizers is not None and (not isinstance(finalizers, list)
                                       or not all(isinstance(f, str) for f in finalizers)):
            raise invalid(kind.plural, kind.group, name, "metadata.finalizers: Invalid value: must be a list of "
                                                         "strings")

    @staticmethod
    def _defaults(kind: ResourceKind, obj: dict[str, Any]) -> None:
        if kind.group == "" and kind.plural == "pods":
            spec = obj.setdefault("spec", {})
            if isinstance(spec, dict):
                spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif kind.group == "" and kind.plural == "namespaces":
            obj.setdefault("status", {}).setdefault("phase", "Active")

    @staticmethod
    def _crd_status(crd: dict[str, Any]) -> dict[str, Any]:
        now = now_rfc3339()
        spec = crd["spec"]
        return {
            "acceptedNames": spec["names"],
            "conditions": [
                {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts", "lastTransitionTime": now,
                 "message": "no conflicts found"},
                {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                 "lastTransitionTime": now, "message": "the initial names have been accepted"},
            ],
            "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
        }

    def commit_update(self, kind: ResourceKind, key: ObjectKey, new: dict[str, Any], *, subresource: str,
                      manager: str | None, version: str) -> dict[str, Any]:
        """Store a changed object: server fields kept, status split by subresource, generation, finalizers."""
        old = self._existing(kind, key)
        new = copy.deepcopy(new)
        if not isinstance(new.get("metadata"), dict):
            raise bad_request("metadata must be an object")
        if subresource == "status":
            status = new.get("status")
            managed = new["metadata"].get("managedFields")
            new = copy.deepcopy(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if manager is None and managed is not None:
                new["metadata"]["managedFields"] = managed
        elif kind.status_subresource:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta, old_meta = new["metadata"], old["metadata"]
        if meta.get("name", key[2]) != key[2] or (key[1] is not None and meta.get("namespace", key[1]) != key[1]):
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                              f"({key[2]})")
        self._check_labels(meta, kind, key[2])
        for server_field in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "generation", "resourceVersion"):
            if server_field in old_meta:
                meta[server_field] = old_meta[server_field]
            else:
                meta.pop(server_field, None)
        new["apiVersion"], new["kind"] = old["apiVersion"], old["kind"]
        if old_meta.get("deletionTimestamp"):
            added = set(meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise invalid(kind.plural, kind.group, key[2], "metadata.finalizers: Forbidden: no new finalizers "
                                                               "can be added if the object is being deleted")
        if _comparable(new) == _comparable(old):
            return self._out(old, kind, version)
        if _spec_part(new, kind) != _spec_part(old, kind):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        if kind.plural == "customresourcedefinitions" and not old_meta.get("deletionTimestamp"):
            self.catalog.register_crd(new)
        if manager is not None:
            record_update(old, new, manager, subresource, new["apiVersion"])
        meta["resourceVersion"] = str(self.store.next_rv())
        self.store.put(key, new, "MODIFIED")
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._out(self._finish_delete(kind, key), kind, version)
        return self._out(new, kind, version)

    def _replace(self, request: rendering.Request, kind: ResourceKind, version: str, key: ObjectKey,
                 subresource: str) -> dict[str, Any]:
        body = self._body_object(request)
        self._check_type(body, kind, version)
        old = self._existing(kind, key)
        meta = body.get("metadata") or {}
        if meta.get("name") != key[2]:
            raise bad_request(f"the name of the object ({meta.get('name')}) does not match the name on the URL "
                              f"({key[2]})")
        rv = meta.get("resourceVersion")
        if rv and rv != old["metadata"]["resourceVersion"]:
            raise conflict(kind.plural, kind.group, key[2], "the object has been modified; please apply your "
                                                            "changes to the latest version and try again")
        return self.commit_update(kind, key, body, subresource=subresource, manager=self._manager(request),
                                  version=version)

    def _patch(self, request: rendering.Request, kind: ResourceKind, version: str, key: ObjectKey,
               subresource: str) -> Any:
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        allowed = [JSON_PATCH, MERGE, APPLY] + ([] if kind.from_crd else [STRATEGIC])
        if content_type not in allowed:
            raise unsupported_media(content_type, allowed)
        if content_type == APPLY:
            return self._apply(request, kind, version, key, subresource)
        try:
            patch = json.loads(request.body) if request.body else None
        except ValueError as e:
            raise bad_request(f"the patch is not valid JSON: {e}") from None
        current = self._out(self._existing(kind, key), kind, version)
        try:
            if content_type == JSON_PATCH:
                patched = json_patch(current, patch)
            elif not isinstance(patch, dict):
                raise bad_request(f"a {content_type} patch must be a JSON object")
            elif content_type == MERGE:
                patched = merge_patch(current, patch)
            else:
                patched = strategic_merge_patch(current, patch)
        except PatchError as e:
            raise invalid(kind.plural, kind.group, key[2], str(e)) from None
        if not isinstance(patched, dict):
            raise invalid(kind.plural, kind.group, key[2], "the patched document is not an object")
        rv = (patched.get("metadata") or {}).get("resourceVersion")
        if rv and rv != current["metadata"]["resourceVersion"]:
            raise conflict(kind.plural, kind.group, key[2], "the object has been modified; please apply your "
                                                            "changes to the latest version and try again")
        return self.commit_update(kind, key, patched, subresource=subresource, manager=self._manager(request),
                                  version=version)

    def _apply(self, request: rendering.Request, kind: ResourceKind, version: str, key: ObjectKey,
               subresource: str) -> Any:
        manager = request.params.get("fieldManager")
        if not manager:
            raise bad_request("PATCH, application/apply-patch+yaml: fieldManager is required for apply requests")
        force = request.params.get("force") in ("true", "1")
        try:
            config = yaml.safe_load(request.body) if request.body else None
        except yaml.YAMLError as e:
            raise bad_request(f"error decoding YAML: {e}") from None
        if not isinstance(config, dict):
            raise bad_request("an applied configuration must be a YAML or JSON object")
        if not config.get("apiVersion") or not config.get("kind"):
            raise bad_request("apiVersion and kind must be set in an applied configuration")
        self._check_type(config, kind, version)
        meta = config.get("metadata")
        if not isinstance(meta, dict) or meta.get("name", key[2]) != key[2]:
            raise bad_request(f"metadata.name in the applied configuration must be {key[2]!r}")
        current = self.store.get(key)
        api_version = kind.api_version(version)
        if current is None:
            if subresource:
                raise not_found(kind.plural, kind.group, key[2])
            applied = server_side_apply(None, config, manager, force, "", api_version)
            applied.setdefault("metadata", {})["name"] = key[2]
            obj = self.create_object(kind, version, key[1], applied, manager=manager, owners_done=True,
                                     dry_run="dryRun" in request.params)
            return 201, obj
        try:
            new = server_side_apply(self._out(current, kind, version), config, manager, force, subresource,
                                    api_version)
        except ApplyConflict as e:
            raise conflict(kind.plural, kind.group, key[2], str(e)) from None
        return self.commit_update(kind, key, new, subresource=subresource, manager=None, version=version)

    def delete_object(self, kind: ResourceKind, version: str, key: ObjectKey,
                      preconditions: dict[str, Any] | None = None) -> dict[str, Any]:
        """Delete now, or mark for deletion while finalizers remain (MODIFIED, then DELETED when released)."""
        old = self._existing(kind, key)
        meta = old["metadata"]
        for field, have in (("uid", meta.get("uid")), ("resourceVersion", meta.get("resourceVersion"))):
            wanted = (preconditions or {}).get(field)
            if wanted and wanted != have:
                raise conflict(kind.plural, kind.group, key[2], f"Precondition failed: {field} in precondition: "
                                                                f"{wanted}, {field} in object meta: {have}")
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return self._out(old, kind, version)
            new = copy.deepcopy(old)
            new["metadata"].update(deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0,
                                   resourceVersion=str(self.store.next_rv()))
            self.store.put(key, new, "MODIFIED")
            return self._out(new, kind, version)
        return self._out(self._finish_delete(kind, key), kind, version)

    def _finish_delete(self, kind: ResourceKind, key: ObjectKey) -> dict[str, Any]:
        removed = self.store.remove(key)
        if kind.plural == "customresourcedefinitions":
            gone_kind = self.catalog.unregister_crd(removed)
            if gone_kind is not None:
                for obj in self.store.items(gone_kind.storage_key):
                    meta = obj["metadata"]
                    self.store.remove((gone_kind.storage_key, meta.get("namespace"), meta["name"]))
        elif kind.group == "" and kind.plural == "namespaces":
            for other in self.catalog.kinds():
                if other.namespaced:
                    for obj in self.store.items(other.storage_key, key[2]):
                        self.delete_object(other, other.versions[0], (other.storage_key, key[2],
                                                                      obj["metadata"]["name"]))
        return removed

    def _delete(self, request: rendering.Request, kind: ResourceKind, version: str,
                key: ObjectKey) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if request.body:
            options = self._body_object(request)
        if "dryRun" in request.params or options.get("dryRun"):
            return self._out(self._existing(kind, key), kind, version)
        return self.delete_object(kind, version, key, options.get("preconditions"))

    def _delete_collection(self, request: rendering.Request, kind: ResourceKind, version: str,
                           namespace: str | None) -> dict[str, Any]:
        if kind.namespaced and namespace is None:
            raise method_not_allowed("DELETE", request.url.path)
        items = [self.delete_object(kind, version, (kind.storage_key, o["metadata"].get("namespace"),
                                                    o["metadata"]["name"]))
                 for o in self._select(request, kind, namespace)]
        return {"apiVersion": kind.api_version(version), "kind": f"{kind.kind}List",
                "metadata": {"resourceVersion": str(self.store.resource_version)}, "items": items}

    # --- reads ----------------------------------------------------------------------------------

    def _matchers(self, request: rendering.Request, kind: ResourceKind) -> Matcher:
        labels = label_matcher(request.params.get("labelSelector", ""))
        fields = field_matcher(request.params.get("fieldSelector", ""), kind.field_labels, kind.kind)
        return lambda obj: labels(obj) and fields(obj)

    def _select(self, request: rendering.Request, kind: ResourceKind, namespace: str | None) -> list[dict[str, Any]]:
        matches = self._matchers(request, kind)
        objs = [o for o in self.store.items(kind.storage_key, namespace) if matches(o)]
        return sorted(objs, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    def list_objects(self, kind: ResourceKind, version: str, namespace: str | None,
                     matches: Matcher = lambda _: True) -> list[dict[str, Any]]:
        objs = [self._out(o, kind, version) for o in self.store.items(kind.storage_key, namespace) if matches(o)]
        return sorted(objs, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    def _list(self, request: rendering.Request, kind: ResourceKind, version: str,
              namespace: str | None) -> dict[str, Any]:
        items = [self._out(o, kind, version) for o in self._select(request, kind, namespace)]
        metadata: dict[str, Any] = {"resourceVersion": str(self.store.resource_version)}
        try:
            start = int(request.params.get("continue") or 0)
            limit = int(request.params.get("limit") or 0)
        except ValueError:
            raise bad_request("limit and continue must be integers") from None
        if start < 0 or limit < 0:
            raise bad_request("limit and continue must not be negative")
        if limit:
            if start + limit < len(items):
                metadata.update({"continue": str(start + limit), "remainingItemCount": len(items) - start - limit})
            items = items[start:start + limit]
        return {"apiVersion": kind.api_version(version), "kind": f"{kind.kind}List", "metadata": metadata,
                "items": items}

    async def _watch(self, request: rendering.Request, kind: ResourceKind, version: str,
                     path: ApiPath) -> AsyncIterator[dict[str, Any]]:
        matches = self._matchers(request, kind)
        namespace = path.namespace
        try:
            timeout = float(request.params["timeoutSeconds"]) if request.params.get("timeoutSeconds") else None
            since_text = request.params.get("resourceVersion") or "0"
            since = int(since_text)
        except ValueError:
            raise bad_request("timeoutSeconds and resourceVersion must be numbers") from None
        bookmarks = request.params.get("allowWatchBookmarks") in ("true", "1")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout is not None else None
        store = self.store
        yield {"type": "_START"}  # a marker; the client sees headers before the first event
        if since == 0:
            last = store.resource_version
            for obj in self._select(request, kind, namespace):
                yield {"type": "ADDED", "object": self._out(obj, kind, version)}
        elif since < store.oldest_rv:
            yield {"type": "ERROR", "object": gone(f"too old resource version: {since} ({store.oldest_rv})")
                   .status_body()}
            return
        else:
            last = since
        transport = request._raw_request.transport if request._raw_request is not None else None
        while not self._stopping and (transport is None or not transport.is_closing()):
            for change in store.changes_since(last):
                last = change.rv
                event = self._translate(change, kind, version, namespace, matches)
                if event is not None:
                    yield event
            remaining = deadline - loop.time() if deadline is not None else 1.0
            if remaining <= 0:
                break
            await store.wait_for_change(last, min(remaining, 1.0))
        if bookmarks and not self._stopping:
            yield {"type": "BOOKMARK", "object": {"apiVersion": kind.api_version(version), "kind": kind.kind,
                                                  "metadata": {"resourceVersion": str(last)}}}

    def _translate(self, change: Change, kind: ResourceKind, version: str, namespace: str | None,
                   matches: Matcher) -> dict[str, Any] | None:
        if change.resource != kind.storage_key:
            return None
        if namespace is not None and change.obj["metadata"].get("namespace") != namespace:
            return None
        now, before = matches(change.obj), change.old is not None and matches(change.old)
        event = change.type
        if event == "MODIFIED":
            event = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else ""
        elif not now:
            event = ""
        return {"type": event, "object": self._out(change.obj, kind, version)} if event else None

    # --- TokenReview ----------------------------------------------------------------------------

    def _review_token(self, request: rendering.Request) -> dict[str, Any]:
        body = self._body_object(request)
        spec = body.get("spec")
        if not isinstance(spec, dict) or not isinstance(spec.get("token"), str) or not spec["token"]:
            raise invalid("tokenreviews", "authentication.k8s.io", None, "spec.token: Required value")
        audiences = spec.get("audiences") or []
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise invalid("tokenreviews", "authentication.k8s.io", None, "spec.audiences: must be strings")
        status = self.tokens.review(spec["token"], audiences)
        return {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                "metadata": {"creationTimestamp": None}, "spec": spec, "status": status}
