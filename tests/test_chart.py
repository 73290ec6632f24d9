"""The Helm chart renders, lints and validates, with Helm's own Go library (no helm binary here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parent.parent / "charts" / "clearance"
# The oldest (long-term support) and newest Kubernetes minor versions AKS supports (docs/install.md).
AKS_VERSIONS = ("1.31.0", "1.35.0")

REQUIRED = {
    "azure": {
        "subscriptionID": "6b1c3e4a-0d2f-4c8e-9a1b-2c3d4e5f6a7b",
        "resourceGroup": "otterizeAzureIAMTutorialResourceGroup",
        "aksClusterName": "otterizeAzureIAMTutorialAKSCluster",
        "userAssignedIdentityID": "0e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
    }
}
FULL = {
    "azure": {
        **REQUIRED["azure"],
        "tenantID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
        "location": "eastus",
        "oidcIssuer": "https://eastus.oic.prod-aks.azure.com/72f988bf/abc/",
        "armEndpoint": "https://management.usgovcloudapi.net",
        "allowedScopes": ["/subscriptions/6b1c3e4a-0d2f-4c8e-9a1b-2c3d4e5f6a7b/resourceGroups/apps"],
        "allowWildcards": False,
    },
    "otterizeCompat": True,
    "image": {"registry": "myregistry.azurecr.io/clearance", "tag": "0.1.0", "pullPolicy": "Always"},
    "imagePullSecrets": [{"name": "acr"}],
    "logLevel": "debug",
    "nodeagent": {"endpoints": ["blob=https://{account}.blob.storage.internal"], "bufferSize": 5000,
                  "sysAdmin": True, "priorityClassName": "system-node-critical"},
    "mapper": {"persistence": {"enabled": True, "size": "5Gi", "storageClassName": "managed-csi"}},
    "operator": {"webhook": {"failurePolicy": "Fail", "timeoutSeconds": 5}},
}
CASES = {"minimal-azure": REQUIRED, "full": FULL, "no-agent": {**REQUIRED, "nodeagent": {"enabled": False}}}


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm.Chart.load(CHART) as chart:
        chart.validate_schema(values)
        out = chart.render(values, name="clearance", namespace="clearance-system")
        crds = [yaml.safe_load(c["data"]) if isinstance(c, dict) and "data" in c else c for c in chart.crds]
    docs = [d for name, text in out.items() if not name.endswith(".txt") for d in yaml.safe_load_all(text) if d]
    return docs + [c for c in crds if isinstance(c, dict)]


def kinds(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in docs}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("version", AKS_VERSIONS)
def test_every_manifest_validates_strictly(case: str, version: str) -> None:
    docs = render(CASES[case])
    assert docs
    for doc in docs:
        if doc["apiVersion"].startswith("cert-manager.io/"):
            continue
        kubernetes_validate.validate(doc, version, strict=True)


@pytest.mark.parametrize("case", sorted(CASES))
def test_lint_is_clean(case: str) -> None:
    report = helm.lint(CHART, CASES[case], strict=True, namespace="clearance-system")
    errors = [m for m in report["messages"] if m["severity"] >= 2 and "icon is recommended" not in m["error"]]
    assert errors == []


def test_minimal_install_has_every_component() -> None:
    docs = kinds(render(REQUIRED))
    for key in ("DaemonSet/clearance-agent", "Deployment/clearance-mapper", "Service/clearance-mapper",
                "Deployment/clearance-operator", "Service/clearance-operator-webhook",
                "MutatingWebhookConfiguration/clearance-pod-identity",
                "ValidatingWebhookConfiguration/clearance-clientintents", "Secret/clearance-operator-webhook-tls",
                "ServiceAccount/clearance-operator", "ServiceAccount/clearance-agent", "ClusterRole/clearance-mapper"):
        assert key in docs, key
    sa = docs["ServiceAccount/clearance-operator"]
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == REQUIRED["azure"]["userAssignedIdentityID"]
    env = {e["name"]: e.get("value") for e in docs["Deployment/clearance-operator"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["CLEARANCE_SUBSCRIPTION_ID"] == REQUIRED["azure"]["subscriptionID"]
    assert env["CLEARANCE_RESOURCE_GROUP"] == REQUIRED["azure"]["resourceGroup"]
    assert env["CLEARANCE_CLUSTER_NAME"] == REQUIRED["azure"]["aksClusterName"]


def test_agent_uses_capabilities_not_privileged() -> None:
    ds = kinds(render(REQUIRED))["DaemonSet/clearance-agent"]
    spec = ds["spec"]["template"]["spec"]
    ctx = spec["containers"][0]["securityContext"]
    assert spec["hostPID"] is True
    assert ctx["privileged"] is False
    assert set(ctx["capabilities"]["add"]) == {"BPF", "PERFMON", "SYS_RESOURCE", "SYS_PTRACE", "CHECKPOINT_RESTORE"}
    mounts = {m["mountPath"]: m for m in spec["containers"][0]["volumeMounts"]}
    for path in ("/host/proc", "/sys/fs/cgroup", "/sys/kernel/tracing", "/lib/modules", "/usr/src"):
        assert mounts[path]["readOnly"] is True
    assert {"operator": "Exists"} in spec["tolerations"]
    assert spec["containers"][0]["resources"]["limits"]["memory"]


def test_rbac_is_least_privilege() -> None:
    docs = kinds(render(REQUIRED))
    for name in ("clearance-agent", "clearance-mapper", "clearance-operator"):
        for rule in docs[f"ClusterRole/{name}"]["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"], (name, rule)
            assert "delete" not in rule["verbs"], (name, rule)
    agent_rules = docs["ClusterRole/clearance-agent"]["rules"]
    assert agent_rules == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]}]


def test_webhook_tls_is_self_signed_by_default_and_cert_manager_optional() -> None:
    docs = kinds(render(REQUIRED))
    hook = docs["MutatingWebhookConfiguration/clearance-pod-identity"]["webhooks"][0]
    assert hook["clientConfig"]["caBundle"]
    values = {**REQUIRED, "operator": {"webhook": {"certManager": {"enabled": True, "issuerRef": {"name": "ca", "kind": "ClusterIssuer"}}}}}
    docs = kinds(render(values))
    assert "Certificate/clearance-operator-webhook" in docs
    assert "Secret/clearance-operator-webhook-tls" not in docs
    assert "caBundle" not in docs["MutatingWebhookConfiguration/clearance-pod-identity"]["webhooks"][0]["clientConfig"]


def test_otterize_compat_adds_its_label_and_group() -> None:
    docs = kinds(render(FULL))
    selectors = [w["objectSelector"]["matchLabels"] for w in docs["MutatingWebhookConfiguration/clearance-pod-identity"]["webhooks"]]
    assert {"credentials-operator.otterize.com/create-azure-workload-identity": "true"} in selectors
    groups = docs["ValidatingWebhookConfiguration/clearance-clientintents"]["webhooks"][0]["rules"][0]["apiGroups"]
    assert "k8s.otterize.com" in groups


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "/azure/subscriptionID"),
        ({"azure": {**REQUIRED["azure"], "resourceGroup": ""}}, "/azure/resourceGroup"),
        ({"azure": {**REQUIRED["azure"], "subscriptionID": "my-sub"}}, "/azure/subscriptionID"),
        ({"azure": {**REQUIRED["azure"], "userAssignedIdentityID": "not-a-guid"}}, "/azure/userAssignedIdentityID"),
        ({**REQUIRED, "nodeagent": {"endpoints": ["s3=https://x"]}}, "/nodeagent/endpoints/0"),
        ({**REQUIRED, "mapper": {"persistence": {"size": "lots"}}}, "/mapper/persistence/size"),
        ({**REQUIRED, "azure": {**REQUIRED["azure"], "allowedScopes": ["/providers/x"]}}, "/azure/allowedScopes/0"),
        ({**REQUIRED, "nodagent": {}}, "nodagent"),
        ({**REQUIRED, "mapper": {"agentPort": 70000}}, "/mapper/agentPort"),
    ],
)
def test_schema_rejects_bad_values_naming_them(values: dict[str, Any], message: str) -> None:
    with helm.Chart.load(CHART) as chart:
        with pytest.raises(helm.HelmValuesError) as err:
            chart.validate_schema(values)
    assert message in str(err.value)


def test_webhook_paths_are_the_operators_handler_ids() -> None:
    from clearance.operator.identity.handlers import MUTATE_PATH
    from clearance.operator.intents.handlers import VALIDATE_PATH

    docs = kinds(render(FULL))
    mutate = {w["clientConfig"]["service"]["path"] for w in docs["MutatingWebhookConfiguration/clearance-pod-identity"]["webhooks"]}
    validate = {w["clientConfig"]["service"]["path"] for w in docs["ValidatingWebhookConfiguration/clearance-clientintents"]["webhooks"]}
    assert mutate == {MUTATE_PATH}
    assert validate == {VALIDATE_PATH}


def test_otterize_crd_only_on_request() -> None:
    assert "CustomResourceDefinition/clientintents.k8s.otterize.com" not in kinds(render(FULL))
    docs = kinds(render({**FULL, "otterizeCRD": True}))
    crd = docs["CustomResourceDefinition/clientintents.k8s.otterize.com"]
    assert crd["spec"]["group"] == "k8s.otterize.com"
    assert {v["name"] for v in crd["spec"]["versions"]} == {"v2beta1", "v2alpha1"}
    kubernetes_validate.validate(crd, AKS_VERSIONS[-1], strict=True)


def test_mapper_is_reachable_only_by_agents_and_keeps_its_store() -> None:
    docs = kinds(render(REQUIRED))
    policy = docs["NetworkPolicy/clearance-mapper"]["spec"]
    agents_rule = policy["ingress"][0]
    assert agents_rule["from"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "clearance",
                                                                     "app.kubernetes.io/component": "agent"}}}]
    assert agents_rule["ports"] == [{"port": 9091, "protocol": "TCP"}]
    # The query port (9090) has no rule: only `kubectl port-forward` reaches it.
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [9091, 8080]
    assert "PersistentVolumeClaim/clearance-mapper" in docs
    volumes = docs["Deployment/clearance-mapper"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "clearance-mapper"}} in volumes


def test_webhook_certificate_change_restarts_the_operator() -> None:
    docs = kinds(render(REQUIRED))
    secret = docs["Secret/clearance-operator-webhook-tls"]["data"]
    assert set(secret) == {"tls.crt", "tls.key", "ca.crt"}
    hook = docs["MutatingWebhookConfiguration/clearance-pod-identity"]["webhooks"][0]
    assert hook["clientConfig"]["caBundle"] == secret["ca.crt"]
    annotations = docs["Deployment/clearance-operator"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["checksum/webhook-tls"]


def test_agents_report_over_tls_to_the_mapper_certificate() -> None:
    docs = kinds(render({**REQUIRED, "mapper": {"agentPort": 9500}}))
    secret = docs["Secret/clearance-mapper-tls"]
    assert secret["type"] == "kubernetes.io/tls" and set(secret["data"]) == {"tls.crt", "tls.key", "ca.crt"}
    mapper = docs["Deployment/clearance-mapper"]["spec"]["template"]
    assert mapper["metadata"]["annotations"]["checksum/mapper-tls"]
    container = mapper["spec"]["containers"][0]
    assert {"--listen=0.0.0.0:9090", "--agent-listen=0.0.0.0:9500", "--tls-cert=/etc/clearance/mapper-tls/tls.crt",
            "--tls-key=/etc/clearance/mapper-tls/tls.key"} <= set(container["args"])
    assert {"name": "agents", "containerPort": 9500} in container["ports"]
    assert {"name": "tls", "mountPath": "/etc/clearance/mapper-tls", "readOnly": True} in container["volumeMounts"]
    tls_volume = next(v for v in mapper["spec"]["volumes"] if v["name"] == "tls")
    assert tls_volume["secret"]["secretName"] == "clearance-mapper-tls"
    assert {i["key"] for i in tls_volume["secret"]["items"]} == {"tls.crt", "tls.key"}
    service_ports = {p["name"]: p["port"] for p in docs["Service/clearance-mapper"]["spec"]["ports"]}
    assert service_ports["agents"] == 9500 and service_ports["grpc"] == 9090
    policy_ports = [p["port"] for rule in docs["NetworkPolicy/clearance-mapper"]["spec"]["ingress"] for p in rule["ports"]]
    assert 9500 in policy_ports and 9090 not in policy_ports

    agent = docs["DaemonSet/clearance-agent"]["spec"]["template"]["spec"]
    args = agent["containers"][0]["args"]
    assert "--mapper=clearance-mapper.clearance-system.svc:9500" in args
    assert "--mapper-ca=/var/run/secrets/clearance/mapper-ca.crt" in args
    sources = [s for v in agent["volumes"] if "projected" in v for s in v["projected"]["sources"] if "secret" in s]
    assert sources == [{"secret": {"name": "clearance-mapper-tls", "items": [{"key": "ca.crt", "path": "mapper-ca.crt"}]}}]
    assert not any(v.get("secret", {}).get("secretName") == "clearance-mapper-tls" for v in agent["volumes"])


def test_mapper_certificate_names_the_service_the_agents_dial() -> None:
    import base64

    from cryptography import x509

    data = kinds(render(REQUIRED))["Secret/clearance-mapper-tls"]["data"]
    cert = x509.load_pem_x509_certificate(base64.b64decode(data["tls.crt"]))
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "clearance-mapper.clearance-system.svc" in names
    ca = x509.load_pem_x509_certificate(base64.b64decode(data["ca.crt"]))
    cert.verify_directly_issued_by(ca)


def test_agent_port_must_differ_from_the_query_port() -> None:
    with pytest.raises(Exception, match="mapper.agentPort must differ"):
        render({**REQUIRED, "mapper": {"agentPort": 9090}})
