"""ARM- and Entra-shaped error responses."""
from __future__ import annotations

import json
from typing import Any

from aiohttp import web


class ArmError(Exception):
    """An error that the server answers as ARM does: ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def response(self) -> web.Response:
        """The aiohttp response carrying this error."""
        return json_response({"error": {"code": self.code, "message": self.message}}, self.status, self.headers)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with ARM's content type."""
    return web.Response(status=status, text=json.dumps(body), content_type="application/json",
                        charset="utf-8", headers=headers)


def not_found(resource_type: str, name: str, resource_group: str | None) -> ArmError:
    """ARM's 404 ResourceNotFound for a missing resource."""
    where = f" under resource group '{resource_group}'" if resource_group else ""
    return ArmError(404, "ResourceNotFound",
                    f"The Resource '{resource_type}/{name}'{where} was not found. For more details please "
                    "go to https://aka.ms/ARMResourceNotFoundFix")


def entra_error(status: int, error: str, aadsts: int, description: str) -> web.Response:
    """An Entra ID token-endpoint error (OAuth 2.0 shape with AADSTS codes)."""
    return json_response({"error": error, "error_description": f"AADSTS{aadsts}: {description}",
                          "error_codes": [aadsts]}, status)
