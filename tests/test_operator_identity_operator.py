"""The identity operator end to end: kopf against the Kubernetes API bed, the real SDK against the
ARM bed over HTTPS."""
from __future__ import annotations

from typing import Any

from clearance.operator.identity import labels as L
from test_operator_identity_harness import (
    core, ensure_namespace, fic_puts, fics_of, identity_of, identity_puts, make_pod, make_sa, operator_factory,
    sa_annotation, sa_gone, sa_meta, wait_for,
)

__all__ = ["operator_factory"]


def _setup(kube_server: Any, ns: str = "shop", sas: tuple[str, ...] = ("orders",)) -> Any:
    api = core(kube_server)
    ensure_namespace(api, ns)
    for sa in sas:
        make_sa(api, ns, sa)
    return api


def test_labelled_pod_gets_identity_credential_and_annotations(kube_server: Any, arm_server: Any,
                                                                operator_factory: Any) -> None:
    op = operator_factory()
    api = _setup(kube_server)
    make_pod(api, "shop", "orders-1", "orders")
    client_id = wait_for(lambda: sa_annotation(api, "shop", "orders"), "ServiceAccount annotated")
    body = identity_of(arm_server, op.settings, "shop", "orders")
    assert body["properties"]["clientId"] == client_id
    assert body["tags"]["clearance-managed-by"] == "clearance"
    [fic] = fics_of(arm_server, op.settings, "shop", "orders")
    assert fic["properties"]["subject"] == "system:serviceaccount:shop:orders"
    meta = sa_meta(api, "shop", "orders")
    assert meta["annotations"][L.SA_TENANT_ID] == arm_server.tenant_id
    assert L.FINALIZER in meta["finalizers"]
    assert meta["labels"][L.SA_MANAGED_LABEL] == "true"


def test_two_pods_one_service_account_one_identity(kube_server: Any, arm_server: Any, operator_factory: Any) -> None:
    op = operator_factory()
    api = _setup(kube_server)
    make_pod(api, "shop", "orders-1", "orders")
    make_pod(api, "shop", "orders-2", "orders")
    wait_for(lambda: sa_annotation(api, "shop", "orders"), "ServiceAccount annotated")
    assert len(identity_puts(arm_server, op.settings, "shop", "orders")) == 1
    assert len(fic_puts(arm_server, op.settings, "shop", "orders")) == 1
    assert len(arm_server.state.identities) == 1


def test_unlabelled_and_otterize_labels(kube_server: Any, arm_server: Any, operator_factory: Any) -> None:
    op = operator_factory()  # compatibility off
    api = _setup(kube_server, sas=("plain", "otter", "marker"))
    make_pod(api, "shop", "plain-1", "plain", labels={})
    make_pod(api, "shop", "otter-1", "otter", labels={L.OTTERIZE_POD_LABEL: "true"})
    make_pod(api, "shop", "marker-1", "marker")  # processed after the two above: a convergence marker
    wait_for(lambda: sa_annotation(api, "shop", "marker"), "marker ServiceAccount annotated")
    assert identity_of(arm_server, op.settings, "shop", "plain") is None
    assert identity_of(arm_server, op.settings, "shop", "otter") is None
    op.stop()
    compat = operator_factory(otterize_compat=True)
    wait_for(lambda: sa_annotation(api, "shop", "otter"), "Otterize-labelled pod handled with --otterize-compat")
    assert identity_of(arm_server, compat.settings, "shop", "plain") is None


def test_service_account_deletion_cleans_up_in_order(kube_server: Any, arm_server: Any, operator_factory: Any) -> None:
    op = operator_factory()
    api = _setup(kube_server, sas=("orders", "keep"))
    make_pod(api, "shop", "orders-1", "orders")
    make_pod(api, "shop", "keep-1", "keep")
    wait_for(lambda: sa_annotation(api, "shop", "orders"), "orders annotated")
    wait_for(lambda: sa_annotation(api, "shop", "keep"), "keep annotated")
    api.delete_namespaced_pod("keep-1", "shop")  # losing its last pod keeps the identity
    api.delete_namespaced_service_account("orders", "shop")
    wait_for(lambda: sa_gone(api, "shop", "orders"), "ServiceAccount finalized and gone")
    assert identity_of(arm_server, op.settings, "shop", "orders") is None
    assert not fics_of(arm_server, op.settings, "shop", "orders")
    deletes = [c for c in arm_server.calls(method="DELETE", path_contains="userAssignedIdentities") if c.status < 300]
    assert len(deletes) == 2
    assert "federatedIdentityCredentials" in deletes[0].path and "federatedIdentityCredentials" not in deletes[1].path
    assert identity_of(arm_server, op.settings, "shop", "keep") is not None


def test_foreign_identity_untouched_and_reported(kube_server: Any, arm_server: Any, operator_factory: Any) -> None:
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.msi.models import Identity as IdentityModel

    from clearance.operator import naming

    op = operator_factory()
    msi = ManagedServiceIdentityClient(arm_server.credential(), op.settings.subscription_id, **arm_server.client_kwargs())
    taken = naming.identity_name("shop", "orders", op.settings.cluster_name)
    msi.user_assigned_identities.create_or_update(op.settings.resource_group, taken, IdentityModel(location="eastus"))
    msi.user_assigned_identities.create_or_update(op.settings.resource_group, "someone-elses", IdentityModel(location="eastus"))
    api = _setup(kube_server, sas=("orders", "other"))
    make_pod(api, "shop", "orders-1", "orders")
    make_pod(api, "shop", "other-1", "other")
    status = wait_for(lambda: sa_annotation(api, "shop", "orders", L.SA_STATUS), "failure recorded on the SA")
    assert "IdentityNotManagedByClearance" in status
    wait_for(lambda: sa_annotation(api, "shop", "other"), "the operator kept serving other ServiceAccounts")
    events = kube_server.list("v1", "Event", "shop")
    assert any(e.get("reason") == "AzureIdentityFailed" and e.get("type") == "Warning" for e in events)
    api.delete_namespaced_service_account("other", "shop")
    wait_for(lambda: sa_gone(api, "shop", "other"), "other ServiceAccount gone")
    assert arm_server.identity(taken) is not None and arm_server.identity("someone-elses") is not None
    assert not arm_server.calls(method="DELETE", path_contains=taken)


def test_faults_429_5xx_409_converge(kube_server: Any, arm_server: Any, operator_factory: Any) -> None:
    arm_server.faults.fail_next(1, status=429, method="PUT", path="userAssignedIdentities/clr-uai-[^/]*$", retry_after=1)
    arm_server.faults.fail_next(2, status=502, method="GET", path="userAssignedIdentities")
    arm_server.faults.fail_next(1, status=409, method="PUT", path="federatedIdentityCredentials",
                                code="ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity")
    op = operator_factory()
    api = _setup(kube_server)
    make_pod(api, "shop", "orders-1", "orders")
    wait_for(lambda: sa_annotation(api, "shop", "orders"), "ServiceAccount annotated despite faults")
    assert len(identity_puts(arm_server, op.settings, "shop", "orders", status=201)) == 1
    assert len(fics_of(arm_server, op.settings, "shop", "orders")) == 1
    assert arm_server.calls(status=429) and arm_server.calls(status=409) and arm_server.calls(status=502)


def test_restart_midway_converges_without_duplicates(kube_server: Any, arm_server: Any, operator_factory: Any) -> None:
    arm_server.faults.fail_next(1000, status=500, method="PUT", path="federatedIdentityCredentials")
    first = operator_factory()
    api = _setup(kube_server)
    make_pod(api, "shop", "orders-1", "orders")
    wait_for(lambda: identity_of(arm_server, first.settings, "shop", "orders"), "identity created by the first operator")
    wait_for(lambda: fic_puts(arm_server, first.settings, "shop", "orders"), "credential attempted")
    first.stop()
    assert sa_annotation(api, "shop", "orders") is None
    arm_server.faults.clear()
    second = operator_factory()
    wait_for(lambda: sa_annotation(api, "shop", "orders"), "second operator finished the job")
    assert len(identity_puts(arm_server, second.settings, "shop", "orders")) == 1
    assert len(arm_server.state.identities) == 1
    assert len(fics_of(arm_server, second.settings, "shop", "orders")) == 1
