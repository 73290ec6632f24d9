"""The labels, annotations and finalizer the identity reconciler reads and writes."""
from __future__ import annotations

from collections.abc import Mapping

POD_LABEL = "clearance.dev/azure-workload-identity"
OTTERIZE_POD_LABEL = "credentials-operator.otterize.com/create-azure-workload-identity"
SA_MANAGED_LABEL = "clearance.dev/azure-identity-managed"
SA_CLIENT_ID = "azure.workload.identity/client-id"
SA_TENANT_ID = "azure.workload.identity/tenant-id"
SA_STATUS = "clearance.dev/azure-identity-status"
FINALIZER = "clearance.dev/finalizer"  # kopf's persistence finalizer for the whole operator


def wants_identity(labels: Mapping[str, str] | None, otterize_compat: bool) -> bool:
    """True for a pod opted in by Clearance's label (or Otterize's, with compatibility on)."""
    labels = labels or {}
    if str(labels.get(POD_LABEL, "")).lower() == "true":
        return True
    return otterize_compat and str(labels.get(OTTERIZE_POD_LABEL, "")).lower() == "true"


def service_account_of(pod: Mapping) -> str:
    """The pod's ServiceAccount name (``default`` when unset, as the API server does)."""
    spec = pod.get("spec") or {}
    return spec.get("serviceAccountName") or spec.get("serviceAccount") or "default"
