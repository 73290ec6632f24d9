"""Kubernetes API errors as log text: an ApiException's str() carries the response headers and
body, which may hold what should not reach a log; only its status and reason are kept."""
from __future__ import annotations


def describe(exc: BaseException) -> str:
    """``HTTP 403 Forbidden`` for an ApiException; the type and message of anything else (bounded)."""
    from kubernetes.client.exceptions import ApiException

    if isinstance(exc, ApiException):
        return f"HTTP {exc.status} {exc.reason}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]
