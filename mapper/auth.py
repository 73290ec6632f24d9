"""Agent authentication: ``authorization: Bearer <token>`` checked against a shared token
(off-cluster, constant-time) or with a Kubernetes TokenReview for the agents' audience that must
name the agent's ServiceAccount. Tokens are never logged.
"""
from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from clearance.common.filestamp import stamp

log = logging.getLogger("clearance.mapper.auth")

DEFAULT_AGENT_SA = "system:serviceaccount:clearance-system:clearance-agent"
DEFAULT_AGENT_AUDIENCE = "clearance-mapper"
"""The audience of the agents' projected ServiceAccount token (the chart's agent DaemonSet)."""


@dataclass(frozen=True)
class Refusal(Exception):
    """Why an agent was refused; ``unauthenticated`` False means authenticated but not allowed."""

    message: str
    unauthenticated: bool = True


class Authenticator(Protocol):
    def check(self, metadata: tuple[tuple[str, str | bytes], ...]) -> str:
        """The caller's identity, or raise Refusal."""


def bearer(metadata: tuple[tuple[str, str | bytes], ...]) -> str:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Refusal("authorization metadata must be 'Bearer <token>'")
            return token.strip()
    raise Refusal("missing 'authorization: Bearer <token>' metadata")


class SharedToken:
    """The token of --agent-token-file, re-read when the file changes (rotation without restart)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._stamp = stamp(self.path)
        self._token = self._read()

    def _read(self) -> bytes:
        try:
            token = self.path.read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"agent token file {self.path}: {exc.strerror}") from None
        if len(token) < 16:
            raise ValueError(f"agent token file {self.path}: the token must be at least 16 characters")
        return token

    def check(self, metadata: tuple[tuple[str, str | bytes], ...]) -> str:
        presented = bearer(metadata).encode()
        if hmac.compare_digest(presented, self._token):
            return "agent"
        current = stamp(self.path)  # re-read only when the file was rewritten or replaced
        if current is not None and current != self._stamp:
            self._stamp = current
            try:
                self._token = self._read()
            except ValueError:
                pass
        if hmac.compare_digest(presented, self._token):
            return "agent"
        raise Refusal("the agent token is not the one in --agent-token-file")


class TokenReviewer:
    """Checks tokens with the Kubernetes TokenReview API for ``audiences`` (the agents' projected
    token audience); accepted only when the review confirms one of them and names an ``allowed``
    user. Answers are cached for ``ttl_s`` by token digest (never the token itself); while the API
    is unreachable, a token accepted within ``stale_ok_s`` stays accepted."""

    def __init__(self, api_client: Any, allowed: tuple[str, ...] = (DEFAULT_AGENT_SA,),
                 audiences: tuple[str, ...] = (DEFAULT_AGENT_AUDIENCE,), *,
                 ttl_s: float = 60.0, stale_ok_s: float = 600.0) -> None:
        from kubernetes import client

        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("--agent-audience: give the audience of the agents' ServiceAccount token")
        self._api = client.AuthenticationV1Api(api_client)
        self._allowed = allowed
        self._audiences = list(audiences)
        self.ttl_s = ttl_s
        self.stale_ok_s = stale_ok_s
        self._cache: dict[bytes, tuple[float, str | Refusal]] = {}
        self._lock = threading.Lock()

    def check(self, metadata: tuple[tuple[str, str | bytes], ...]) -> str:
        import hashlib

        token = bearer(metadata)
        digest = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(digest)
        if hit is not None and now - hit[0] < self.ttl_s:
            result = hit[1]
        else:
            result = self._review(token)
            if isinstance(result, Refusal) and result.message.startswith("cannot verify"):
                if hit is not None and isinstance(hit[1], str) and now - hit[0] < self.stale_ok_s:
                    return hit[1]  # the API is briefly away: keep a recent acceptance
                raise result  # a passing API failure: do not remember it
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now, result)
        if isinstance(result, Refusal):
            raise result
        return result

    def _review(self, token: str) -> str | Refusal:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        spec = client.V1TokenReviewSpec(token=token, audiences=self._audiences)
        try:
            review = self._api.create_token_review(client.V1TokenReview(spec=spec))
        except ApiException as exc:
            log.warning("TokenReview failed", extra={"fields": {"status": exc.status}})
            return Refusal(f"cannot verify the agent token: TokenReview returned HTTP {exc.status}")
        except Exception as exc:  # noqa: BLE001 - API unreachable
            log.warning("TokenReview failed", extra={"fields": {"error": type(exc).__name__}})
            return Refusal("cannot verify the agent token: the Kubernetes API is unreachable")
        status = review.status
        if status is None or not status.authenticated:
            return Refusal(f"the token was not accepted by TokenReview for audience "
                           f"{', '.join(self._audiences)}")
        granted = [a for a in (status.audiences or []) if a in self._audiences]
        if not granted:
            return Refusal(f"TokenReview did not confirm the audience {', '.join(self._audiences)} for this token")
        user = status.user.username if status.user else ""
        if user not in self._allowed:
            return Refusal(f"{user or 'this identity'} is not the agent's ServiceAccount "
                           f"({', '.join(self._allowed)})", unauthenticated=False)
        return user
