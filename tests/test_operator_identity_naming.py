"""Unit tests: identity/credential names, GUIDs, settings validation, the write pacer."""
from __future__ import annotations

import argparse
import re
import uuid

import pytest
from hypothesis import given, strategies as st

from clearance.operator import naming
from clearance.operator.azure.arm import ArmError, WritePacer
from clearance.operator.settings import Settings, SettingsError

AZURE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
texts = st.text(min_size=1, max_size=300)


def test_short_names_keep_key_and_gain_hash() -> None:
    name = naming.identity_name("shop", "orders-api", "aks1")
    assert re.fullmatch(r"clr-uai-shop-orders-api-aks1-[0-9a-f]{8}", name)
    assert naming.credential_name("shop", "orders-api", "aks1").startswith("clr-fic-shop-orders-api-aks1-")


@given(texts, texts, texts)
def test_names_fit_azure_limits_and_alphabet(ns: str, sa: str, cluster: str) -> None:
    if not (ns.strip() and sa.strip() and cluster.strip()):
        with pytest.raises(ValueError):
            naming.identity_name(ns, sa, cluster)
        return
    uai = naming.identity_name(ns, sa, cluster)
    fic = naming.credential_name(ns, sa, cluster)
    assert 3 <= len(uai) <= 128 and 3 <= len(fic) <= 120
    assert AZURE_NAME.match(uai) and AZURE_NAME.match(fic)
    assert uai == naming.identity_name(ns, sa, cluster)  # deterministic


def test_keys_that_clean_to_the_same_text_still_differ() -> None:
    # '-' between parts vs inside a part, and characters Azure refuses, must not collide.
    a = naming.identity_name("a-b", "c", "k")
    b = naming.identity_name("a", "b-c", "k")
    c = naming.identity_name("a.b", "c", "k")
    assert len({a, b, c}) == 3


def test_long_keys_are_cut_to_exact_limits() -> None:
    uai = naming.identity_name("n" * 63, "s" * 253, "c" * 63)
    fic = naming.credential_name("n" * 63, "s" * 253, "c" * 63)
    assert len(uai) == 128 and len(fic) == 120
    assert uai != naming.identity_name("n" * 63, "s" * 252 + "t", "c" * 63)


def test_deterministic_guid_is_stable_uuid() -> None:
    g = naming.deterministic_guid("sub", "scope", "principal")
    assert uuid.UUID(g).version == 5
    assert g == naming.deterministic_guid("sub", "scope", "principal")
    assert g != naming.deterministic_guid("sub", "scope", "other")
    assert naming.deterministic_guid("a", "bc") != naming.deterministic_guid("ab", "c")
    with pytest.raises(ValueError):
        naming.deterministic_guid()


def test_subject() -> None:
    assert naming.service_account_subject("ns", "sa") == "system:serviceaccount:ns:sa"


def _args(**kw: object) -> argparse.Namespace:
    base = dict(subscription_id="00000000-0000-0000-0000-000000000001", resource_group="rg", cluster_name="aks",
                location=None, tenant_id=None, oidc_issuer=None, arm_endpoint="https://127.0.0.1:1",
                allowed_scope=[], allow_wildcards=False, otterize_compat=True)
    base.update(kw)
    return argparse.Namespace(**base)


def test_settings_from_args() -> None:
    s = Settings.from_args(_args())
    assert s.resource_group_id == "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
    assert s.credential_scope == "https://127.0.0.1:1/.default"
    assert s.otterize_compat and s.location is None


@pytest.mark.parametrize("change, flag", [
    (dict(subscription_id=None), "--subscription-id"),
    (dict(resource_group=""), "--resource-group"),
    (dict(cluster_name="a/b"), "--cluster-name"),
    (dict(arm_endpoint="http://plain"), "--arm-endpoint"),
    (dict(oidc_issuer="not a url"), "--oidc-issuer"),
    (dict(allowed_scope=["/resourceGroups/x"]), "--allowed-scope"),
    (dict(authority_host="http://login.example"), "--authority-host"),
    (dict(arm_ca="/nonexistent/ca.pem"), "--arm-ca"),
])
def test_settings_errors_name_the_flag(change: dict, flag: str) -> None:
    with pytest.raises(SettingsError, match=re.escape(flag)):
        Settings.from_args(_args(**change))


def test_arm_ca_and_authority_host_flags(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    from clearance.cli import build_parser

    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    base = ["operator", "--subscription-id", "s1", "--resource-group", "rg", "--cluster-name", "c1"]
    monkeypatch.delenv("AZURE_AUTHORITY_HOST", raising=False)
    plain = Settings.from_args(build_parser().parse_args(base))
    assert plain.ca_bundle is None and plain.authority_host == "https://login.microsoftonline.com/"
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", "https://login.env.example/")
    assert Settings.from_args(build_parser().parse_args(base)).authority_host == "https://login.env.example/"
    given = Settings.from_args(build_parser().parse_args(
        base + ["--arm-ca", str(ca), "--authority-host", "https://login.flag.example/"]))
    assert given.ca_bundle == str(ca) and given.authority_host == "https://login.flag.example/"
    monkeypatch.setenv("CLEARANCE_ARM_CA", str(ca))
    monkeypatch.setenv("CLEARANCE_AUTHORITY_HOST", "https://login.clearance.example/")
    from_env = Settings.from_args(build_parser().parse_args(base))
    assert from_env.ca_bundle == str(ca) and from_env.authority_host == "https://login.clearance.example/"
    plan = build_parser().parse_args(["plan", "-f", "-", "--arm-ca", str(ca), "--authority-host", "https://a.example/"])
    assert plan.arm_ca == str(ca) and plan.authority_host == "https://a.example/"


def test_pacer_burst_then_debt() -> None:
    pacer = WritePacer(burst=3, rate=1.0)
    assert [pacer.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
    assert pacer.reserve() > 0.5  # the 4th write must wait about a second
    with pytest.raises(ValueError):
        WritePacer(burst=0)


def test_arm_error_transient_classes() -> None:
    assert ArmError(429, "TooManyRequests", "").transient
    assert ArmError(503, "ServiceUnavailable", "").transient
    assert ArmError(0, "ArmUnreachable", "").transient
    assert not ArmError(403, "AuthorizationFailed", "").transient
    assert not ArmError(404, "ResourceGroupNotFound", "").transient
    assert "AuthorizationFailed (403)" in str(ArmError(403, "AuthorizationFailed", "no"))


def test_custom_role_name_has_one_hash_over_the_full_key() -> None:
    from clearance.operator.azure.roles import ROLE_NAME_MAX, custom_role

    def role(principal: str = "p1", scope: str = "/subscriptions/s/resourceGroups/rg", intents: str = "shop/orders"):
        return custom_role(cluster="aks", principal_id=principal, intents=intents, scope=scope,
                           actions=["a/b/read"], data_actions=[])

    name = role().role_name
    assert re.fullmatch(r"clr-role-shop-orders-aks-[0-9a-f]{8}", name)
    assert name == role().role_name
    assert len({name, role(principal="p2").role_name, role(scope="/subscriptions/s").role_name}) == 3
    assert role(scope="/subscriptions/s/resourceGroups/RG").role_name == name  # scopes are case-insensitive
    assert len(role(intents="n" * 63 + "/" + "x" * 253).role_name) == ROLE_NAME_MAX
