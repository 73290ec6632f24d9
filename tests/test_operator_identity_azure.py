"""The Azure layer against the ARM test bed over HTTPS with the real SDK: identities, credentials,
retries, pacing, defaults. No Kubernetes here."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY

from clearance.operator import naming
from clearance.operator.azure.arm import ArmClients, ArmError, WritePacer, resolve_defaults
from clearance.operator.azure.identities import ForeignIdentityError, Identities
from clearance.operator.settings import Settings
from test_operator_identity_harness import bed_settings, fic_puts, fics_of, identity_of, identity_puts


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def _with(arm_server: Any, settings: Settings, fn: Any, **arm_kw: Any) -> Any:
    arm = ArmClients(settings, credential=arm_server.credential(), **arm_kw)
    try:
        return await fn(Identities(arm))
    finally:
        await arm.close()


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_ensure_creates_tagged_identity_and_credential(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    identity = run(_with(arm_server, s, lambda ids: ids.ensure("shop", "orders")))
    body = identity_of(arm_server, s, "shop", "orders")
    assert body is not None and body["properties"]["clientId"] == identity.client_id
    assert body["tags"]["clearance-managed-by"] == "clearance" and body["tags"]["clearance-cluster"] == s.cluster_name
    assert body["location"] == arm_server.location
    [fic] = fics_of(arm_server, s, "shop", "orders")
    assert fic["properties"]["issuer"] == arm_server.oidc_issuer
    assert fic["properties"]["subject"] == "system:serviceaccount:shop:orders"
    assert fic["properties"]["audiences"] == ["api://AzureADTokenExchange"]
    assert fic["name"] == naming.credential_name("shop", "orders", s.cluster_name)
    assert identity.managed and identity.tenant_id == arm_server.tenant_id


def test_ensure_is_idempotent_across_processes(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    first = run(_with(arm_server, s, lambda ids: ids.ensure("shop", "orders")))
    second = run(_with(arm_server, s, lambda ids: ids.ensure("shop", "orders")))  # a "restarted operator"
    assert first == second
    assert len(identity_puts(arm_server, s, "shop", "orders")) == 1
    assert len(fic_puts(arm_server, s, "shop", "orders")) == 1


def test_concurrent_ensures_one_write_each(arm_server: Any) -> None:
    s = bed_settings(arm_server)

    async def many(ids: Identities) -> list[Any]:
        return await asyncio.gather(*(ids.ensure("shop", "orders") for _ in range(10)))

    results = run(_with(arm_server, s, many))
    assert len({r.client_id for r in results}) == 1
    assert len(identity_puts(arm_server, s, "shop", "orders")) == 1
    assert len(fic_puts(arm_server, s, "shop", "orders")) == 1


def test_find_and_delete_in_order(arm_server: Any) -> None:
    s = bed_settings(arm_server)

    async def flow(ids: Identities) -> tuple[Any, Any, bool, bool, Any]:
        before = await ids.find("shop", "orders")
        made = await ids.ensure("shop", "orders")
        deleted = await ids.delete("shop", "orders")
        again = await ids.delete("shop", "orders")
        return before, made, deleted, again, await ids.find("shop", "orders")

    before, made, deleted, again, after = run(_with(arm_server, s, flow))
    assert before is None and made.client_id and deleted and not again and after is None
    deletes = arm_server.calls(method="DELETE", path_contains="userAssignedIdentities")
    assert "federatedIdentityCredentials" in deletes[0].path
    assert "federatedIdentityCredentials" not in deletes[1].path
    assert identity_of(arm_server, s, "shop", "orders") is None and not fics_of(arm_server, s, "shop", "orders")


def test_foreign_identity_is_never_changed_or_deleted(arm_server: Any) -> None:
    from azure.mgmt.msi import ManagedServiceIdentityClient
    from azure.mgmt.msi.models import Identity as IdentityModel

    s = bed_settings(arm_server)
    name = naming.identity_name("shop", "orders", s.cluster_name)
    msi = ManagedServiceIdentityClient(arm_server.credential(), s.subscription_id, **arm_server.client_kwargs())
    msi.user_assigned_identities.create_or_update(s.resource_group, name, IdentityModel(location="eastus", tags={"owner": "me"}))
    puts_before = len(arm_server.calls(method="PUT"))

    async def flow(ids: Identities) -> bool:
        with pytest.raises(ForeignIdentityError) as err:
            await ids.ensure("shop", "orders")
        assert err.value.code == "IdentityNotManagedByClearance"
        return await ids.delete("shop", "orders")

    assert run(_with(arm_server, s, flow)) is False
    assert len(arm_server.calls(method="PUT")) == puts_before
    assert not arm_server.calls(method="DELETE")
    assert identity_of(arm_server, s, "shop", "orders")["tags"] == {"owner": "me"}


def test_429_waits_for_retry_after_then_succeeds(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    arm_server.faults.fail_next(1, status=429, method="PUT", path="userAssignedIdentities/clr-uai-[^/]*$", retry_after=1)
    retries = metric("clearance_operator_arm_retries_total", reason="429")
    run(_with(arm_server, s, lambda ids: ids.ensure("shop", "orders")))
    statuses = [c.status for c in identity_puts(arm_server, s, "shop", "orders")]
    assert statuses[0] == 429 and statuses[-1] in (200, 201) and len(statuses) == 2
    assert metric("clearance_operator_arm_retries_total", reason="429") == retries + 1
    assert metric("clearance_operator_arm_calls_total", verb="PUT", status="429") >= 1


def test_5xx_retried_with_backoff(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    arm_server.faults.fail_next(2, status=503, method="GET", path="userAssignedIdentities")
    arm_server.faults.fail_next(1, status=500, method="PUT", path="federatedIdentityCredentials")
    identity = run(_with(arm_server, s, lambda ids: ids.ensure("shop", "orders")))
    assert identity.client_id
    assert [c.status for c in fic_puts(arm_server, s, "shop", "orders")][0] == 500
    assert len(fics_of(arm_server, s, "shop", "orders")) == 1


def test_concurrent_credential_409_is_retried(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    arm_server.faults.fail_next(2, status=409, method="PUT", path="federatedIdentityCredentials",
                                code="ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity")
    run(_with(arm_server, s, lambda ids: ids.ensure("shop", "orders")))
    assert [c.status for c in fic_puts(arm_server, s, "shop", "orders")][:2] == [409, 409]
    assert len(fics_of(arm_server, s, "shop", "orders")) == 1


def test_permanent_error_carries_arm_code(arm_server: Any) -> None:
    s = bed_settings(arm_server, resource_group="no-such-rg")

    async def flow(ids: Identities) -> ArmError:
        with pytest.raises(Exception) as err:
            await ids.ensure("shop", "orders")
        return ArmError.from_exception(err.value)

    error = run(_with(arm_server, s, flow))
    assert error.status == 404 and error.code == "ResourceGroupNotFound" and not error.transient


def test_unreachable_is_transient(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    arm_server.faults.unreachable = True

    async def flow(ids: Identities) -> ArmError:
        with pytest.raises(Exception) as err:
            await asyncio.wait_for(ids.ensure("shop", "orders"), 60)
        return ArmError.from_exception(err.value)

    import clearance.operator.azure.arm as arm_mod
    old = arm_mod.RETRY_TOTAL, arm_mod.RETRY_BACKOFF
    arm_mod.RETRY_TOTAL, arm_mod.RETRY_BACKOFF = 1, 0.1  # module settings, not SDK internals
    try:
        error = run(_with(arm_server, s, flow))
    finally:
        arm_mod.RETRY_TOTAL, arm_mod.RETRY_BACKOFF = old
    assert error.transient and error.code == "ArmUnreachable"


def test_resolve_defaults_from_azure(arm_server: Any) -> None:
    s = bed_settings(arm_server, location=None, tenant_id=None, oidc_issuer=None)

    async def flow() -> Settings:
        arm = ArmClients(s, credential=arm_server.credential())
        try:
            return await resolve_defaults(s, arm)
        finally:
            await arm.close()

    resolved = run(flow())
    assert resolved.location == arm_server.location
    assert resolved.tenant_id == arm_server.tenant_id
    assert resolved.oidc_issuer == arm_server.oidc_issuer


def test_pacer_keeps_writes_under_the_bucket(arm_server: Any) -> None:
    s = bed_settings(arm_server)
    # The bed's bucket is twice the pacer's in burst and rate: on a loaded machine paced writes can still
    # arrive bunched, but 16 unpaced ones (8 identities + 8 credentials at once) would overflow it.
    arm_server.faults.throttle(burst=8, refill_per_s=10)

    async def many(ids: Identities) -> None:
        await asyncio.gather(*(ids.ensure("shop", f"sa{i}") for i in range(8)))

    run(_with(arm_server, s, many, pacer=WritePacer(burst=4, rate=5)))
    assert not arm_server.calls(status=429)
    assert len(arm_server.calls(method="PUT", status=None)) == 16


def test_arm_ca_and_authority_host_flags_reach_azure(arm_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """--arm-ca and --authority-host alone (no injected credential) are enough to talk to a private ARM."""
    from clearance.cli import build_parser

    for name, value in (("AZURE_TENANT_ID", arm_server.tenant_id), ("AZURE_CLIENT_ID", "client"),
                        ("AZURE_CLIENT_SECRET", "secret")):
        monkeypatch.setenv(name, value)
    for name in ("AZURE_AUTHORITY_HOST", "AZURE_FEDERATED_TOKEN_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLEARANCE_ARM_CA", str(arm_server.ca_cert))
    args = build_parser().parse_args([
        "operator", "--subscription-id", arm_server.subscription_id, "--resource-group", arm_server.resource_group,
        "--cluster-name", arm_server.cluster_name, "--arm-endpoint", arm_server.url,
        "--authority-host", arm_server.url + "/"])
    settings = Settings.from_args(args)
    assert settings.ca_bundle == str(arm_server.ca_cert)

    async def go() -> Settings:
        arm = ArmClients(settings)
        try:
            return await resolve_defaults(settings, arm)
        finally:
            await arm.close()

    resolved = asyncio.run(go())
    assert resolved.tenant_id == arm_server.tenant_id and resolved.oidc_issuer == arm_server.oidc_issuer
    assert arm_server.calls(method="POST", path_contains="/oauth2/v2.0/token")
