"""``clearance plan``: offline (no credentials, empty state) and online (diff against the ARM bed)."""
from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import yaml

from clearance.cli import main
from clearance.operator.api import parse_client_intents
from clearance.operator.plan import Change, _all_online, load_documents
from test_operator_intents import BLOB_READ, BLOB_WRITE, Env, custom_target, intents_doc, storage, workload

PARTIAL = "/providers/Microsoft.Storage/storageAccounts/shopdata/blobServices/default/containers/invoices"


def write(tmp_path: Path, *docs: dict) -> Path:
    path = tmp_path / "intents.yaml"
    path.write_text(yaml.safe_dump_all(list(docs)))
    return path


def test_offline_plan_lists_creates_without_credentials(tmp_path, capsys, monkeypatch) -> None:
    for var in ("AZURE_CLIENT_ID", "AZURE_TENANT_ID", "AZURE_FEDERATED_TOKEN_FILE"):
        monkeypatch.delenv(var, raising=False)
    doc = intents_doc([custom_target(PARTIAL, BLOB_READ),
                       {"azure": {"scope": "/resourceGroups/rg2", "roles": ["Reader"]}},
                       {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/kv",
                                  "keyVaultPolicy": {"secretPermissions": ["get"]}}},
                       {"kafka": {"name": "topic"}}])
    path = write(tmp_path, doc, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}})
    code = main(["plan", "-f", str(path), "--offline", "--subscription-id", "sub-1", "--resource-group", "rg1",
                 "--cluster-name", "c1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "+ create    roleDefinition  /subscriptions/sub-1/resourceGroups/rg1" + PARTIAL in out
    assert f"dataActions=[{BLOB_READ}]" in out
    assert "roleAssignment  /subscriptions/sub-1/resourceGroups/rg2 role=Reader" in out
    assert "accessPolicy    /subscriptions/sub-1/resourceGroups/rg1/providers/Microsoft.KeyVault/vaults/kv" in out
    assert "kafka targets are not acted on" in out
    assert "Plan: 4 to create, 0 to update, 0 to delete." in out


def test_offline_plan_refuses_bad_input_clearly(tmp_path, capsys) -> None:
    bad = intents_doc([{"azure": {"scope": "/s", "roles": ["Reader"], "actions": ["a/b"]}}])
    assert main(["plan", "-f", str(write(tmp_path, bad)), "--offline"]) == 2
    assert "spec.targets[0].azure.roles" in capsys.readouterr().err
    (tmp_path / "junk.yaml").write_text("a: [\n")
    assert main(["plan", "-f", str(tmp_path / "junk.yaml"), "--offline"]) == 2
    assert "not valid YAML" in capsys.readouterr().err
    assert main(["plan", "-f", str(tmp_path / "missing.yaml"), "--offline"]) == 2
    assert "missing.yaml: no such file" in capsys.readouterr().err
    second_bad = write(tmp_path, intents_doc([custom_target("/subscriptions/s", BLOB_READ)]), bad)
    assert main(["plan", "-f", str(second_bad), "--offline"]) == 2
    assert f"{second_bad} document 2: spec.targets[0].azure.roles" in capsys.readouterr().err
    wild = intents_doc([custom_target("/subscriptions/s", "Microsoft.Storage/*")])
    assert main(["plan", "-f", str(write(tmp_path, wild)), "--offline"]) == 0
    assert "wildcard" in capsys.readouterr().out


def test_online_plan_diffs_against_azure_and_writes_nothing(arm_server, kube_server, tmp_path) -> None:
    env = Env(arm_server, kube_server)

    async def scenario() -> None:
        try:
            await workload(env)
            account = storage(env)
            applied = parse_client_intents(intents_doc([
                custom_target(PARTIAL, BLOB_READ),
                {"azure": {"scope": account, "roles": ["Storage Blob Delegator"]}}]))
            out = await env.reconciler.reconcile(applied)
            assert {s.type for s in out.states} == {"Ready"}
        finally:
            await env.arm.close()
    asyncio.run(scenario())
    changed = intents_doc([custom_target(PARTIAL, BLOB_READ, BLOB_WRITE),
                           {"azure": {"scope": account_of(env), "roles": ["Storage Blob Data Reader"]}}])
    docs = load_documents(str(write(tmp_path, changed)))
    writes_before = env.writes()
    args = argparse.Namespace()
    results = asyncio.run(_all_online(docs, env.settings, args, credential=arm_server.credential(), core_v1=env.core))
    assert env.writes() == writes_before
    got = sorted((c.action, c.kind, c.detail.get("role", "")) for c in results[0] if isinstance(c, Change))
    assert ("update", "roleDefinition", "") in got
    assert ("unchanged", "roleAssignment", next(c.detail["role"] for c in results[0]
                                                 if isinstance(c, Change) and c.kind == "roleAssignment"
                                                 and c.detail["role"].startswith("clr-role-"))) in got
    assert ("create", "roleAssignment", "Storage Blob Data Reader") in got
    assert [c.action for c in results[0] if isinstance(c, Change) and c.action == "delete"] == ["delete"]


def account_of(env: Env) -> str:
    return (f"/subscriptions/{env.sub}/resourceGroups/{env.rg}/providers/Microsoft.Storage/storageAccounts/shopdata")
