"""Switchable failures: throttling, injected errors, latency, replication delay, unreachability."""
from __future__ import annotations

import math
import re
import threading
import time
from dataclasses import dataclass, field


class TokenBucket:
    """ARM's write throttle: ``burst`` tokens, refilled at ``refill_per_s``."""

    def __init__(self, burst: float, refill_per_s: float) -> None:
        self.burst = burst
        self.refill_per_s = refill_per_s
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> tuple[bool, int, int]:
        """Take one token: (allowed, remaining, retry-after seconds when refused)."""
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.refill_per_s)
        self._at = now
        if self._tokens >= 1:
            self._tokens -= 1
            return True, int(self._tokens), 0
        wait = (1 - self._tokens) / self.refill_per_s if self.refill_per_s > 0 else 3600
        return False, 0, max(1, math.ceil(wait))


@dataclass
class InjectedFailure:
    """Fail the next ``remaining`` calls matching ``method`` and the ``path`` regex."""

    remaining: int
    status: int
    code: str
    method: str | None
    path: re.Pattern[str]
    retry_after: int | None = None


@dataclass
class Faults:
    """The switches. Change them from the test at any time; they apply to the next request."""

    principal_not_found_seconds: float = 0.0
    """Role assignments to an identity's principal fail with 400 PrincipalNotFound for this long after creation."""
    principal_type_skips_lookup: bool = False
    """When true, an assignment that says principalType=ServicePrincipal is accepted during the delay (as ARM)."""
    fic_write_hold_ms: float = 30.0
    """How long a federated-credential write holds its identity; overlapping writes get 409."""
    latency_ms: float = 0.0
    """Added before every answer."""
    unreachable: bool = False
    """Close every connection without answering."""
    page_size: int = 100
    """Items per page of list answers (nextLink after that)."""
    _throttle_enabled: bool = True
    _burst: float = 200
    _refill: float = 10
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    _injected: list[InjectedFailure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def throttle(self, burst: float = 200, refill_per_s: float = 10, enabled: bool = True) -> None:
        """Set the write/delete token buckets (per subscription); resets them full."""
        with self._lock:
            self._throttle_enabled, self._burst, self._refill = enabled, burst, refill_per_s
            self._buckets.clear()

    def fail_next(self, n: int = 1, status: int = 500, method: str | None = None, path: str = ".*",
                  code: str | None = None, retry_after: int | None = None) -> None:
        """Answer the next ``n`` requests whose method and path (regex, searched) match with ``status``."""
        default = {500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable",
                   504: "GatewayTimeout", 429: "TooManyRequests"}.get(status, "InjectedFailure")
        with self._lock:
            self._injected.append(InjectedFailure(n, status, code or default, method.upper() if method else None,
                                                  re.compile(path, re.I), retry_after))

    def clear(self) -> None:
        """Remove injected failures, latency and unreachability; throttle back to ARM's defaults."""
        with self._lock:
            self._injected.clear()
        self.latency_ms, self.unreachable = 0.0, False
        self.throttle()

    # -- used by the server ------------------------------------------------------------------
    def take_injected(self, method: str, path: str) -> InjectedFailure | None:
        with self._lock:
            for f in self._injected:
                if f.remaining > 0 and (f.method is None or f.method == method) and f.path.search(path):
                    f.remaining -= 1
                    return f
        return None

    def take_write_token(self, subscription: str, kind: str) -> tuple[bool, int, int]:
        with self._lock:
            if not self._throttle_enabled:
                return True, int(self._burst), 0
            bucket = self._buckets.setdefault((subscription.lower(), kind), TokenBucket(self._burst, self._refill))
            return bucket.take()
