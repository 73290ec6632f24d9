"""The record of every request the bed answered (no headers or bodies: they may hold secrets)."""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Call:
    """One answered request."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    at: float  # time.time()
    principal: str | None  # the caller's object id (from its bearer token), when known
    error_code: str | None = None


class CallLog:
    """Thread-safe list of calls with a filter."""

    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def add(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def __call__(self, method: str | None = None, path_contains: str | None = None, status: int | None = None,
                 error_code: str | None = None) -> list[Call]:
        """Calls matching all given filters (``path_contains`` is case-insensitive)."""
        with self._lock:
            calls = list(self._calls)
        return [c for c in calls
                if (method is None or c.method == method.upper())
                and (path_contains is None or path_contains.lower() in c.path.lower())
                and (status is None or c.status == status)
                and (error_code is None or c.error_code == error_code)]


def now() -> float:
    return time.time()
