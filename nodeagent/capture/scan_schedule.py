"""When to scan one process's maps after a hint that it is loading a TLS library (load_watch.bpf.c).

A hint arrives before the library is mapped (an open precedes the loader's mmap), so each hinted
pid is scanned after a short debounce and retried a few times over a few hundred milliseconds,
until a scan finds a TLS library in it. Bounded work whatever the hint rate: at most ``max_pids``
pids wait at once (further hints are counted as dropped and left to the periodic rescan), a pid
already waiting gains no scans, a pid that was just handled ignores hints for ``cooldown_s``, and
at most ``scans_per_s`` scans are handed out per second (the rest wait their turn).
"""
from __future__ import annotations

from dataclasses import dataclass, field

# Seconds after the first hint at which the pid's maps are read; the last attempt ends its schedule.
DEFAULT_DELAYS_S: tuple[float, ...] = (0.002, 0.02, 0.1, 0.3)


@dataclass
class _Waiting:
    first: float
    attempt: int
    due: float


@dataclass
class ScanSchedule:
    """Pids to scan and when: ``hint`` adds, ``due`` hands out, ``found`` ends a pid's retries."""

    delays_s: tuple[float, ...] = DEFAULT_DELAYS_S
    max_pids: int = 256
    cooldown_s: float = 1.0
    scans_per_s: float = 500.0
    hints: int = 0
    dropped: int = 0
    _waiting: dict[int, _Waiting] = field(default_factory=dict)
    _cooling: dict[int, float] = field(default_factory=dict)  # pid -> until when its hints are ignored
    _tokens: float = 0.0
    _refilled: float | None = None

    def __post_init__(self) -> None:
        if not self.delays_s or list(self.delays_s) != sorted(self.delays_s) or self.delays_s[0] < 0:
            raise ValueError(f"delays_s must be non-empty, ascending and >= 0, not {self.delays_s}")
        if self.max_pids < 1 or self.scans_per_s <= 0 or self.cooldown_s < 0:
            raise ValueError("max_pids must be >= 1, scans_per_s > 0 and cooldown_s >= 0")
        self._tokens = self._burst

    @property
    def _burst(self) -> float:
        return max(1.0, self.scans_per_s / 10)

    def hint(self, pid: int, now: float) -> None:
        """A process may be loading a TLS library: scan it soon (no-op if it is waiting or cooling down)."""
        self.hints += 1
        if pid in self._waiting or self._cooling.get(pid, 0.0) > now:
            return
        if len(self._waiting) >= self.max_pids:
            self.dropped += 1
            return
        self._waiting[pid] = _Waiting(now, 0, now + self.delays_s[0])

    def due(self, now: float) -> list[int]:
        """Pids to scan now; each moves on to its next attempt, or is forgotten after its last."""
        self._refill(now)
        ready = sorted((w.due, pid) for pid, w in self._waiting.items() if w.due <= now)
        pids = []
        for _due, pid in ready:
            if self._tokens < 1:
                break
            self._tokens -= 1
            pids.append(pid)
            w = self._waiting[pid]
            w.attempt += 1
            if w.attempt < len(self.delays_s):
                w.due = w.first + self.delays_s[w.attempt]
            else:
                self.found(pid, now)
        return pids

    def found(self, pid: int, now: float) -> None:
        """The pid was handled (its TLS library seen, or it is gone): no more attempts for a while."""
        self._waiting.pop(pid, None)
        if len(self._cooling) >= 16 * self.max_pids:
            self._cooling = {p: t for p, t in self._cooling.items() if t > now}
            if len(self._cooling) >= 16 * self.max_pids:
                self._cooling.clear()
        self._cooling[pid] = now + self.cooldown_s

    def next_due(self, now: float) -> float | None:
        """When the next scan can be handed out (monotonic seconds), or None when nothing waits."""
        if not self._waiting:
            return None
        earliest = min(w.due for w in self._waiting.values())
        if self._tokens < 1:
            self._refill(now)
            earliest = max(earliest, now + (1 - self._tokens) / self.scans_per_s)
        return earliest

    def waiting(self) -> int:
        """How many pids have scans still to come."""
        return len(self._waiting)

    def _refill(self, now: float) -> None:
        if self._refilled is not None:
            self._tokens = min(self._burst, self._tokens + (now - self._refilled) * self.scans_per_s)
        self._refilled = now
