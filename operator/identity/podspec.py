"""Put Azure workload-identity settings into a pod spec, whether or not Azure's own webhook ran.

Mirrors what azure-workload-identity's webhook injects (same volume name, mount path and
variables), so running before or after it yields one volume, one mount and one of each variable.
"""
from __future__ import annotations

from typing import Any

AUDIENCE = "api://AzureADTokenExchange"
TOKEN_VOLUME = "azure-identity-token"
TOKEN_DIR = "/var/run/secrets/azure/tokens"
TOKEN_FILE = f"{TOKEN_DIR}/azure-identity-token"
TOKEN_EXPIRY = 3600


def token_volume() -> dict[str, Any]:
    return {"name": TOKEN_VOLUME, "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {
        "audience": AUDIENCE, "expirationSeconds": TOKEN_EXPIRY, "path": "azure-identity-token"}}]}}


def inject(pod: dict[str, Any], *, client_id: str | None, tenant_id: str | None, authority_host: str) -> None:
    """Mutate ``pod`` in place: token volume, mounts and AZURE_* variables in every container.

    AZURE_CLIENT_ID is set when missing or empty; a non-empty value the pod already has is kept.
    Without ``client_id`` (Azure not reached in time) everything else is still injected.
    """
    spec = pod.setdefault("spec", {})
    volumes = spec.get("volumes") or []
    if not any(v.get("name") == TOKEN_VOLUME for v in volumes):
        volumes.append(token_volume())
    spec["volumes"] = volumes
    wanted = {"AZURE_CLIENT_ID": client_id, "AZURE_TENANT_ID": tenant_id,
              "AZURE_FEDERATED_TOKEN_FILE": TOKEN_FILE, "AZURE_AUTHORITY_HOST": authority_host}
    for key in ("initContainers", "containers"):
        for container in spec.get(key) or []:
            _inject_container(container, wanted)


def _inject_container(container: dict[str, Any], wanted: dict[str, str | None]) -> None:
    env = container.get("env") or []
    by_name = {e.get("name"): e for e in env}
    for name, value in wanted.items():
        if not value:
            continue
        have = by_name.get(name)
        if have is None:
            env.append({"name": name, "value": value})
        elif not have.get("value") and "valueFrom" not in have:
            have["value"] = value
    container["env"] = env
    mounts = container.get("volumeMounts") or []
    if not any(m.get("name") == TOKEN_VOLUME or m.get("mountPath") == TOKEN_DIR for m in mounts):
        mounts.append({"name": TOKEN_VOLUME, "mountPath": TOKEN_DIR, "readOnly": True})
    container["volumeMounts"] = mounts
