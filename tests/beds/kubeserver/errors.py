"""Kubernetes API errors, rendered as ``v1 Status`` bodies the way kube-apiserver sends them."""
from __future__ import annotations

from typing import Any

import kmock


class ApiError(kmock.KubernetesError):
    """An error with a Kubernetes reason (``NotFound``, ``AlreadyExists``…) and a Status body."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(status=code, reason=reason, message=message, details=details or {})

    def status_body(self) -> dict[str, Any]:
        """The ``v1 Status`` document for this error."""
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "details": self.details,
            "code": self.status,
        }


def _details(plural: str, group: str, name: str | None) -> dict[str, Any]:
    details: dict[str, Any] = {"kind": plural}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    return details


def not_found(plural: str, group: str, name: str) -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(404, "NotFound", f'{what} "{name}" not found', _details(plural, group, name))


def already_exists(plural: str, group: str, name: str) -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(409, "AlreadyExists", f'{what} "{name}" already exists', _details(plural, group, name))


def conflict(plural: str, group: str, name: str, why: str) -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(409, "Conflict", f'Operation cannot be fulfilled on {what} "{name}": {why}',
                    _details(plural, group, name))


def invalid(plural: str, group: str, name: str | None, why: str) -> ApiError:
    what = f"{plural}.{group}" if group else plural
    return ApiError(422, "Invalid", f'{what} "{name or ""}" is invalid: {why}', _details(plural, group, name))


def bad_request(why: str) -> ApiError:
    return ApiError(400, "BadRequest", why)


def unsupported_media(content_type: str, allowed: list[str]) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types include: '
                    f'{", ".join(allowed)} (got {content_type!r})')


def method_not_allowed(method: str, what: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"the server does not allow this method on the requested resource: "
                                             f"{method} {what}")


def no_such_path(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")


def gone(why: str) -> ApiError:
    return ApiError(410, "Expired", why)
