"""The README's day-to-day journey, run exactly as written against the test beds: an agent's report
reaches the mapper; `clearance intents list`, `export -o intents.yaml`, `plan -f intents.yaml` (online,
against the ARM test server) and `intents apply -f intents.yaml` (to the Kubernetes API test server);
after the apply, the same intents are listed as applied."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml

from clearance.operator.api import crd_manifest
from clearance.operator.azure.arm import ArmClients
from clearance.operator.azure.identities import Identities
from clearance.v1 import report_pb2, report_pb2_grpc
from test_operator_identity_harness import bed_settings

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CLEARANCE = Path(sys.executable).with_name("clearance")
NS, WORKLOAD, ACCOUNT, TOKEN = "otterize-tutorial-azure-iam", "client", "ottrazuredemo", "journey-agent-token-0001"
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/"


def readme_command(prefix: str) -> list[str]:
    """The README's command line that starts with ``prefix`` (comments dropped)."""
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        for line in block.splitlines():
            if line.strip().startswith(prefix):
                return shlex.split(line.strip(), comments=True)
    raise AssertionError(f"the README has no command starting {prefix!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def seed_cluster(kube) -> str:
    kube.create(crd_manifest())  # what helm install puts in the cluster
    owner = lambda kind, name: [{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": f"uid-{name}",  # noqa: E731
                                 "controller": True}]
    kube.create({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": WORKLOAD, "namespace": NS}})
    kube.create({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": WORKLOAD, "namespace": NS},
                 "spec": {"selector": {"matchLabels": {"app": WORKLOAD}}, "template": {}}})
    kube.create({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {
        "name": "client-7d9c4b8f6", "namespace": NS, "ownerReferences": owner("Deployment", WORKLOAD)},
        "spec": {"selector": {}}})
    pod = kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": "client-7d9c4b8f6-x2x1q", "namespace": NS, "labels": {"app": WORKLOAD, "pod-template-hash": "7d9c4b8f6",
                                                                      "clearance.dev/azure-workload-identity": "true"},
        "ownerReferences": owner("ReplicaSet", "client-7d9c4b8f6")},
        "spec": {"serviceAccountName": WORKLOAD, "containers": [{"name": "client", "image": "client"}]}})
    return pod["metadata"]["uid"]


def report(port: int, pod_uid: str) -> None:
    now = int(time.time() * 1000)
    caller = report_pb2.Caller(namespace=NS, pod_name="client-7d9c4b8f6-x2x1q", pod_uid=pod_uid, container="client")
    calls = [report_pb2.ObservedCall(caller=caller, service="blob", account=ACCOUNT, host=f"{ACCOUNT}.blob.core.windows.net",
                                     method=method, path=path, headers=headers, status=201 if method == "PUT" else 200,
                                     count=3, first_seen_unix_ms=now, last_seen_unix_ms=now)
             for method, path, headers in (("GET", "/downloads/{name}", {}),
                                           ("PUT", "/uploads/{name}", {"x-ms-blob-type": "BlockBlob"}))]
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = report_pb2_grpc.AgentReportsStub(channel)
        reply = stub.Report(report_pb2.ReportRequest(agent_id="node-1/journey", node="node-1", sequence=1, calls=calls),
                            metadata=[("authorization", f"Bearer {TOKEN}")], timeout=30)
    assert reply.accepted == 2


def test_readme_journey(kube_server, arm_server, tmp_path: Path) -> None:
    pod_uid = seed_cluster(kube_server)
    sub, rg = arm_server.subscription_id, arm_server.resource_group
    arm_server.add_storage_account(sub, rg, ACCOUNT)
    for container in ("downloads", "uploads"):
        arm_server.add_container(sub, rg, ACCOUNT, container)
    settings = bed_settings(arm_server)

    async def identity() -> None:
        arm = ArmClients(settings, credential=arm_server.credential())
        try:
            await Identities(arm, settings).ensure(NS, WORKLOAD)
        finally:
            await arm.close()

    asyncio.run(identity())

    token = tmp_path / "agent-token"
    token.write_text(TOKEN)
    port = free_port()
    env = dict(os.environ, KUBECONFIG=str(kube_server.kubeconfig), CLEARANCE_MAPPER=f"127.0.0.1:{port}",
               CLEARANCE_SUBSCRIPTION_ID=sub, CLEARANCE_RESOURCE_GROUP=rg, CLEARANCE_CLUSTER_NAME=arm_server.cluster_name,
               CLEARANCE_LOCATION=arm_server.location, CLEARANCE_TENANT_ID=arm_server.tenant_id,
               CLEARANCE_OIDC_ISSUER=arm_server.oidc_issuer, CLEARANCE_ARM_ENDPOINT=arm_server.url.rstrip("/"),
               AZURE_TENANT_ID=arm_server.tenant_id, AZURE_CLIENT_ID="client", AZURE_CLIENT_SECRET="secret",
               AZURE_AUTHORITY_HOST=arm_server.url.rstrip("/") + "/", REQUESTS_CA_BUNDLE=str(arm_server.ca_cert),
               SSL_CERT_FILE=str(arm_server.ca_cert))
    mapper = subprocess.Popen([str(CLEARANCE), "mapper", "--listen", f"127.0.0.1:{port}", "--db", str(tmp_path / "m.db"),
                               "--kubeconfig", str(kube_server.kubeconfig), "--agent-token-file", str(token)],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert mapper.poll() is None and time.monotonic() < deadline, mapper.stdout.read() if mapper.stdout else ""
                time.sleep(0.2)
        report(port, pod_uid)

        def run(words: list[str]) -> str:
            assert words[0] == "clearance"
            out = subprocess.run([str(CLEARANCE), *words[1:]], capture_output=True, text=True, env=env, cwd=tmp_path,
                                 timeout=120)
            assert out.returncode == 0, f"{' '.join(words)}: {out.stderr}"
            return out.stdout

        table = run(readme_command(f"clearance intents list -n {NS}"))
        assert re.search(rf"{NS}\s+Deployment/client\s+\S+/containers/downloads\s+\S*blobs/read\s+missing", table), table
        run(readme_command(f"clearance intents export -n {NS} -o intents.yaml"))
        doc = yaml.safe_load((tmp_path / "intents.yaml").read_text())
        assert {t["azure"]["scope"].rsplit("/", 1)[-1]: t["azure"]["dataActions"] for t in doc["spec"]["targets"]} == {
            "downloads": [BLOB + "read"], "uploads": [BLOB + "write"]}
        plan = run(readme_command("clearance plan -f intents.yaml"))
        assert plan.count("+ create    roleDefinition") == 2 and plan.count("+ create    roleAssignment") == 2, plan
        assert f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}" in plan
        assert not arm_server.calls(method="PUT", path_contains="roleAssignments"), "plan must not write"
        applied = run(readme_command("clearance intents apply -f intents.yaml"))
        assert "clientintents.clearance.dev/client-intents-for-client created" in applied
        assert kube_server.get("clearance.dev/v1", "ClientIntents", NS, "client-intents-for-client")

        deadline = time.monotonic() + 30
        while True:
            listed = json.loads(run(["clearance", "intents", "list", "-n", NS, "-o", "json"]))
            if listed["intents"] and all(i["status"] == "applied" for i in listed["intents"]):
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.5)
    finally:
        mapper.terminate()
        mapper.wait(timeout=30)
