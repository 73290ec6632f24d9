"""The ClientIntents applied in the cluster, cached: clearance.dev/v1 always, k8s.otterize.com
v2beta1 when that CRD exists. A background thread lists and then watches each; documents that do
not parse are skipped with a warning naming the reason.
"""
from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from clearance.operator.api import (
    GROUP,
    OTTERIZE_GROUP,
    OTTERIZE_VERSION,
    PLURAL,
    VERSION,
    ClientIntents,
    InvalidClientIntents,
    parse_client_intents,
    scope_key,
)

from .apierrors import describe
from .builtin_roles import Role, builtin_role, matches

log = logging.getLogger("clearance.mapper.applied")

SOURCES = ((GROUP, VERSION), (OTTERIZE_GROUP, OTTERIZE_VERSION))


# A scope in full form naming a storage account or vault: (subscription, resource group, resource key).
_FULL_RESOURCE = re.compile(
    r"^/subscriptions/([^/]+)/resourcegroups/([^/]+)"
    r"(/providers/(?:microsoft\.storage/storageaccounts|microsoft\.keyvault/vaults)/[^/]+)(?:/|$)")
# The account or vault of a scope key (scope_key drops subscription and resource group for them).
_RESOURCE_KEY = re.compile(r"^(/providers/(?:microsoft\.storage/storageaccounts|microsoft\.keyvault/vaults)/[^/]+)")
_ANCESTORS_MAX = 100_000
DEBOUNCE_SECONDS = 0.2  # watch events arriving within this long rebuild the index once


@dataclass
class Grants:
    """Permissions applied at one scope key (lower case; may hold '*' wildcards), and the known
    built-in roles assigned there."""

    actions: set[str] = field(default_factory=set)
    data_actions: set[str] = field(default_factory=set)
    roles: list[Role] = field(default_factory=list)

    def covers(self, permission: str, data: bool) -> bool:
        pool = self.data_actions if data else self.actions
        p = permission.lower()
        return (p in pool or any("*" in a and matches(p, a) for a in pool)
                or any(r.grants(p, data) for r in self.roles))

    def covers_by_role(self, permission: str, data: bool) -> bool:
        return any(r.grants(permission, data) for r in self.roles)


@dataclass
class WorkloadIntents:
    """Everything applied for one workload, and the documents it came from."""

    documents: list[ClientIntents] = field(default_factory=list)
    by_scope: dict[str, Grants] = field(default_factory=dict)
    index: AppliedIndex | None = field(default=None, repr=False, compare=False)

    def covers(self, scope: str, permission: str, data: bool) -> bool:
        """Applied at this scope or at an ancestor scope (Azure role assignments inherit downwards),
        through listed permissions or a known built-in role."""
        keys = self.index.ancestors(scope) if self.index is not None else _ancestors(scope, {})
        for key in keys:
            g = self.by_scope.get(key)
            if g is not None and g.covers(permission, data):
                return True
        return False

    def covers_by_role(self, scope: str, permission: str, data: bool) -> bool:
        """Granted through a built-in role at this scope or an ancestor."""
        keys = self.index.ancestors(scope) if self.index is not None else _ancestors(scope, {})
        return any((g := self.by_scope.get(k)) is not None and g.covers_by_role(permission, data) for k in keys)


def _ancestors(scope: str, homes: dict[str, set[tuple[str, str]]]) -> tuple[str, ...]:
    """The scope keys a grant at which covers ``scope``: itself and each parent; for a storage
    account or vault also its resource group and subscription, when the scope names them (full
    form) or ``homes`` knows them for the account or vault without doubt."""
    key = scope_key(scope)
    out = []
    k = key
    while k:
        out.append(k)
        k = k.rpartition("/")[0]
    full = _FULL_RESOURCE.match(scope.strip().lower())
    if full is not None:
        home: tuple[str, str] | None = (full.group(1), full.group(2))
    else:
        r = _RESOURCE_KEY.match(key)
        known = homes.get(r.group(1)) if r is not None else None
        home = next(iter(known)) if known is not None and len(known) == 1 else None
    if home is not None and key.startswith("/providers/"):
        out += [f"/subscriptions/{home[0]}/resourcegroups/{home[1]}", f"/subscriptions/{home[0]}"]
    return tuple(out)


class AppliedIndex:
    """(namespace, workload name) -> what is applied; kinds are compared when the document sets one.

    Every full-form scope of a storage account or vault, in any document, teaches where that
    account or vault lives (subscription, resource group); a grant there covers its scopes too.

    ``unknown_roles_logged`` holds the role names already logged as unknown; pass the same set to
    each rebuild to log each name once."""

    def __init__(self, docs: Iterable[ClientIntents] = (), unknown_roles_logged: set[str] | None = None) -> None:
        self._unknown_roles_logged = set() if unknown_roles_logged is None else unknown_roles_logged
        self._by_workload: dict[tuple[str, str], WorkloadIntents] = {}
        self._homes: dict[str, set[tuple[str, str]]] = {}  # account/vault key -> {(subscription, rg)}
        self._ancestors: dict[str, tuple[str, ...]] = {}
        for d in docs:
            self.add(d)

    def add(self, ci: ClientIntents) -> None:
        wi = self._by_workload.setdefault((ci.namespace, ci.workload.name), WorkloadIntents(index=self))
        wi.documents.append(ci)
        for _, t in ci.azure_targets:
            full = _FULL_RESOURCE.match(t.scope.strip().lower())
            if full is not None:
                self._homes.setdefault(full.group(3), set()).add((full.group(1), full.group(2)))
                self._ancestors.clear()
            g = wi.by_scope.setdefault(scope_key(t.scope), Grants())
            g.actions.update(a.lower() for a in t.actions)
            g.data_actions.update(d.lower() for d in t.data_actions)
            for name in t.roles:
                role = builtin_role(name)
                if role is not None:
                    g.roles.append(role)
                elif name.strip().lower() not in self._unknown_roles_logged:
                    self._unknown_roles_logged.add(name.strip().lower())
                    log.info("a ClientIntents names a role Clearance does not know; the permissions it "
                             "grants are shown missing", extra={"fields": {"role": name[:128]}})

    def ancestors(self, scope: str) -> tuple[str, ...]:
        """The scope keys whose grants cover ``scope`` (cached per scope)."""
        keys = self._ancestors.get(scope)
        if keys is None:
            if len(self._ancestors) >= _ANCESTORS_MAX:
                self._ancestors.clear()
            keys = self._ancestors[scope] = _ancestors(scope, self._homes)
        return keys

    def lookup(self, namespace: str, kind: str, name: str) -> WorkloadIntents | None:
        wi = self._by_workload.get((namespace, name))
        if wi is None:
            return None
        if all(d.workload.kind and d.workload.kind.lower() != kind.lower() for d in wi.documents):
            return None
        return wi

    def __len__(self) -> int:
        return sum(len(w.documents) for w in self._by_workload.values())


class AppliedIntents:
    """A live AppliedIndex fed from the Kubernetes API (or fixed, when no cluster is configured).

    Each source is listed once, then watched from the list's resourceVersion (resumed from the last
    event seen when a watch times out; listed again only when the watch fails, e.g. 410 Gone).
    Watch events mark the index stale; one thread rebuilds it once per burst of events."""

    def __init__(self, api_client: Any | None = None, *, resync_seconds: float = 30.0,
                 debounce_seconds: float = DEBOUNCE_SECONDS) -> None:
        self._api_client = api_client
        self._resync = resync_seconds
        self._debounce = debounce_seconds
        self._docs: dict[tuple[str, str, str], ClientIntents] = {}  # (group, ns, name) -> doc
        self._unknown_roles_logged: set[str] = set()
        self._index = AppliedIndex(unknown_roles_logged=self._unknown_roles_logged)
        self._lock = threading.Lock()
        self._stale = threading.Event()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.rebuilds = 0  # how many times the index was built (for tests and benches)

    @property
    def index(self) -> AppliedIndex:
        return self._index

    def start(self) -> None:
        if self._api_client is None:
            return
        threads = [threading.Thread(target=self._loop, args=(g, v), name=f"watch-{g}", daemon=True) for g, v in SOURCES]
        threads.append(threading.Thread(target=self._rebuilder, name="applied-index", daemon=True))
        for t in threads:
            t.start()
        self._threads += threads

    def stop(self) -> None:
        self._stop.set()
        self._stale.set()

    def refresh(self) -> None:
        """List every source once, now (used at start-up and by tests)."""
        for group, version in SOURCES:
            self._list(group, version)

    def _api(self) -> Any:
        from kubernetes import client

        return client.CustomObjectsApi(self._api_client)

    def _list(self, group: str, version: str) -> str | None:
        from kubernetes.client.exceptions import ApiException

        try:
            listing = self._api().list_cluster_custom_object(group, version, PLURAL)
        except ApiException as exc:
            if exc.status == 404:  # CRD not installed: nothing applied from this source
                self._replace(group, [])
                return None
            raise
        self._replace(group, listing.get("items", []))
        return (listing.get("metadata") or {}).get("resourceVersion")

    def _loop(self, group: str, version: str) -> None:
        while not self._stop.is_set():
            try:
                rv = self._list(group, version)
                if rv is None:
                    if group == OTTERIZE_GROUP:
                        self._stop.wait(self._resync)
                        continue
                    rv = ""  # no resourceVersion in the list: the watch replays what exists
                while not self._stop.is_set():
                    rv = self._watch(group, version, rv)
            except Exception as exc:  # noqa: BLE001 - API unreachable or watch expired: list again
                log.debug("ClientIntents watch ended", extra={"fields": {"group": group, "error": describe(exc)}})
                self._stop.wait(1.0)

    def _watch(self, group: str, version: str, rv: str) -> str:
        """Follow one watch request from ``rv``; returns the resourceVersion to resume from."""
        from kubernetes import watch

        w = watch.Watch()
        kwargs: dict[str, Any] = {"resource_version": rv} if rv else {}
        for event in w.stream(self._api().list_cluster_custom_object, group, version, PLURAL,
                              allow_watch_bookmarks=True, timeout_seconds=int(self._resync),
                              _request_timeout=self._resync + 5, **kwargs):
            if self._stop.is_set():
                w.stop()
                break
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                self._apply(group, event["type"], event.get("object") or {})
        return w.resource_version or rv

    def _apply(self, group: str, kind: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        key = (group, meta.get("namespace", ""), meta.get("name", ""))
        with self._lock:
            if kind == "DELETED":
                if self._docs.pop(key, None) is None:
                    return
            elif (ci := _parse(obj)) is not None:
                if self._docs.get(key) == ci:
                    return
                self._docs[key] = ci
            elif self._docs.pop(key, None) is None:  # now invalid: no longer applied as it was
                return
        self._stale.set()

    def _rebuilder(self) -> None:
        while not self._stop.is_set():
            self._stale.wait()
            if self._stop.wait(self._debounce):
                return
            self._stale.clear()
            with self._lock:
                self._rebuild()

    def _rebuild(self) -> None:
        """Build the index from the documents (caller holds the lock)."""
        self._index = AppliedIndex(self._docs.values(), self._unknown_roles_logged)
        self.rebuilds += 1

    def _replace(self, group: str, items: list[dict[str, Any]]) -> None:
        fresh: dict[tuple[str, str, str], ClientIntents] = {}
        for obj in items:
            meta = obj.get("metadata") or {}
            if (ci := _parse(obj)) is not None:
                fresh[(group, meta.get("namespace", ""), meta.get("name", ""))] = ci
        with self._lock:
            if fresh == {k: v for k, v in self._docs.items() if k[0] == group}:
                return  # unchanged: keep the index (and the caches that depend on it)
            for key in [k for k in self._docs if k[0] == group]:
                del self._docs[key]
            self._docs.update(fresh)
            self._rebuild()


def _parse(obj: dict[str, Any]) -> ClientIntents | None:
    try:
        return parse_client_intents(obj)
    except InvalidClientIntents as exc:
        meta = obj.get("metadata") or {}
        log.warning("skipping an invalid ClientIntents", extra={"fields": {
            "namespace": meta.get("namespace"), "name": meta.get("name"), "reason": exc.reason}})
        return None
