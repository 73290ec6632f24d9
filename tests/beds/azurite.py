"""Test bed: Azurite (Azure Storage emulator) over HTTPS with OAuth, and real SDK clients for it.

Fixtures: ``azurite`` (session-scoped; tests use unique container/queue/table names) and
``azurite_fresh`` (one Azurite per test, for tests that need an empty or a restartable emulator).

Host-style endpoints (``https://<account>.blob.localhost:<port>``) need the names to resolve.
glibc does not resolve ``*.localhost`` on its own (no nss-myhostname here), so the bed appends one
marked line to /etc/hosts, idempotently, for every account and service (``ensure_hosts``). That line
is harmless (all names point to 127.0.0.1) and is left in place for later runs; it is the only
thing the bed does not remove.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from beds.certs import TestPKI
from clients.fake_credential import FakeWorkloadIdentityCredential

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = REPO / "tests" / "beds" / "azurite" / "node_modules" / ".bin" / "azurite"
SERVICES = ("blob", "queue", "table")
DEFAULT_ACCOUNT = "devstoreaccount1"
DEFAULT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
SECOND_ACCOUNT = "clearancetwo"
HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = "# clearance test beds"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_hosts(names: list[str], hosts_file: Path = HOSTS_FILE) -> None:
    """Make every name in ``names`` resolve to 127.0.0.1 through ``hosts_file`` (idempotent)."""
    def resolves(name: str) -> bool:
        try:
            return any(ai[4][0] == "127.0.0.1" for ai in socket.getaddrinfo(name, None, socket.AF_INET))
        except OSError:
            return False

    missing = [n for n in names if not resolves(n)]
    if not missing:
        return
    with hosts_file.open("a") as f:
        f.write(f"127.0.0.1 {' '.join(missing)} {HOSTS_MARK}\n")


@dataclass
class Azurite:
    """A running Azurite: endpoints, trust anchor, credential and SDK client factories."""

    ca_cert: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    log_path: Path
    account: str = DEFAULT_ACCOUNT
    accounts: tuple[str, ...] = (DEFAULT_ACCOUNT, SECOND_ACCOUNT)
    _cred: FakeWorkloadIdentityCredential = field(default_factory=FakeWorkloadIdentityCredential)

    def url(self, service: str, style: str = "path", account: str | None = None) -> str:
        """The account endpoint of ``service``: path style ``https://127.0.0.1:P/acct`` or host style."""
        acct = account or self.account
        port = self.ports[service]
        if style == "path":
            return f"https://127.0.0.1:{port}/{acct}"
        if style == "host":
            return f"https://{acct}.{service}.localhost:{port}"
        raise ValueError(f"style must be 'path' or 'host', not {style!r}")

    def blob_url(self, style: str = "path", account: str | None = None) -> str:
        return self.url("blob", style, account)

    def queue_url(self, style: str = "path", account: str | None = None) -> str:
        return self.url("queue", style, account)

    def table_url(self, style: str = "path", account: str | None = None) -> str:
        return self.url("table", style, account)

    def endpoint_template(self, service: str, style: str = "path") -> str:
        """The agent's ``--endpoint`` template for ``service`` (``{account}`` placeholder)."""
        return self.url(service, style, "{account}")

    def credential(self) -> FakeWorkloadIdentityCredential:
        """A TokenCredential whose tokens Azurite accepts."""
        return self._cred

    def sdk_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that make an SDK client trust the test CA."""
        return {"connection_verify": str(self.ca_cert)}

    def blob_service_client(self, style: str = "path", account: str | None = None) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.blob_url(style, account), credential=self._cred, **self.sdk_kwargs())

    def queue_service_client(self, style: str = "path", account: str | None = None) -> Any:
        from azure.storage.queue import QueueServiceClient

        return QueueServiceClient(self.queue_url(style, account), credential=self._cred, **self.sdk_kwargs())

    def table_service_client(self, style: str = "path", account: str | None = None) -> Any:
        from azure.data.tables import TableServiceClient

        return TableServiceClient(self.table_url(style, account), credential=self._cred, **self.sdk_kwargs())

    def stop(self) -> None:
        """Stop the emulator (idempotent)."""
        _stop(self.process)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    except ProcessLookupError:
        pass


def _wait_listening(proc: subprocess.Popen[bytes], ports: list[int], log_path: Path, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        if time.monotonic() > end:
            raise RuntimeError(f"azurite did not listen on {pending} in {deadline_s}s: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.1)


def start_azurite(pki: TestPKI, workdir: Path, attempts: int = 3) -> Azurite:
    """Start Azurite over HTTPS with OAuth on free ports; the caller must ``stop()`` it."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} is missing: run scripts/install")
    if shutil.which("node") is None:
        raise RuntimeError("node is not on PATH: run scripts/install")
    ensure_hosts([f"{a}.{s}.localhost" for a in (DEFAULT_ACCOUNT, SECOND_ACCOUNT) for s in SERVICES])
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AZURITE_ACCOUNTS=f"{DEFAULT_ACCOUNT}:{DEFAULT_KEY};{SECOND_ACCOUNT}:{DEFAULT_KEY}")
    last_error: Exception | None = None
    for attempt in range(attempts):
        ports = {s: free_port() for s in SERVICES}
        log_path = workdir / f"azurite-{attempt}.log"
        argv = [str(AZURITE_BIN), "--cert", str(pki.cert), "--key", str(pki.key), "--oauth", "basic",
                "--disableTelemetry", "--skipApiVersionCheck", "--inMemoryPersistence", "--silent",
                "--blobHost", "127.0.0.1", "--blobPort", str(ports["blob"]),
                "--queueHost", "127.0.0.1", "--queuePort", str(ports["queue"]),
                "--tableHost", "127.0.0.1", "--tablePort", str(ports["table"])]
        with log_path.open("wb") as log:
            proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            _wait_listening(proc, list(ports.values()), log_path, deadline_s=30)
        except RuntimeError as e:
            _stop(proc)
            last_error = e
            continue
        return Azurite(ca_cert=pki.ca_cert, ports=ports, process=proc, log_path=log_path)
    raise RuntimeError(f"azurite did not start after {attempts} attempts: {last_error}")


@pytest.fixture(scope="session")
def azurite(test_pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session (HTTPS, --oauth basic, blob+queue+table, in memory)."""
    az = start_azurite(test_pki, tmp_path_factory.mktemp("azurite"))
    try:
        yield az
    finally:
        az.stop()


@pytest.fixture
def azurite_fresh(test_pki: TestPKI, tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite of this test alone."""
    az = start_azurite(test_pki, tmp_path / "azurite")
    try:
        yield az
    finally:
        az.stop()
