"""JWTs: access tokens the bed issues (HS256, its own key) and unverified reading of assertions."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from typing import Any


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: dict[str, Any], key: bytes, kid: str = "clearance-arm-bed") -> str:
    """A signed HS256 JWT."""
    head = _b64(json.dumps({"typ": "JWT", "alg": "HS256", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def read_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT without checking its signature; ValueError when it is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT (expected three dot-separated parts)")
    try:
        claims = json.loads(_unb64(parts[1]))
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"JWT payload is not base64url JSON: {e}") from None
    if not isinstance(claims, dict):
        raise ValueError("JWT payload is not a JSON object")
    return claims


def verify(token: str, key: bytes) -> dict[str, Any]:
    """The claims of a token this bed issued; ValueError when forged, malformed or expired."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("malformed token")
    sig = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(_b64(sig), parts[2]):
        raise ValueError("token signature is invalid")
    claims = read_claims(token)
    if claims.get("exp", 0) < time.time():
        raise ValueError("token has expired")
    return claims


def access_token_claims(tenant_id: str, audience: str, object_id: str, app_id: str,
                        lifetime_s: int = 3600) -> dict[str, Any]:
    """Claims shaped like an Entra v1 access token for an application (Azurite's basic OAuth accepts them)."""
    now = int(time.time())
    return {"aud": audience, "iss": f"https://sts.windows.net/{tenant_id}/", "iat": now, "nbf": now - 5,
            "exp": now + lifetime_s, "appid": app_id, "appidacr": "2", "idtyp": "app", "oid": object_id,
            "sub": object_id, "tid": tenant_id, "uti": uuid.uuid4().hex, "ver": "1.0"}


def service_account_token(issuer: str, namespace: str, service_account: str,
                          audience: str = "api://AzureADTokenExchange", lifetime_s: int = 3600) -> str:
    """A projected ServiceAccount token as the AKS OIDC issuer would sign it (signed here with a dummy key)."""
    now = int(time.time())
    claims = {"aud": [audience], "iss": issuer, "sub": f"system:serviceaccount:{namespace}:{service_account}",
              "iat": now, "nbf": now, "exp": now + lifetime_s,
              "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": service_account,
                                                                           "uid": str(uuid.uuid4())}}}
    return encode(claims, b"aks-oidc-issuer-dummy-key", kid="aks-oidc")
