"""The operator's Azure settings, from the CLI flags of ``clearance operator`` / ``plan``.

``Settings.from_args(args)`` validates what the user gave; ``resolve_defaults(settings, arm)``
(async, in ``clearance.operator.azure.arm``) fills location, tenant and OIDC issuer from Azure
when they were not given.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
from dataclasses import dataclass
from urllib.parse import urlparse

PUBLIC_ARM = "https://management.azure.com"
PUBLIC_AUTHORITY = "https://login.microsoftonline.com/"
_NAME = re.compile(r"^[-\w._()]{1,90}$")


class SettingsError(ValueError):
    """A flag is missing or malformed; the message names the flag."""


@dataclass(frozen=True)
class Settings:
    """Everything the Azure layer needs to know about where and how to act.

    ``location``, ``tenant_id`` and ``oidc_issuer`` may be None until resolved from Azure.
    """

    subscription_id: str
    resource_group: str
    cluster_name: str
    location: str | None = None
    tenant_id: str | None = None
    oidc_issuer: str | None = None
    arm_endpoint: str = PUBLIC_ARM
    authority_host: str = PUBLIC_AUTHORITY
    ca_bundle: str | None = None  # --arm-ca; default REQUESTS_CA_BUNDLE / system store
    otterize_compat: bool = False
    allowed_scopes: tuple[str, ...] = ()
    allow_wildcards: bool = False
    # Client-side token bucket for ARM writes, kept 5% under ARM's own (200 burst, 10/s): at exactly
    # ARM's rate, clock skew between the two buckets still gives occasional 429s.
    write_burst: int = 190
    write_rate: float = 9.5
    webhook_deadline: float = 8.0  # seconds the admission webhook waits for Azure
    # Seconds a target shows Propagating after Clearance created or changed its grants (Azure RBAC
    # may take up to ~10 minutes to apply them everywhere); 0 turns it off.
    propagation_window: float = 600.0

    @property
    def credential_scope(self) -> str:
        """The OAuth scope for ARM tokens: ``<arm endpoint>/.default``."""
        return self.arm_endpoint.rstrip("/") + "/.default"

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def with_(self, **changes: object) -> "Settings":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "Settings":
        """Build and validate from parsed flags (missing optional flags take their defaults)."""
        get = lambda name, default=None: getattr(args, name, default)  # noqa: E731
        return cls.build(
            subscription_id=get("subscription_id"),
            resource_group=get("resource_group"),
            cluster_name=get("cluster_name"),
            location=get("location"),
            tenant_id=get("tenant_id"),
            oidc_issuer=get("oidc_issuer"),
            arm_endpoint=get("arm_endpoint") or PUBLIC_ARM,
            authority_host=get("authority_host") or os.environ.get("AZURE_AUTHORITY_HOST") or PUBLIC_AUTHORITY,
            ca_bundle=get("arm_ca") or None,
            otterize_compat=bool(get("otterize_compat", False)),
            allowed_scopes=tuple(get("allowed_scope") or ()),
            allow_wildcards=bool(get("allow_wildcards", False)),
            propagation_window=get("propagation_window", None),
        )

    @classmethod
    def build(cls, **kw: object) -> "Settings":
        """Construct with validation; raises SettingsError naming the bad flag."""
        for key, flag in (("subscription_id", "--subscription-id"), ("resource_group", "--resource-group"),
                          ("cluster_name", "--cluster-name")):
            value = kw.get(key)
            if not isinstance(value, str) or not value.strip():
                raise SettingsError(f"{flag} is required (or set CLEARANCE_{key.upper()})")
            if not _NAME.match(value.strip()):
                raise SettingsError(f"{flag} {value!r} holds characters Azure does not allow")
            kw[key] = value.strip()
        for key, flag in (("arm_endpoint", "--arm-endpoint"), ("oidc_issuer", "--oidc-issuer"),
                          ("authority_host", "--authority-host")):
            value = kw.get(key)
            if value is None:
                continue
            parsed = urlparse(str(value))
            if parsed.scheme != "https" or not parsed.netloc:
                raise SettingsError(f"{flag} must be an https:// URL, got {value!r}")
        ca_bundle = kw.get("ca_bundle")
        if ca_bundle is not None:
            if not os.path.isfile(str(ca_bundle)) or not os.access(str(ca_bundle), os.R_OK):
                raise SettingsError(f"--arm-ca {ca_bundle!r} is not a readable file")
        for scope in kw.get("allowed_scopes") or ():  # type: ignore[union-attr]
            if not str(scope).startswith("/subscriptions/"):
                raise SettingsError(f"--allowed-scope {scope!r} must start with /subscriptions/")
        window = kw.get("propagation_window", None)
        if window is None:
            kw.pop("propagation_window", None)
        else:
            try:
                kw["propagation_window"] = float(window)  # type: ignore[arg-type]
            except (TypeError, ValueError):
                raise SettingsError(f"--propagation-window must be a number of seconds, got {window!r}") from None
            if not 0 <= kw["propagation_window"] <= 86400:  # type: ignore[operator]
                raise SettingsError(f"--propagation-window must be between 0 and 86400 seconds, got {window!r}")
        for key in ("location", "tenant_id"):
            if kw.get(key) is not None and not str(kw[key]).strip():
                kw[key] = None
        return cls(**kw)  # type: ignore[arg-type]
