"""Discovery documents (/api, /apis, /apis/<group>, /apis/<group>/<version>) built from the live catalog."""
from __future__ import annotations

from typing import Any

from .catalog import Catalog
from .errors import no_such_path


def api_versions(address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": entries, "preferredVersion": entries[0]}


def api_groups(catalog: Catalog) -> dict[str, Any]:
    groups = catalog.group_versions()
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group(g, v) for g, v in sorted(groups.items())]}


def api_group(catalog: Catalog, group: str) -> dict[str, Any]:
    versions = catalog.group_versions().get(group)
    if not versions:
        raise no_such_path(f"/apis/{group}")
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(group, versions)}


def api_resources(catalog: Catalog, group: str, version: str) -> dict[str, Any]:
    kinds = [k for k in catalog.kinds() if k.group == group and version in k.versions]
    if not kinds:
        raise no_such_path(f"/apis/{group}/{version}" if group else f"/api/{version}")
    resources: list[dict[str, Any]] = []
    for kind in sorted(kinds, key=lambda k: k.plural):
        resources.append({"name": kind.plural, "singularName": kind.singular, "namespaced": kind.namespaced,
                          "kind": kind.kind, "verbs": list(kind.verbs), "shortNames": list(kind.short_names),
                          "categories": list(kind.categories)})
        for sub in kind.subresources():
            resources.append({"name": f"{kind.plural}/{sub}", "singularName": "", "namespaced": kind.namespaced,
                              "kind": kind.kind, "verbs": ["get", "patch", "update"]})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def server_version() -> dict[str, Any]:
    return {"major": "1", "minor": "30", "gitVersion": "v1.30.0-clearance-testbed", "gitCommit": "",
            "gitTreeState": "clean", "buildDate": "2024-04-17T00:00:00Z", "goVersion": "go1.22",
            "compiler": "gc", "platform": "linux/amd64"}


def root_paths(catalog: Catalog) -> dict[str, Any]:
    paths = {"/api", "/api/v1", "/apis", "/version"}
    for group, versions in catalog.group_versions().items():
        paths.add(f"/apis/{group}")
        paths.update(f"/apis/{group}/{v}" for v in versions)
    return {"paths": sorted(paths)}
