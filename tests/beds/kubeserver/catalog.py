"""The resources the server serves: built-in kinds, plus those registered by CRDs at run time."""
from __future__ import annotations

import dataclasses
from typing import Any

from .errors import ApiError

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")
STORED_VERBS = ("create", "delete", "get", "list", "patch", "update")


@dataclasses.dataclass(frozen=True)
class ResourceKind:
    """One servable resource: where it lives in the API and how it behaves."""

    group: str
    versions: tuple[str, ...]
    plural: str
    kind: str
    namespaced: bool
    status_subresource: bool = False
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ALL_VERBS
    from_crd: bool = False
    field_labels: tuple[str, ...] = ()

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are stored once per (group, plural), whatever version a client speaks."""
        return (self.group, self.plural)

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    def subresources(self) -> tuple[str, ...]:
        return ("status",) if self.status_subresource else ()


_POD_FIELDS = ("spec.nodeName", "spec.serviceAccountName", "spec.restartPolicy", "spec.schedulerName",
               "status.phase", "status.podIP", "status.nominatedNodeName")
_EVENT_FIELDS = ("involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
                 "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
                 "reason", "reportingComponent", "source", "type")


def _builtins() -> list[ResourceKind]:
    core, apps, batch = ("v1",), ("v1",), ("v1",)
    return [
        ResourceKind("", core, "namespaces", "Namespace", False, True, ("ns",), field_labels=("status.phase",)),
        ResourceKind("", core, "pods", "Pod", True, True, ("po",), ("all",), field_labels=_POD_FIELDS),
        ResourceKind("", core, "serviceaccounts", "ServiceAccount", True, False, ("sa",)),
        ResourceKind("", core, "events", "Event", True, False, ("ev",), field_labels=_EVENT_FIELDS),
        ResourceKind("", core, "secrets", "Secret", True, False, field_labels=("type",)),
        ResourceKind("", core, "configmaps", "ConfigMap", True, False, ("cm",)),
        ResourceKind("", core, "nodes", "Node", False, True, ("no",)),
        ResourceKind("", core, "services", "Service", True, True, ("svc",), ("all",)),
        ResourceKind("apps", apps, "replicasets", "ReplicaSet", True, True, ("rs",), ("all",)),
        ResourceKind("apps", apps, "deployments", "Deployment", True, True, ("deploy",), ("all",)),
        ResourceKind("apps", apps, "statefulsets", "StatefulSet", True, True, ("sts",), ("all",)),
        ResourceKind("apps", apps, "daemonsets", "DaemonSet", True, True, ("ds",), ("all",)),
        ResourceKind("batch", batch, "jobs", "Job", True, True, (), ("all",)),
        ResourceKind("batch", batch, "cronjobs", "CronJob", True, True, ("cj",), ("all",)),
        ResourceKind("events.k8s.io", ("v1",), "events", "Event", True, False, ("ev",),
                     field_labels=("regarding.kind", "regarding.namespace", "regarding.name", "reason", "type")),
        ResourceKind("apiextensions.k8s.io", ("v1",), "customresourcedefinitions", "CustomResourceDefinition",
                     False, True, ("crd", "crds"), ("api-extensions",)),
        ResourceKind("admissionregistration.k8s.io", ("v1",), "mutatingwebhookconfigurations",
                     "MutatingWebhookConfiguration", False, False, (), ("api-extensions",)),
        ResourceKind("admissionregistration.k8s.io", ("v1",), "validatingwebhookconfigurations",
                     "ValidatingWebhookConfiguration", False, False, (), ("api-extensions",)),
        ResourceKind("coordination.k8s.io", ("v1",), "leases", "Lease", True, False),
        ResourceKind("authentication.k8s.io", ("v1",), "tokenreviews", "TokenReview", False, False,
                     verbs=("create",)),
    ]


class Catalog:
    """Resources by (group, version, plural); CRDs add and remove entries while the server runs."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, str], ResourceKind] = {}
        for kind in _builtins():
            self._kinds[kind.storage_key] = kind

    def find(self, group: str, version: str, plural: str) -> ResourceKind | None:
        kind = self._kinds.get((group, plural))
        return kind if kind is not None and version in kind.versions else None

    def by_kind(self, api_version: str, kind_name: str) -> ResourceKind | None:
        group, _, version = api_version.rpartition("/")
        for kind in self._kinds.values():
            if kind.group == group and version in kind.versions and kind.kind == kind_name:
                return kind
        return None

    def kinds(self) -> list[ResourceKind]:
        return list(self._kinds.values())

    def group_versions(self) -> dict[str, list[str]]:
        """Each non-core group with its versions, preferred (first declared) first."""
        result: dict[str, list[str]] = {}
        for kind in self._kinds.values():
            if kind.group:
                known = result.setdefault(kind.group, [])
                known.extend(v for v in kind.versions if v not in known)
        return result

    def register_crd(self, crd: dict[str, Any]) -> ResourceKind:
        """Serve the resource a CustomResourceDefinition declares (raises 422 if it is not valid)."""
        kind = kind_from_crd(crd)
        existing = self._kinds.get(kind.storage_key)
        if existing is not None and not existing.from_crd:
            raise _crd_invalid(crd, f"spec.names.plural: {kind.plural!r} in {kind.group!r} is a built-in resource")
        self._kinds[kind.storage_key] = kind
        return kind

    def unregister_crd(self, crd: dict[str, Any]) -> ResourceKind | None:
        spec = crd.get("spec") or {}
        key = (str(spec.get("group", "")), str((spec.get("names") or {}).get("plural", "")))
        kind = self._kinds.get(key)
        if kind is not None and kind.from_crd:
            del self._kinds[key]
            return kind
        return None


def _crd_invalid(crd: dict[str, Any], why: str) -> ApiError:
    name = (crd.get("metadata") or {}).get("name")
    from .errors import invalid
    return invalid("customresourcedefinitions", "apiextensions.k8s.io", name, why)


def kind_from_crd(crd: dict[str, Any]) -> ResourceKind:
    """Read and check the parts of a CRD this server needs; a clear 422 names what is wrong."""
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        raise _crd_invalid(crd, "spec: Required value")
    group = spec.get("group")
    names = spec.get("names")
    if not isinstance(group, str) or not group or "." not in group:
        raise _crd_invalid(crd, "spec.group: Invalid value: should be a domain with at least one dot")
    if not isinstance(names, dict) or not isinstance(names.get("plural"), str) or not names["plural"]:
        raise _crd_invalid(crd, "spec.names.plural: Required value")
    if not isinstance(names.get("kind"), str) or not names["kind"]:
        raise _crd_invalid(crd, "spec.names.kind: Required value")
    plural = names["plural"]
    if plural != plural.lower():
        raise _crd_invalid(crd, "spec.names.plural: Invalid value: must be lowercase")
    expected = f"{plural}.{group}"
    if (crd.get("metadata") or {}).get("name") != expected:
        raise _crd_invalid(crd, f"metadata.name: Invalid value: must be spec.names.plural+\".\"+spec.group "
                                f"({expected!r})")
    scope = spec.get("scope")
    if scope not in ("Namespaced", "Cluster"):
        raise _crd_invalid(crd, "spec.scope: Unsupported value: supported values: \"Cluster\", \"Namespaced\"")
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions or not all(isinstance(v, dict) and v.get("name")
                                                                    for v in versions):
        raise _crd_invalid(crd, "spec.versions: Required value: must have at least one version with a name")
    if sum(1 for v in versions if v.get("storage")) != 1:
        raise _crd_invalid(crd, "spec.versions: Invalid value: must have exactly one version marked as storage")
    served = [v for v in versions if v.get("served", True)]
    status = any("status" in ((v.get("subresources") or {})) for v in served)
    status = status or "status" in (spec.get("subresources") or {})
    return ResourceKind(
        group=group,
        versions=tuple(str(v["name"]) for v in served),
        plural=plural,
        kind=names["kind"],
        namespaced=scope == "Namespaced",
        status_subresource=status,
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        from_crd=True,
    )
