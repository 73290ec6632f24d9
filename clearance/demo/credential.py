"""A local stand-in for a workload identity's token: an unsigned JWT that Azurite's
``--oauth basic`` accepts (it checks issuer, audience and times, not the signature).

With it the real Azure SDK runs its bearer-token code path exactly as a pod with an Azure
workload identity does. Standard library only, so pod programs can use it cheaply.
"""
from __future__ import annotations

import base64
import json
import time
from typing import Any, NamedTuple

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


class Token(NamedTuple):
    """Shape-compatible with azure.core.credentials.AccessToken."""

    token: str
    expires_on: int


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class LocalWorkloadCredential:
    """A TokenCredential that mints a fresh unsigned token per ``get_token`` call."""

    def __init__(self, tenant: str = TENANT, object_id: str = "0f0e0d0c-0b0a-4909-8807-060504030201",
                 lifetime_s: int = 3600) -> None:
        self.tenant = tenant
        self.object_id = object_id
        self.lifetime_s = lifetime_s
        self.tokens_issued = 0

    def token(self, audience: str = "https://storage.azure.com") -> Token:
        """A token for ``audience``."""
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "kid": "clearance-local"}
        claims = {
            "aud": audience, "iss": f"https://sts.windows.net/{self.tenant}/", "iat": now - 60,
            "nbf": now - 60, "exp": now + self.lifetime_s, "tid": self.tenant, "oid": self.object_id,
            "sub": self.object_id, "appid": "11111111-2222-3333-4444-555555555555", "ver": "1.0",
        }
        body = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        self.tokens_issued += 1
        return Token(f"{body}.{_b64url(b'unsigned-local-signature')}", now + self.lifetime_s)

    def get_token(self, *scopes: str, **_: Any) -> Token:
        """TokenCredential protocol: scope ``https://storage.azure.com/.default`` gives that audience."""
        audience = scopes[0].removesuffix("/.default") if scopes else "https://storage.azure.com"
        return self.token(audience)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "LocalWorkloadCredential":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
