"""The ClientIntents API: types, parsing, validation, the CRD schema and scope comparison.

This is the operator's public API; the mapper imports it to produce ClientIntents documents.
"""
from __future__ import annotations

from clearance.operator.api.documents import DocumentError, YamlDocument, load_documents
from clearance.operator.api.model import (
    ACCEPTED_API_VERSIONS,
    API_VERSION,
    GROUP,
    KEY_VAULT_PERMISSIONS,
    KIND,
    OTTERIZE_API_VERSION,
    OTTERIZE_GROUP,
    OTTERIZE_VERSION,
    OTTERIZE_VERSIONS,
    PLURAL,
    TARGET_KINDS,
    VERSION,
    AzureTarget,
    ClientIntents,
    InvalidClientIntents,
    KeyVaultPolicy,
    Target,
    Workload,
    is_client_intents,
    parse_client_intents,
)
from clearance.operator.api.schema import CONDITION_TYPES, crd_manifest, crd_yaml
from clearance.operator.api.scopes import scope_key
from clearance.operator.api.validation import validate_document

__all__ = [
    "ACCEPTED_API_VERSIONS", "API_VERSION", "CONDITION_TYPES", "DocumentError", "GROUP", "KEY_VAULT_PERMISSIONS", "KIND",
    "OTTERIZE_API_VERSION", "OTTERIZE_GROUP", "OTTERIZE_VERSION", "OTTERIZE_VERSIONS", "PLURAL",
    "TARGET_KINDS", "VERSION", "AzureTarget", "ClientIntents", "InvalidClientIntents", "KeyVaultPolicy",
    "Target", "Workload", "crd_manifest", "crd_yaml", "is_client_intents", "parse_client_intents",
    "YamlDocument", "load_documents", "scope_key", "validate_document",
]
