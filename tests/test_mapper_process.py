"""The ``clearance mapper`` process and the ``clearance intents`` commands, as a user runs them:
an acknowledged report survives SIGKILL; list/export print what the issue specifies; an
unreachable mapper is a clear error."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
import yaml

from clearance.operator.api import validate_document
from clearance.v1 import report_pb2, report_pb2_grpc
from test_mapper_support import BLOBS, CONTAINER_SCOPE, TOKEN, call, pods_file

ROOT = Path(__file__).resolve().parent.parent
CLEARANCE = [str(ROOT / ".venv" / "bin" / "clearance")] if (ROOT / ".venv/bin/clearance").exists() else [
    sys.executable, "-m", "clearance"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLEARANCE, *args], capture_output=True, text=True, input=stdin, timeout=120,
                          cwd="/", env={**os.environ, "PYTHONPATH": str(ROOT)})


class MapperProcess:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = _free_port()
        (tmp / "token").write_text(TOKEN)
        pods_file(tmp / "pods.yaml", [("shop", "web-7d4b9c6f5-abcde", "ReplicaSet", "web-7d4b9c6f5"),
                                      ("shop", "worker-0", "StatefulSet", "worker")])
        self.proc: subprocess.Popen | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [*CLEARANCE, "mapper", "--listen", self.address, "--db", str(self.tmp / "m.db"),
             "--pods-file", str(self.tmp / "pods.yaml"), "--agent-token-file", str(self.tmp / "token")],
            stdout=subprocess.DEVNULL, stderr=open(self.tmp / "mapper.log", "a"), cwd="/",
            env={**os.environ, "PYTHONPATH": str(ROOT)})
        channel = grpc.insecure_channel(self.address)
        try:
            grpc.channel_ready_future(channel).result(timeout=60)
        finally:
            channel.close()

    def kill(self, sig: int = signal.SIGKILL) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=60)

    def report(self, calls, seq: int) -> int:
        with grpc.insecure_channel(self.address) as ch:
            return report_pb2_grpc.AgentReportsStub(ch).Report(
                report_pb2.ReportRequest(agent_id="n1", node="n1", sequence=seq, calls=calls),
                metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=30).accepted


@pytest.fixture
def mapper_process(tmp_path):
    mp = MapperProcess(tmp_path)
    mp.start()
    yield mp
    if mp.proc and mp.proc.poll() is None:
        mp.kill(signal.SIGKILL)


def test_acknowledged_report_survives_sigkill(mapper_process):
    calls = [call(count=3), call(pod="worker-0", method="DELETE", count=1)]
    assert mapper_process.report(calls, seq=1) == 2
    assert mapper_process.kill(signal.SIGKILL) == -signal.SIGKILL
    mapper_process.start()
    assert mapper_process.report(calls, seq=1) == 2  # the retry of an acknowledged batch is not counted twice
    out = _cli("intents", "list", "-A", "-o", "json", "--mapper", mapper_process.address)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert [(i["workload"]["name"], i["dataActions"], i["calls"]) for i in doc["intents"]] == [
        ("web", [f"{BLOBS}/read"], 3), ("worker", [f"{BLOBS}/delete"], 1)]
    assert mapper_process.kill(signal.SIGTERM) == 0  # graceful stop


def test_list_table_json_yaml_and_export(mapper_process, tmp_path):
    mapper_process.report([call(count=3), call(method="PUT", headers={"x-ms-blob-type": "BlockBlob"}),
                           call(pod="worker-0", method="GET", path="/", query={"comp": "list"})], seq=1)
    table = _cli("intents", "list", "--mapper", mapper_process.address)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["NAMESPACE", "WORKLOAD", "SCOPE", "PERMISSIONS", "STATUS", "LAST", "SEEN"]
    assert lines[1].split()[:5] == ["shop", "Deployment/web", CONTAINER_SCOPE,
                                    f"{BLOBS}/read,{BLOBS}/write", "missing"]
    js = json.loads(_cli("intents", "list", "-n", "shop", "--workload", "web", "-o", "json",
                         "--mapper", mapper_process.address).stdout)
    assert set(js) == {"intents", "unknown"}
    assert set(js["intents"][0]) == {"namespace", "workload", "scope", "actions", "dataActions", "status",
                                     "calls", "firstSeen", "lastSeen"}
    assert [i["workload"]["name"] for i in js["intents"]] == ["web"]
    ym = yaml.safe_load(_cli("intents", "list", "-o", "yaml", "--mapper", mapper_process.address).stdout)
    assert len(ym["intents"]) == 2

    exported = _cli("intents", "export", "-A", "--mapper", mapper_process.address)
    assert exported.returncode == 0, exported.stderr
    docs = list(yaml.safe_load_all(exported.stdout))
    assert [d["metadata"]["name"] for d in docs] == ["client-intents-for-web", "client-intents-for-worker"]
    assert all(validate_document(d) == [] for d in docs)
    assert docs[0]["spec"] == {"workload": {"name": "web", "kind": "Deployment"}, "targets": [
        {"azure": {"scope": CONTAINER_SCOPE, "dataActions": [f"{BLOBS}/read", f"{BLOBS}/write"]}}]}
    again = _cli("intents", "export", "-A", "--mapper", mapper_process.address)
    assert again.stdout == exported.stdout  # deterministic

    out_dir = tmp_path / "out"
    res = _cli("intents", "export", "--format", "otterize", "-o", str(out_dir) + "/", "--mapper",
               mapper_process.address)
    assert res.returncode == 0, res.stderr
    files = sorted(p.name for p in out_dir.iterdir())
    assert files == ["shop.web.yaml", "shop.worker.yaml"]
    assert yaml.safe_load((out_dir / "shop.web.yaml").read_text())["apiVersion"] == "k8s.otterize.com/v2beta1"


def test_unreachable_mapper_is_a_clear_error():
    port = _free_port()
    res = _cli("intents", "list", "--mapper", f"127.0.0.1:{port}")
    assert res.returncode == 1
    assert f"cannot reach the mapper at 127.0.0.1:{port}" in res.stderr
    assert "kubectl -n clearance-system port-forward svc/clearance-mapper 9090" in res.stderr


def test_apply_refuses_invalid_documents_with_the_reason(tmp_path):
    bad = {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents", "metadata": {"name": "x", "namespace": "shop"},
           "spec": {"workload": {"name": "web"}, "targets": [{"azure": {"scope": CONTAINER_SCOPE}}]}}
    res = _cli("intents", "apply", "-f", "-", stdin=yaml.safe_dump(bad))
    assert res.returncode == 1
    assert "refusing to apply invalid ClientIntents" in res.stderr and "spec.targets[0].azure" in res.stderr


def test_mapper_refuses_to_start_without_agent_authentication(tmp_path):
    res = _cli("mapper", "--listen", f"127.0.0.1:{_free_port()}", "--db", str(tmp_path / "x.db"),
               "--pods-file", str(pods_file(tmp_path / "p.yaml", [])), "--kubeconfig", "")
    assert res.returncode == 2
    assert "agents cannot be authenticated" in res.stderr
