"""Capped exponential backoff, the one schedule every operator retry uses."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff: ``base * 2**attempt`` seconds, at most ``cap``."""

    base: float = 1.0
    cap: float = 60.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (0 for the first retry)."""
        return min(self.cap, self.base * 2 ** min(max(attempt, 0), 30))
