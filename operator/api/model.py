"""The ClientIntents types: names, dataclasses, parsing from and rendering to documents."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

GROUP = "clearance.dev"
VERSION = "v1"
KIND = "ClientIntents"
PLURAL = "clientintents"
SINGULAR = "clientintents"
LIST_KIND = "ClientIntentsList"
SHORT_NAMES = ["clrintents"]
OTTERIZE_GROUP = "k8s.otterize.com"
OTTERIZE_VERSION = "v2beta1"
OTTERIZE_VERSIONS = ("v2beta1", "v2alpha1")

API_VERSION = f"{GROUP}/{VERSION}"
OTTERIZE_API_VERSION = f"{OTTERIZE_GROUP}/{OTTERIZE_VERSION}"
ACCEPTED_API_VERSIONS = (API_VERSION,) + tuple(f"{OTTERIZE_GROUP}/{v}" for v in OTTERIZE_VERSIONS)

#: The kinds a v2-shape target may hold; only ``azure`` is acted on.
TARGET_KINDS = ("kubernetes", "service", "kafka", "sql", "aws", "gcp", "azure", "internet")

#: keyVaultPolicy field -> the permissions Azure accepts there (Otterize's enums).
KEY_VAULT_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "certificatePermissions": (
        "all", "backup", "create", "delete", "deleteissuers", "get", "getissuers", "import", "list",
        "listissuers", "managecontacts", "manageissuers", "purge", "recover", "restore", "setissuers", "update",
    ),
    "keyPermissions": (
        "all", "backup", "create", "decrypt", "delete", "encrypt", "get", "getrotationpolicy", "import", "list",
        "purge", "recover", "release", "restore", "rotate", "setrotationpolicy", "sign", "unwrapkey", "update",
        "verify", "wrapkey",
    ),
    "secretPermissions": ("all", "backup", "delete", "get", "list", "purge", "recover", "restore", "set"),
    "storagePermissions": (
        "all", "backup", "delete", "deletesas", "get", "getsas", "list", "listsas", "purge", "recover",
        "regeneratekey", "restore", "set", "setsas", "update",
    ),
}

Format = Literal["clearance", "otterize"]


class InvalidClientIntents(ValueError):
    """A ClientIntents document that cannot be accepted; ``reason`` names the bad field."""

    def __init__(self, reason: str, errors: list[str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or [reason]


@dataclass
class KeyVaultPolicy:
    """Key Vault access-policy permissions, as Azure's access-policy entry names them."""

    certificate_permissions: list[str] = field(default_factory=list)
    key_permissions: list[str] = field(default_factory=list)
    secret_permissions: list[str] = field(default_factory=list)
    storage_permissions: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        return not (self.certificate_permissions or self.key_permissions
                    or self.secret_permissions or self.storage_permissions)

    def to_document(self) -> dict[str, list[str]]:
        doc: dict[str, list[str]] = {}
        for key, values in (
            ("certificatePermissions", self.certificate_permissions),
            ("keyPermissions", self.key_permissions),
            ("secretPermissions", self.secret_permissions),
            ("storagePermissions", self.storage_permissions),
        ):
            if values:
                doc[key] = sorted(set(values))
        return doc


@dataclass
class AzureTarget:
    """One Azure scope and what the workload may do there."""

    scope: str
    roles: list[str] = field(default_factory=list)
    actions: list[str] = field(default_factory=list)
    data_actions: list[str] = field(default_factory=list)
    key_vault_policy: KeyVaultPolicy | None = None

    @property
    def wants_custom_role(self) -> bool:
        return bool(self.actions or self.data_actions)

    def to_document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"scope": self.scope}
        if self.roles:
            doc["roles"] = sorted(set(self.roles))
        if self.actions:
            doc["actions"] = sorted(set(self.actions))
        if self.data_actions:
            doc["dataActions"] = sorted(set(self.data_actions))
        if self.key_vault_policy is not None and not self.key_vault_policy.is_empty():
            doc["keyVaultPolicy"] = self.key_vault_policy.to_document()
        return doc


@dataclass
class Target:
    """One entry of ``spec.targets``: exactly one kind. Non-Azure kinds are kept raw."""

    kind: str
    azure: AzureTarget | None = None
    raw: Any = None

    @classmethod
    def of_azure(cls, azure: AzureTarget) -> Target:
        return cls(kind="azure", azure=azure)

    @property
    def supported(self) -> bool:
        return self.kind == "azure" and self.azure is not None

    def to_document(self) -> dict[str, Any]:
        if self.azure is not None:
            return {"azure": self.azure.to_document()}
        return {self.kind: self.raw}


@dataclass
class Workload:
    """The client workload: its name and (optionally) its kind, e.g. Deployment."""

    name: str
    kind: str = ""


@dataclass
class ClientIntents:
    """A namespaced ClientIntents: the Azure targets one workload may use."""

    name: str
    namespace: str
    workload: Workload
    targets: list[Target] = field(default_factory=list)

    @property
    def azure_targets(self) -> list[tuple[int, AzureTarget]]:
        """(index in ``targets``, target) for each Azure target."""
        return [(i, t.azure) for i, t in enumerate(self.targets) if t.azure is not None]

    def to_document(self, format: Format = "clearance") -> dict[str, Any]:
        """A manifest in the chosen API shape; the same object always renders the same document."""
        if format not in ("clearance", "otterize"):
            raise ValueError(f"format must be 'clearance' or 'otterize', not {format!r}")
        workload: dict[str, str] = {"name": self.workload.name}
        if self.workload.kind:
            workload["kind"] = self.workload.kind
        return {
            "apiVersion": API_VERSION if format == "clearance" else OTTERIZE_API_VERSION,
            "kind": KIND,
            "metadata": {"name": self.name, "namespace": self.namespace},
            "spec": {"workload": workload, "targets": [t.to_document() for t in self.targets]},
        }


def parse_client_intents(doc: Any) -> ClientIntents:
    """Turn a clearance.dev/v1 or k8s.otterize.com v2beta1/v2alpha1 document into a ClientIntents.

    Raises ``InvalidClientIntents`` naming the first bad field (all of them in ``.errors``).
    """
    from clearance.operator.api.validation import check_document

    intents, errors = check_document(doc)
    if errors or intents is None:
        errors = errors or ["document: not a ClientIntents"]
        raise InvalidClientIntents(errors[0] if len(errors) == 1 else "; ".join(errors), errors)
    return intents


def is_client_intents(doc: Mapping[str, Any]) -> bool:
    """True when ``doc`` claims to be a ClientIntents of an accepted API version."""
    return doc.get("kind") == KIND and doc.get("apiVersion") in ACCEPTED_API_VERSIONS
