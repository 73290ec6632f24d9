"""Stage 6: one entry per (caller, call signature) with a count and first/last seen."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from clearance.nodeagent.events import AzureCall
from clearance.nodeagent.pipeline.attribution import Identity


@dataclass(slots=True)
class Seen:
    """A distinct call of one caller and how often and when it was seen (monotonic ns)."""

    ident: Identity | None
    call: AzureCall
    count: int
    first_ns: int
    last_ns: int


def signature(ident: Identity | None, call: AzureCall) -> tuple:
    """Everything that makes two calls different for the mapper."""
    q = call.query
    h = call.headers
    return (ident, call.service, call.account, call.host, call.method, call.path,
            tuple(sorted(q.items())) if q else (), tuple(sorted(h.items())) if h else (),
            call.status, call.error_code)


class Deduper:
    """Bounded table of distinct calls; ``add`` returns False when a new distinct call overflows."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._seen: dict[tuple, Seen] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, ident: Identity | None, call: AzureCall, ts_ns: int, count: int = 1) -> bool:
        key = signature(ident, call)
        entry = self._seen.get(key)
        if entry is not None:
            entry.count += count
            if ts_ns > entry.last_ns:
                entry.last_ns = ts_ns
            if ts_ns < entry.first_ns:
                entry.first_ns = ts_ns
            return True
        if len(self._seen) >= self._max:
            return False
        self._seen[key] = Seen(ident, call, count, ts_ns, ts_ns)
        return True

    def take(self, ready: Callable[[Seen], bool]) -> list[Seen]:
        """Remove and return the entries for which ``ready`` is true; the rest stay."""
        out: list[Seen] = []
        keep: dict[tuple, Seen] = {}
        for key, entry in self._seen.items():
            if ready(entry):
                out.append(entry)
            else:
                keep[key] = entry
        self._seen = keep
        return out
