"""In-memory object store with one resourceVersion counter and a bounded event history for watches."""
from __future__ import annotations

import asyncio
import bisect
import copy
import dataclasses
from typing import Any

StorageKey = tuple[str, str]  # (group, plural)
ObjectKey = tuple[StorageKey, str | None, str]  # (resource, namespace or None, name)


@dataclasses.dataclass(frozen=True)
class Change:
    """One committed change, as a watch sees it."""

    rv: int
    resource: StorageKey
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Store:
    """Objects by key; every write bumps the global resourceVersion and is appended to the history."""

    def __init__(self, history_size: int = 20000) -> None:
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._history: list[Change] = []
        self._history_size = history_size
        self._forgotten_rv = 0  # changes up to this resourceVersion were dropped from the history
        self._rv = 0
        self._changed = asyncio.Event()

    @property
    def resource_version(self) -> int:
        return self._rv

    @property
    def oldest_rv(self) -> int:
        """Watches may resume from this resourceVersion or later; older ones get 410 Gone."""
        return self._forgotten_rv

    def next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def get(self, key: ObjectKey) -> dict[str, Any] | None:
        return self._objects.get(key)

    def items(self, resource: StorageKey, namespace: str | None = None) -> list[dict[str, Any]]:
        return [obj for (res, ns, _), obj in self._objects.items()
                if res == resource and (namespace is None or ns == namespace)]

    def put(self, key: ObjectKey, obj: dict[str, Any], event: str) -> dict[str, Any]:
        """Store ``obj`` (its metadata.resourceVersion already set by the caller) and publish the change."""
        old = self._objects.get(key)
        self._objects[key] = obj
        self._publish(Change(int(obj["metadata"]["resourceVersion"]), key[0], event, copy.deepcopy(obj), old))
        return obj

    def remove(self, key: ObjectKey) -> dict[str, Any]:
        obj = self._objects.pop(key)
        obj = copy.deepcopy(obj)
        obj["metadata"]["resourceVersion"] = str(self.next_rv())
        self._publish(Change(self._rv, key[0], "DELETED", obj, None))
        return obj

    def _publish(self, change: Change) -> None:
        self._history.append(change)
        if len(self._history) > 2 * self._history_size:
            self._forgotten_rv = self._history[-self._history_size - 1].rv
            del self._history[:-self._history_size]
        self.wake_all()

    def wake_all(self) -> None:
        """Wake every waiting watch (on changes and when the server stops)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def changes_since(self, rv: int) -> list[Change]:
        start = bisect.bisect_right(self._history, rv, key=lambda c: c.rv)
        return self._history[start:]

    async def wait_for_change(self, after: int, timeout: float) -> None:
        """Return when something newer than ``after`` was committed, or after ``timeout`` seconds."""
        if self._history and self._history[-1].rv > after:
            return
        event = self._changed
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except asyncio.TimeoutError:
            pass
