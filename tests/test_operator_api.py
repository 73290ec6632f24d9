"""The ClientIntents API model: parsing, validation, rendering, CRD schema, scope keys."""
from __future__ import annotations

import copy
import io
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clearance.operator.api import (
    GROUP,
    KIND,
    OTTERIZE_GROUP,
    PLURAL,
    VERSION,
    AzureTarget,
    ClientIntents,
    InvalidClientIntents,
    KeyVaultPolicy,
    Target,
    Workload,
    crd_manifest,
    crd_yaml,
    parse_client_intents,
    scope_key,
    validate_document,
)
from clearance.operator.api.schema import AZURE_RULES

ROOT = Path(__file__).resolve().parent.parent
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"


def doc(targets: list, api: str = f"{GROUP}/{VERSION}", **meta: str) -> dict:
    return {
        "apiVersion": api,
        "kind": KIND,
        "metadata": {"name": meta.get("name", "orders"), "namespace": meta.get("namespace", "shop")},
        "spec": {"workload": {"name": "orders-api", "kind": "Deployment"}, "targets": targets},
    }


TUTORIAL = doc([
    {"azure": {
        "scope": "/providers/Microsoft.Storage/storageAccounts/shopdata/blobServices/default/containers/invoices",
        "actions": ["Microsoft.Storage/storageAccounts/blobServices/containers/read"],
        "dataActions": [BLOB, "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"],
    }},
    {"azure": {"scope": "/resourceGroups/shop-rg/providers/Microsoft.ServiceBus/namespaces/bus",
               "roles": ["Azure Service Bus Data Sender"]}},
    {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv",
               "keyVaultPolicy": {"secretPermissions": ["get", "list"], "keyPermissions": ["decrypt"]}}},
    {"kubernetes": {"name": "payments", "kind": "Service"}},
])


@pytest.mark.parametrize("api", [f"{GROUP}/{VERSION}", f"{OTTERIZE_GROUP}/v2beta1", f"{OTTERIZE_GROUP}/v2alpha1"])
def test_parses_every_accepted_version(api: str) -> None:
    intents = parse_client_intents({**TUTORIAL, "apiVersion": api})
    assert intents.name == "orders" and intents.namespace == "shop"
    assert intents.workload == Workload("orders-api", "Deployment")
    kinds = [t.kind for t in intents.targets]
    assert kinds == ["azure", "azure", "azure", "kubernetes"]
    assert [t.supported for t in intents.targets] == [True, True, True, False]
    custom = intents.targets[0].azure
    assert custom is not None and custom.wants_custom_role and custom.data_actions[0] == BLOB
    assert intents.targets[1].azure.roles == ["Azure Service Bus Data Sender"]
    policy = intents.targets[2].azure.key_vault_policy
    assert policy == KeyVaultPolicy(secret_permissions=["get", "list"], key_permissions=["decrypt"])
    assert intents.targets[3].raw == {"name": "payments", "kind": "Service"}
    assert [i for i, _ in intents.azure_targets] == [0, 1, 2]


def test_round_trip_is_deterministic_in_both_formats() -> None:
    intents = parse_client_intents(TUTORIAL)
    for fmt, api in (("clearance", f"{GROUP}/{VERSION}"), ("otterize", f"{OTTERIZE_GROUP}/v2beta1")):
        out = intents.to_document(format=fmt)
        assert out["apiVersion"] == api
        assert parse_client_intents(out) == intents
        assert yaml.safe_dump(out) == yaml.safe_dump(parse_client_intents(out).to_document(format=fmt))
    with pytest.raises(ValueError):
        intents.to_document(format="v1alpha3")  # type: ignore[arg-type]


def test_to_document_sorts_and_dedupes_permissions() -> None:
    a = ClientIntents("x", "ns", Workload("w"), [Target.of_azure(AzureTarget("/subscriptions/s", actions=["b/a", "a/b", "b/a"]))])
    b = ClientIntents("x", "ns", Workload("w"), [Target.of_azure(AzureTarget("/subscriptions/s", actions=["a/b", "b/a"]))])
    assert a.to_document() == b.to_document()
    assert a.to_document()["spec"]["targets"][0]["azure"]["actions"] == ["a/b", "b/a"]
    assert "kind" not in a.to_document()["spec"]["workload"]


def test_missing_namespace_means_default() -> None:
    d = copy.deepcopy(TUTORIAL)
    del d["metadata"]["namespace"]
    assert parse_client_intents(d).namespace == "default"


BAD = [
    (lambda d: d.update(apiVersion="k8s.otterize.com/v1alpha3"), "apiVersion"),
    (lambda d: d.update(kind="Pod"), "kind"),
    (lambda d: d["metadata"].pop("name"), "metadata.name"),
    (lambda d: d["metadata"].update(name="Bad_Name"), "metadata.name"),
    (lambda d: d["metadata"].update(namespace="a/b"), "metadata.namespace"),
    (lambda d: d.pop("spec"), "spec"),
    (lambda d: d["spec"].pop("workload"), "spec.workload"),
    (lambda d: d["spec"]["workload"].pop("name"), "spec.workload.name"),
    (lambda d: d["spec"].update(targets={"azure": {}}), "spec.targets"),
    (lambda d: d["spec"]["targets"].append({}), "spec.targets[4]"),
    (lambda d: d["spec"]["targets"].append({"azure": {"scope": "/s", "roles": ["r"]}, "kafka": {}}), "spec.targets[4]"),
    (lambda d: d["spec"]["targets"].append({"ftp": {}}), "spec.targets[4].ftp"),
    (lambda d: d["spec"]["targets"][0]["azure"].pop("scope"), "spec.targets[0].azure.scope"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(scope="subscriptions/x"), "spec.targets[0].azure.scope"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(scope="/a//b"), "spec.targets[0].azure.scope"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(scope="/a b"), "spec.targets[0].azure.scope"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(roles=["Reader"]), "spec.targets[0].azure.roles"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(actions="x/y"), "spec.targets[0].azure.actions"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(actions=["has space/x"]), "spec.targets[0].azure.actions[0]"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(dataActions=[3]), "spec.targets[0].azure.dataActions[0]"),
    (lambda d: d["spec"]["targets"][0]["azure"].update(azureRoles=["x"]), "spec.targets[0].azure.azureRoles"),
    (lambda d: d["spec"]["targets"][1]["azure"].pop("roles"), "spec.targets[1].azure"),
    (lambda d: d["spec"]["targets"][2]["azure"]["keyVaultPolicy"].update(secretPermissions=["read"]),
     "spec.targets[2].azure.keyVaultPolicy.secretPermissions[0]"),
    (lambda d: d["spec"]["targets"][2]["azure"]["keyVaultPolicy"].update(blobPermissions=["get"]),
     "spec.targets[2].azure.keyVaultPolicy.blobPermissions"),
    (lambda d: d["spec"]["targets"][2]["azure"].update(scope="/providers/Microsoft.Storage/storageAccounts/a"),
     "spec.targets[2].azure.keyVaultPolicy"),
    (lambda d: d["spec"].update(targets=[{"azure": {"scope": "/s", "roles": ["r"]}}] * 501), "spec.targets"),
]


@pytest.mark.parametrize("mutate,field", BAD, ids=[f for _, f in BAD])
def test_bad_documents_name_the_field(mutate, field: str) -> None:
    d = copy.deepcopy(TUTORIAL)
    mutate(d)
    errors = validate_document(d)
    assert errors, "expected a validation error"
    assert any(e.startswith(field + ":") or e.startswith(field + ".") or e.startswith(field + "[") for e in errors), errors
    with pytest.raises(InvalidClientIntents) as info:
        parse_client_intents(d)
    assert field in info.value.reason and info.value.errors == errors


@pytest.mark.parametrize("junk", [None, 3, "text", [], {"apiVersion": None}])
def test_non_documents_are_refused_cleanly(junk) -> None:
    with pytest.raises(InvalidClientIntents):
        parse_client_intents(junk)


def test_valid_document_has_no_errors() -> None:
    assert validate_document(TUTORIAL) == []


def test_scope_key_equates_full_and_partial_storage_and_vault_scopes() -> None:
    container = "/providers/Microsoft.Storage/storageAccounts/shopdata/blobServices/default/containers/invoices"
    full = "/subscriptions/1111/resourceGroups/RG-A" + container
    assert scope_key(full) == scope_key(container) == scope_key(full.upper() + "/")
    assert scope_key("/resourceGroups/rg" + container) == scope_key(container)
    vault = "/subscriptions/s/resourceGroups/rg/providers/microsoft.keyvault/VAULTS/kv"
    assert scope_key(vault) == scope_key("/providers/Microsoft.KeyVault/vaults/kv")
    # other providers keep their subscription and resource group
    bus = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ServiceBus/namespaces/n"
    assert scope_key(bus) != scope_key("/providers/Microsoft.ServiceBus/namespaces/n")
    assert scope_key("/subscriptions/S1") != scope_key("/subscriptions/S2")


def test_crd_manifest_shape() -> None:
    crd = crd_manifest()
    assert crd["metadata"]["name"] == f"{PLURAL}.{GROUP}"
    (version,) = crd["spec"]["versions"]
    assert version["name"] == VERSION and version["storage"] and version["subresources"] == {"status": {}}
    root = version["schema"]["openAPIV3Schema"]
    target = root["properties"]["spec"]["properties"]["targets"]["items"]
    assert target["minProperties"] == target["maxProperties"] == 1
    azure = target["properties"]["azure"]
    assert azure["required"] == ["scope"]
    kv = azure["properties"]["keyVaultPolicy"]["properties"]
    assert "get" in kv["secretPermissions"]["items"]["enum"]
    status = root["properties"]["status"]["properties"]
    assert {"observedGeneration", "conditions"} <= set(status)
    assert status["conditions"]["items"]["properties"]["type"]["enum"] == ["Ready", "Propagating", "Failed"]
    assert {c["jsonPath"] for c in version["additionalPrinterColumns"]} >= {".spec.workload.name", ".status.ready"}
    otterize = crd_manifest(otterize=True)
    assert otterize["spec"]["group"] == OTTERIZE_GROUP
    assert [(v["name"], v["storage"]) for v in otterize["spec"]["versions"]] == [("v2beta1", True), ("v2alpha1", False)]


def test_crd_is_structural() -> None:
    """Kubernetes refuses schemas mixing properties with additionalProperties, or lacking types."""
    def walk(node: dict, path: str) -> None:
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields"), path
        for key, child in node.get("properties", {}).items():
            walk(child, f"{path}.{key}")
        if "items" in node:
            walk(node["items"], path + "[]")
    walk(crd_manifest()["spec"]["versions"][0]["schema"]["openAPIV3Schema"], "")


def _cel_to_python(rule: str) -> str:
    """The few CEL forms the rules use, in Python, so the rules can be checked against the webhook's."""
    py = rule.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    py = re.sub(r"has\(self\.(\w+)\)", r"('\1' in self)", py)
    py = re.sub(r"size\(self\.(\w+)\)", r"len(self['\1'])", py)
    py = re.sub(r"self\.scope\.matches\('(.*)'\)", lambda m: f"re.search({m.group(1).replace(chr(92)*2, chr(92))!r}, self['scope'])", py)
    return py


@pytest.mark.parametrize("azure", [
    {"scope": "/s", "roles": ["Reader"]},
    {"scope": "/s", "roles": ["Reader"], "actions": ["a/b"]},
    {"scope": "/s", "roles": ["Reader"], "dataActions": ["a/b"]},
    {"scope": "/s", "actions": ["a/b"], "dataActions": ["a/c"]},
    {"scope": "/s"},
    {"scope": "/s", "roles": []},
    {"scope": "/providers/Microsoft.KeyVault/vaults/kv", "keyVaultPolicy": {"secretPermissions": ["get"]}},
    {"scope": "/providers/Microsoft.Storage/storageAccounts/a", "keyVaultPolicy": {"secretPermissions": ["get"]}},
])
def test_cel_rules_agree_with_the_webhook(azure: dict) -> None:
    cel_ok = all(eval(_cel_to_python(r["rule"]), {"re": re}, {"self": azure}) for r in AZURE_RULES)
    webhook_ok = not validate_document(doc([{"azure": azure}]))
    assert cel_ok == webhook_ok


def test_checked_in_crd_matches_the_model() -> None:
    path = ROOT / "charts" / "clearance" / "crds" / f"{PLURAL}.{GROUP}.yaml"
    assert path.read_text() == crd_yaml(), "run: .venv/bin/python -m clearance.operator.api.crdgen"
    assert yaml.safe_load(path.read_text()) == crd_manifest()
    check = subprocess.run([sys.executable, "-m", "clearance.operator.api.crdgen", "--check"], cwd="/")
    assert check.returncode == 0
    otterize = ROOT / "charts" / "clearance" / "otterize" / f"{PLURAL}.k8s.otterize.com.yaml"
    assert yaml.safe_load(otterize.read_text()) == crd_manifest(otterize=True)


def test_vault_scope_one_definition() -> None:
    from clearance.operator.api.scopes import is_vault_scope

    full = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.KeyVault/vaults/kv"
    assert is_vault_scope(full, full=True) and is_vault_scope(full.lower(), full=True)
    assert is_vault_scope("/providers/Microsoft.KeyVault/vaults/kv")
    assert not is_vault_scope("/providers/Microsoft.KeyVault/vaults/kv", full=True)
    assert not is_vault_scope(full + "/secrets/x")
    assert not is_vault_scope("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a")


def test_expand_offline() -> None:
    from clearance.operator.azure.resources import ScopeError, expand_offline
    from clearance.operator.settings import Settings

    s = Settings(subscription_id="s1", resource_group="rg1", cluster_name="c")
    assert expand_offline("/subscriptions/s9/resourceGroups/x/", s) == "/subscriptions/s9/resourceGroups/x"
    assert expand_offline("/resourceGroups/x", s) == "/subscriptions/s1/resourceGroups/x"
    assert (expand_offline("/providers/Microsoft.Storage/storageAccounts/a", s)
            == "/subscriptions/s1/resourceGroups/rg1/providers/Microsoft.Storage/storageAccounts/a")
    with pytest.raises(ScopeError, match="must start with '/'"):
        expand_offline("subscriptions/s1", s)


def test_load_documents_names_file_and_document(tmp_path) -> None:
    from clearance.operator.api import DocumentError, load_documents

    path = tmp_path / "m.yaml"
    path.write_text("a: 1\n---\n---\nb: 2\n")
    docs = load_documents(path)
    assert [(d.number, d.body) for d in docs] == [(1, {"a": 1}), (3, {"b": 2})]
    assert docs[1].label == f"{path} document 3"
    assert [d.body for d in load_documents("given", text="x: 1")] == [{"x": 1}]
    assert load_documents("-", stdin=io.StringIO("y: 2\n"))[0].label == "stdin document 1"
    cases = [
        ("a: 1\n---\nb: [\n", rf"{re.escape(str(path))} document 2 is not valid YAML: .* at line \d+, column \d+"),
        ("a: 1\n---\n- x\n", rf"{re.escape(str(path))} document 2: expected a mapping, got list"),
        ("!!python/object:os.system {}\n", "document 1 is not valid YAML"),
    ]
    for text, message in cases:
        path.write_text(text)
        with pytest.raises(DocumentError, match=message):
            load_documents(path)
    path.write_bytes(b"a: \xff\xfe\n")
    with pytest.raises(DocumentError, match="is not UTF-8 text"):
        load_documents(path)
    with pytest.raises(DocumentError, match="no such file"):
        load_documents(tmp_path / "missing.yaml")
    with pytest.raises(DocumentError, match="is a directory"):
        load_documents(tmp_path)
    path.write_text("a: " + "x" * 100 + "\n")
    with pytest.raises(DocumentError, match="larger than 50 bytes"):
        load_documents(path, max_bytes=50)
    secret = "s3cr3t-value"
    with pytest.raises(DocumentError) as caught:
        load_documents("given", text=f"token: {secret}\nbad: [\n")
    assert secret not in str(caught.value)
