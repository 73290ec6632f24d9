"""ARM control plane: method + resource path on management.* -> ``Microsoft.<NS>/<types>/<verb>``.

The rule iamlive's Azure map is built on (reference §1.5): ``GET``/``HEAD`` -> ``read``,
``PUT``/``PATCH`` -> ``write``, ``DELETE`` -> ``delete``, ``POST .../{verb}`` -> ``{verb}/action``;
a ``GET`` on a collection reads the child type at its parent. The last ``providers/<NS>`` in the
path governs (extension resources such as role assignments). ``/subscriptions`` and
``/resourceGroups`` without a provider belong to ``Microsoft.Resources``. Scope: the resource id;
for a ``PUT`` that may have created the resource (status not 200) the nearest parent, because no
assignment can be made on a resource that does not exist yet.
"""
from __future__ import annotations

from typing import NamedTuple

# Canonical spelling of provider namespaces and path words (the wire is case-insensitive).
_NAMESPACES = {n.lower(): n for n in (
    "Microsoft.Storage", "Microsoft.KeyVault", "Microsoft.Authorization", "Microsoft.Resources",
    "Microsoft.ManagedIdentity", "Microsoft.Compute", "Microsoft.Network", "Microsoft.Web",
    "Microsoft.ContainerService", "Microsoft.ContainerRegistry", "Microsoft.Sql", "Microsoft.DocumentDB",
    "Microsoft.ServiceBus", "Microsoft.EventHub", "Microsoft.EventGrid", "Microsoft.Insights",
    "Microsoft.OperationalInsights", "Microsoft.Cache", "Microsoft.DBforPostgreSQL",
    "Microsoft.DBforMySQL", "Microsoft.ResourceGraph", "Microsoft.Management",
    "Microsoft.AppConfiguration", "Microsoft.CognitiveServices", "Microsoft.ApiManagement",
    "Microsoft.Security", "Microsoft.Monitor", "Microsoft.Features", "Microsoft.Batch",
)}
_WORDS = {w.lower(): w for w in (
    "subscriptions", "resourceGroups", "resources", "providers", "locations", "operations",
    "storageAccounts", "blobServices", "queueServices", "tableServices", "fileServices",
    "containers", "queues", "tables", "shares", "immutabilityPolicies", "managementPolicies",
    "encryptionScopes", "privateEndpointConnections", "objectReplicationPolicies", "inventoryPolicies",
    "listkeys", "regeneratekey", "listAccountSas", "listServiceSas", "revokeUserDelegationKeys",
    "setLegalHold", "clearLegalHold", "lease", "lock", "extend", "restoreBlobRanges", "failover",
    "vaults", "secrets", "keys", "accessPolicies", "managedHSMs", "deletedVaults", "purge",
    "userAssignedIdentities", "federatedIdentityCredentials", "identities", "roleAssignments",
    "roleDefinitions", "roleEligibilitySchedules", "permissions", "policyAssignments", "locks",
    "managedClusters", "agentPools", "listClusterUserCredential", "listClusterAdminCredential",
    "virtualMachines", "virtualMachineScaleSets", "disks", "deployments", "managementGroups",
    "register", "unregister", "exportTemplate", "moveResources", "validateMoveResources", "tags",
    "asyncoperations", "operationResults", "operationStatuses", "checkNameAvailability",
)}
# Actions that do not follow the generic rule.
_OVERRIDES = {
    "microsoft.storage/checknameavailability/action": "Microsoft.Storage/checknameavailability/read",
}
_METHOD_VERB = {"GET": "read", "HEAD": "read", "PUT": "write", "PATCH": "write", "DELETE": "delete"}


class ArmOperation(NamedTuple):
    """An ARM call's action and the scope it needs."""

    action: str
    scope: str


def _word(seg: str) -> str:
    return _WORDS.get(seg.lower(), seg)


def _join(parts: list[str]) -> str:
    return "/" + "/".join(parts) if parts else "/"


def classify_arm(method: str, path: str, status: int) -> ArmOperation | None:
    """The action and scope of one ARM call; ``None`` when the path has no ARM shape."""
    segs = [s for s in path.split("?", 1)[0].split("/") if s]
    if not segs or any(s in (".", "..") for s in segs):
        return None
    lowered = [s.lower() for s in segs]
    prov = max((i for i, s in enumerate(lowered[:-1]) if s == "providers" and "." in segs[i + 1]),
               default=-1)
    if prov >= 0:
        namespace = _NAMESPACES.get(lowered[prov + 1], segs[prov + 1])
        prefix = _canonical_prefix(segs[:prov])
        if prefix is None:
            return None
        head = prefix + ["providers", namespace]
        rest = segs[prov + 2:]
    else:
        if lowered[0] != "subscriptions":
            return None
        namespace, prefix, head, rest = "Microsoft.Resources", [], [], segs
    if not rest:
        return None
    types = [_word(t) for t in rest[0::2]]
    names = rest[1::2]
    pairs = [p for pair in zip(types, names) for p in pair]
    method = method.upper()
    if len(rest) % 2 == 0:  # a resource
        verb = _METHOD_VERB.get(method)
        if verb is None:
            return None
        resource = head + pairs
        if method == "PUT" and status != 200:
            parent = head + pairs[:-2] if len(pairs) > 2 else prefix
            return _op(namespace, types, verb, _join(parent if parent else prefix))
        return _op(namespace, types, verb, _join(resource))
    last = types[-1]
    parent = head + pairs if pairs else prefix
    if method in ("GET", "HEAD"):  # a collection of the last type
        return _op(namespace, types, "read", _join(parent))
    if method == "POST" and types[:-1]:
        return _op(namespace, types[:-1], f"{last}/action", _join(parent))
    if method == "POST":  # provider-level action, e.g. /subscriptions/s/providers/NS/register
        return _op(namespace, [], f"{last}/action", _join(parent))
    return None


def _canonical_prefix(segs: list[str]) -> list[str] | None:
    """Canonical structural words of the scope before ``providers`` (names untouched)."""
    out: list[str] = []
    for i, seg in enumerate(segs):
        out.append(_word(seg) if i % 2 == 0 else seg)
    if len(segs) % 2:  # a dangling word before providers is not a scope
        return None
    return out


def _op(namespace: str, types: list[str], verb: str, scope: str) -> ArmOperation:
    action = "/".join([namespace, *types, verb])
    return ArmOperation(_OVERRIDES.get(action.lower(), action), scope)
