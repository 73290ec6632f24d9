"""The agents' port over TLS, as deployed: a ``clearance mapper`` process with --agent-listen and a
certificate from the test CA, the agent's Reporter with --mapper-ca. Delivered with the right CA;
never with a wrong CA, a wrong name or plaintext; the query port still answers ``intents list``
and no longer takes reports; bad TLS flags stop the mapper with a message naming the flag."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from beds.certs import TestPKI, make_pki
from clearance.mapper.transport import load_server_tls, serve_agents
from clearance.nodeagent.reporter import Reporter
from clearance.v1 import report_pb2, report_pb2_grpc
from test_mapper_support import BLOBS, TOKEN, call, pods_file, running_mapper

ROOT = Path(__file__).resolve().parent.parent
CLEARANCE = [str(ROOT / ".venv" / "bin" / "clearance")] if (ROOT / ".venv/bin/clearance").exists() else [
    sys.executable, "-m", "clearance"]
ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clearance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLEARANCE, *args], capture_output=True, text=True, timeout=120, cwd="/",
                          env={**ENV, **(env or {})})


def wait_for(cond, timeout: float = 30.0) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@dataclass
class TLSMapper:
    query: str       # --listen: Intents, plaintext
    agents: str      # --agent-listen: AgentReports, TLS
    log: Path
    proc: subprocess.Popen

    def listed(self) -> list[dict]:
        out = clearance("intents", "list", "-A", "-o", "json", "--mapper", self.query)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["intents"]


@pytest.fixture
def tls_mapper(tmp_path: Path, test_pki: TestPKI) -> Iterator[TLSMapper]:
    (tmp_path / "token").write_text(TOKEN)
    pods_file(tmp_path / "pods.yaml", [("shop", "web-7d4b9c6f5-abcde", "ReplicaSet", "web-7d4b9c6f5")])
    query, agents = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = tmp_path / "mapper.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(
            [*CLEARANCE, "mapper", "--listen", query, "--agent-listen", agents, "--db", str(tmp_path / "m.db"),
             "--pods-file", str(tmp_path / "pods.yaml"), "--agent-token-file", str(tmp_path / "token"),
             "--tls-cert", str(test_pki.cert), "--tls-key", str(test_pki.key)],
            stdout=subprocess.DEVNULL, stderr=err, cwd="/", env=ENV)
    try:
        for address, creds in ((query, None),
                               (agents, grpc.ssl_channel_credentials(test_pki.ca_cert.read_bytes()))):
            channel = grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
            try:
                grpc.channel_ready_future(channel).result(timeout=60)
            finally:
                channel.close()
        yield TLSMapper(query, agents, log, proc)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)


def reporter(address: str, **kw) -> Reporter:  # noqa: ANN003
    return Reporter(address, TOKEN, 100, "node-1", backoff_initial_s=0.05, backoff_max_s=0.2, rpc_timeout_s=5, **kw)


def test_reporter_with_the_mapper_ca_delivers_over_tls(tls_mapper: TLSMapper, test_pki: TestPKI) -> None:
    r = reporter(tls_mapper.agents, mapper_ca=str(test_pki.ca_cert))
    try:
        r.submit([call(count=2)])
        assert wait_for(lambda: r.sent_batches == 1 and r.pending() == 0)
    finally:
        r.close()
    intents = tls_mapper.listed()  # the query port (plaintext, --listen) still serves the CLI
    assert [(i["workload"]["name"], i["dataActions"], i["calls"]) for i in intents] == [
        ("web", [f"{BLOBS}/read"], 2)]
    assert TOKEN not in tls_mapper.log.read_text()


def test_server_name_override_is_what_is_verified(tls_mapper: TLSMapper, test_pki: TestPKI) -> None:
    port = tls_mapper.agents.rpartition(":")[2]
    good = reporter(f"127.0.0.1:{port}", mapper_ca=str(test_pki.ca_cert), server_name="localhost")
    bad = reporter(f"127.0.0.1:{port}", mapper_ca=str(test_pki.ca_cert),
                   server_name="clearance-mapper.clearance-system.svc")  # not in the certificate
    try:
        good.submit([call()])
        bad.submit([call(method="DELETE")])
        assert wait_for(lambda: good.sent_batches == 1)
        assert wait_for(lambda: bad.metrics.value("clearance_agent_report_errors_total") >= 3)
        assert bad.sent_batches == 0 and bad.pending() == 1 and bad.dropped_calls == 0
    finally:
        good.close(timeout=0.1)
        bad.close(timeout=0.1)
    assert [i["dataActions"] for i in tls_mapper.listed()] == [[f"{BLOBS}/read"]]


def test_reporter_with_a_wrong_ca_retries_and_delivers_nothing(tls_mapper: TLSMapper, tmp_path: Path) -> None:
    other = make_pki(tmp_path / "other-ca")
    r = reporter(tls_mapper.agents, mapper_ca=str(other.ca_cert))
    try:
        r.submit([call()])
        assert wait_for(lambda: r.metrics.value("clearance_agent_report_errors_total") >= 3)  # kept and retried
        assert r.sent_batches == 0 and r.pending() == 1 and r.dropped_calls == 0
    finally:
        r.close(timeout=0.1)
    assert tls_mapper.listed() == []


def test_plaintext_on_the_tls_port_is_refused_and_the_query_port_takes_no_reports(tls_mapper: TLSMapper) -> None:
    request = report_pb2.ReportRequest(agent_id="n1", node="n1", sequence=1, calls=[call()])
    md = (("authorization", f"Bearer {TOKEN}"),)
    with grpc.insecure_channel(tls_mapper.agents) as ch:
        with pytest.raises(grpc.RpcError) as refused:
            report_pb2_grpc.AgentReportsStub(ch).Report(request, metadata=md, timeout=10)
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    with grpc.insecure_channel(tls_mapper.query) as ch:
        with pytest.raises(grpc.RpcError) as unserved:
            report_pb2_grpc.AgentReportsStub(ch).Report(request, metadata=md, timeout=10)
    assert unserved.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert tls_mapper.listed() == []


def _start_fails(tmp_path: Path, *flags: str, env: dict[str, str] | None = None) -> str:
    (tmp_path / "token").write_text(TOKEN)
    out = clearance("mapper", "--listen", f"127.0.0.1:{free_port()}", "--db", str(tmp_path / "m.db"),
                    "--pods-file", str(pods_file(tmp_path / "pods.yaml", [])),
                    "--agent-token-file", str(tmp_path / "token"), *flags, env=env)
    assert out.returncode == 2, out.stderr
    assert "Traceback" not in out.stderr
    return out.stderr


def test_bad_tls_flags_stop_the_mapper_naming_the_flag(tmp_path: Path, test_pki: TestPKI) -> None:
    agents = ("--agent-listen", f"127.0.0.1:{free_port()}")
    assert "--tls-key" in _start_fails(tmp_path, *agents, "--tls-cert", str(test_pki.cert))
    assert "--tls-cert" in _start_fails(tmp_path, *agents, "--tls-key", str(test_pki.key))
    missing = str(tmp_path / "nope.pem")
    err = _start_fails(tmp_path, *agents, "--tls-cert", missing, "--tls-key", str(test_pki.key))
    assert "--tls-cert" in err and missing in err
    other = make_pki(tmp_path / "other")
    err = _start_fails(tmp_path, *agents, "--tls-cert", str(test_pki.cert), "--tls-key", str(other.key))
    assert "matching" in err
    err = _start_fails(tmp_path, "--tls-cert", str(test_pki.cert), "--tls-key", str(test_pki.key))
    assert "--agent-listen" in err
    err = _start_fails(tmp_path, *agents, env={"CLEARANCE_TLS_CERT": str(test_pki.cert)})  # env equivalent
    assert "--tls-key" in err
    assert str(test_pki.key.read_text()) not in err


def test_the_charts_certificate_serves_the_name_the_agents_dial(tmp_path: Path) -> None:
    """The Secret the chart makes, used as the chart wires it: the mapper serves tls.crt/tls.key,
    the agent verifies with ca.crt the host of --mapper=clearance-mapper.<ns>.svc:<agentPort>."""
    import base64

    from test_chart import REQUIRED, kinds, render

    docs = kinds(render(REQUIRED))
    data = docs["Secret/clearance-mapper-tls"]["data"]
    for key in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / key).write_bytes(base64.b64decode(data[key]))
    dialled = next(a for a in docs["DaemonSet/clearance-agent"]["spec"]["template"]["spec"]["containers"][0]["args"]
                   if a.startswith("--mapper="))
    host = dialled.removeprefix("--mapper=").rpartition(":")[0]
    tls = load_server_tls(str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))
    with running_mapper(tmp_path) as running:
        server, port = serve_agents(running.mapper, "127.0.0.1:0", tls)
        r = reporter(f"127.0.0.1:{port}", mapper_ca=str(tmp_path / "ca.crt"), server_name=host)
        try:
            r.submit([call()])
            assert wait_for(lambda: r.sent_batches == 1)
        finally:
            r.close()
            server.stop(None).wait()
        assert [i.workload.name for i in running.list().intents] == ["web"]
