"""End to end: real SDK clients in two fake pods -> the `clearance agent` process (real eBPF) ->
an in-test gRPC AgentReports receiver. Attribution, before/after-start processes, late ssl,
restart, and canary secrets absent from reports and logs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from beds.azurite import Azurite
from beds.pods import FakePod, FakePods
from beds.require import need
from clearance.v1 import report_pb2, report_pb2_grpc

pytestmark = pytest.mark.ebpf
REPO = Path(__file__).resolve().parents[1]
CLIENT = Path(__file__).parent / "clients" / "storage_calls.py"
AGENT_TOKEN = "agent-token-" + uuid.uuid4().hex


class Receiver(report_pb2_grpc.AgentReportsServicer):
    def __init__(self) -> None:
        self.requests: list[report_pb2.ReportRequest] = []
        self.auth: list[str] = []
        self.lock = threading.Lock()

    def Report(self, request, context):  # noqa: ANN001, ANN201, N802
        with self.lock:
            self.requests.append(request)
            self.auth.append(dict(context.invocation_metadata()).get("authorization", ""))
        return report_pb2.ReportResponse(accepted=len(request.calls))

    def calls(self) -> list[report_pb2.ObservedCall]:
        with self.lock:
            return [c for r in self.requests for c in r.calls]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, int]]:
    rec = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    report_pb2_grpc.add_AgentReportsServicer_to_server(rec, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield rec, port
    finally:
        server.stop(0)


class AgentProcess:
    def __init__(self, argv: list[str], log_path: Path) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def wait_started(self, timeout_s: float = 90) -> None:
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise AssertionError(f"agent exited {self.proc.returncode}: {self.log_path.read_text()[-3000:]}")
            if self.log_path.read_text().count("agent started") > self.starts:
                return
            time.sleep(0.2)
        raise AssertionError(f"agent did not start: {self.log_path.read_text()[-3000:]}")

    starts = 0

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode


@pytest.fixture
def agent_factory(tmp_path: Path) -> Iterator:
    need(os.geteuid() == 0, "the agent needs root for eBPF")
    started: list[AgentProcess] = []
    log_path = tmp_path / "agent.log"

    def start(args: list[str]) -> AgentProcess:
        tok = tmp_path / "token"
        tok.write_text(AGENT_TOKEN)
        a = AgentProcess([str(REPO / ".venv" / "bin" / "clearance"), "agent", "--metrics-port", "0",
                          "--node-name", "node-1", "--token-file", str(tok), *args], log_path)
        a.starts = log_path.read_text().count("agent started") if log_path.exists() else 0
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()


def wait_for(cond, timeout_s: float = 60) -> bool:  # noqa: ANN001
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.2)
    return False


def of_pod(calls: list[report_pb2.ObservedCall], pod: FakePod) -> list[report_pb2.ObservedCall]:
    return [c for c in calls if c.caller.pod_uid == pod.uid]


def client(fake_pods: FakePods, ns: str, name: str, sa: str, service: str, url: str, ca: Path, go: Path,
           canary: str, *extra: str) -> FakePod:
    return fake_pods.start(ns, name, [sys.executable, str(CLIENT), "--service", service, "--url", url,
                                      "--ca", str(ca), "--go", str(go), "--canary", canary, *extra],
                           service_account=sa, owner=("Deployment", name))


def test_two_pods_attributed_restart_and_no_secrets(azurite: Azurite, fake_pods: FakePods, receiver, agent_factory,
                                                    tmp_path: Path) -> None:  # noqa: ANN001
    rec, port = receiver
    canary = "CANARY" + uuid.uuid4().hex
    go1, go2, go3 = tmp_path / "go1", tmp_path / "go2", tmp_path / "go3"
    # Started before the agent: a blob client (path style) and a late-ssl queue client (host style).
    orders = client(fake_pods, "shop", "orders", "orders-sa", "blob", azurite.blob_url("path"), azurite.ca_cert, go1,
                    canary)
    jobs = client(fake_pods, "billing", "jobs", "jobs-sa", "queue", azurite.queue_url("host"), azurite.ca_cert, go1,
                  canary, "--late-import")
    pods_file = tmp_path / "pods.yaml"
    # The third pod is listed in advance; it starts only after the agent restarts.
    ledger_uid_holder: list[FakePod] = []
    fake_pods.pods_file(pods_file)
    args = ["--mapper", f"127.0.0.1:{port}", "--pods-file", str(pods_file),
            "--endpoint", f"blob={azurite.endpoint_template('blob', 'path')}",
            "--endpoint", f"queue={azurite.endpoint_template('queue', 'host')}",
            "--endpoint", f"table={azurite.endpoint_template('table', 'path')}"]
    agent = agent_factory(args)
    agent.wait_started()
    go1.touch()
    orders.check()
    jobs.check()
    assert wait_for(lambda: len(of_pod(rec.calls(), orders)) >= 5 and len(of_pod(rec.calls(), jobs)) >= 4), \
        (rec.calls(), agent.log_path.read_text()[-3000:])

    # Restart the agent mid-run; a table client started after the new agent also gets through.
    assert agent.stop() == 0
    agent = agent_factory(args)
    agent.wait_started()
    ledger = client(fake_pods, "shop", "ledger", "ledger-sa", "table", azurite.table_url("path"), azurite.ca_cert, go3,
                    canary)
    ledger_uid_holder.append(ledger)
    fake_pods.pods_file(pods_file)
    time.sleep(1.5)  # the pods file is re-read at most once a second
    go3.touch()
    ledger.check()
    assert wait_for(lambda: len(of_pod(rec.calls(), ledger)) >= 4), (rec.calls(), agent.log_path.read_text()[-3000:])
    assert agent.stop() == 0

    calls = rec.calls()
    for pod, service, sa in ((orders, "blob", "orders-sa"), (jobs, "queue", "jobs-sa"), (ledger, "table", "ledger-sa")):
        mine = of_pod(calls, pod)
        assert mine, f"nothing from {pod.name}"
        for c in mine:
            assert (c.caller.namespace, c.caller.pod_name, c.caller.service_account) == (pod.namespace, pod.name, sa)
            assert (c.caller.owner_kind, c.caller.owner_name) == ("Deployment", pod.name)
            assert c.service == service and c.account == "devstoreaccount1" and not c.caller.host
    blob = of_pod(calls, orders)
    assert any(c.method == "PUT" and c.query.get("restype") == "container" and c.status == 201 for c in blob), blob
    assert any(c.method == "PUT" and c.path.endswith("{name}") for c in blob), [c.path for c in blob]
    assert any(c.method == "POST" and "messages" in c.path for c in of_pod(calls, jobs))
    assert set(rec.auth) == {f"Bearer {AGENT_TOKEN}"}

    # Canary secrets: SAS sig, body, metadata, blob name, bearer tokens: absent from reports and logs.
    wire = b"".join(r.SerializeToString() for r in rec.requests)
    logs = agent.log_path.read_bytes()
    for secret in (canary.encode(), b"eyJ", b"Bearer ey", b"sig="):
        assert secret not in wire, secret
        assert secret not in logs, secret


def test_first_call_of_a_process_on_a_new_libssl_file_is_reported(azurite: Azurite, fake_pods: FakePods, receiver,
                                                                    agent_factory, tmp_path: Path) -> None:  # noqa: ANN001
    """A pod whose libssl is a file the agent has never seen (its own image's copy), loaded only when
    the work starts: its very first call is reported, not only those after the next periodic rescan."""
    import shutil

    rec, port = receiver
    libdir = tmp_path / "image-lib"
    libdir.mkdir()
    shutil.copy("/lib/x86_64-linux-gnu/libssl.so.3", libdir / "libssl.so.3")
    go = tmp_path / "go"
    pod = fake_pods.start("shop", "oneshot", [sys.executable, str(CLIENT), "--service", "blob",
                                              "--url", azurite.blob_url("path"), "--ca", str(azurite.ca_cert),
                                              "--go", str(go), "--late-import"],
                          env={"LD_LIBRARY_PATH": str(libdir)}, service_account="oneshot-sa",
                          owner=("Job", "oneshot"))
    pods_file = fake_pods.pods_file(tmp_path / "pods.yaml")
    agent = agent_factory(["--mapper", f"127.0.0.1:{port}", "--pods-file", str(pods_file),
                           "--endpoint", f"blob={azurite.endpoint_template('blob', 'path')}"])
    agent.wait_started()
    go.touch()  # now it imports ssl (mapping the copy) and makes its calls at once
    assert '"op": "create_container", "ok": true' in pod.check()
    first = lambda: [c for c in of_pod(rec.calls(), pod)  # noqa: E731
                     if c.method == "PUT" and c.query.get("restype") == "container"]
    assert wait_for(lambda: bool(first())), (rec.calls(), agent.log_path.read_text()[-3000:])
    (call,) = first()
    assert (call.caller.pod_name, call.caller.service_account, call.service, call.status) == \
        ("oneshot", "oneshot-sa", "blob", 201)
    assert str(libdir) in agent.log_path.read_text()  # attached to the copy: the log names it
    assert agent.stop() == 0


def test_log_level_flag_is_kept_by_the_agent(tmp_path: Path) -> None:
    """``clearance --log-level error agent ...``: the agent does not set logging up again at info."""
    import logging

    from clearance import cli

    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        rc = cli.main(["--log-level", "error", "agent", "--mapper", "127.0.0.1:1", "--metrics-port", "0",
                       "--token-file", str(tmp_path / "missing-token")])
        assert rc == 2  # refused the missing token file after logging was set up
        assert root.level == logging.ERROR
        assert len(root.handlers) == 1
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


@pytest.mark.parametrize("open_hints", [True, False])
def test_full_rescan_is_rare_only_while_hints_find_libraries(open_hints: bool) -> None:
    """Exec and open hints active: the /proc rescan every 30 s; without the open hint: every 2 s."""
    need(os.geteuid() == 0, "eBPF needs root")
    from clearance.nodeagent.capture import Capture

    cap = Capture(lambda ev: None, open_hints=open_hints)
    try:
        cap.start()
        st = cap.stats()
        need(st["load_hints"], "load hints unavailable on this kernel")
        assert st["rescan_interval_s"] == (30.0 if open_hints else 2.0)
    finally:
        cap.close()
    assert Capture(lambda ev: None, load_hints=False).rescan_interval_s == 2.0
