"""Stage 6: one entry per (caller, call signature) with a count and first/last seen.

The signature is the redaction's ``CallKey`` tuple plus the caller, status and error code: a cheap
hash key; protos are built only when the entries are drained.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from clearance.nodeagent.pipeline.attribution import Identity
from clearance.nodeagent.pipeline.redact import CallKey

Signature = tuple[Identity | None, CallKey, int, str]  # (caller, call, status, error code)


@dataclass(slots=True)
class Seen:
    """A distinct call of one caller and how often and when it was seen (monotonic ns)."""

    ident: Identity | None
    call: CallKey
    status: int
    error_code: str
    count: int
    first_ns: int
    last_ns: int


class Deduper:
    """Bounded table of distinct calls; ``add`` returns False when a new distinct call overflows."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._seen: dict[Signature, Seen] = {}

    def __len__(self) -> int:
        return len(self._seen)

    def add(self, ident: Identity | None, call: CallKey, status: int, error_code: str, ts_ns: int,
            count: int = 1) -> bool:
        key = (ident, call, status, error_code)
        entry = self._seen.get(key)
        if entry is not None:
            entry.count += count
            if ts_ns > entry.last_ns:
                entry.last_ns = ts_ns
            elif ts_ns < entry.first_ns:
                entry.first_ns = ts_ns
            return True
        if len(self._seen) >= self._max:
            return False
        self._seen[key] = Seen(ident, call, status, error_code, count, ts_ns, ts_ns)
        return True

    def take(self, ready: Callable[[Seen], bool]) -> list[Seen]:
        """Remove and return the entries for which ``ready`` is true; the rest stay."""
        out: list[Seen] = []
        keep: dict[Signature, Seen] = {}
        for key, entry in self._seen.items():
            if ready(entry):
                out.append(entry)
            else:
                keep[key] = entry
        self._seen = keep
        return out
