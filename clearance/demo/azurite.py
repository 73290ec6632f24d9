"""Run Azurite (the Azure Storage emulator, pinned in tests/beds/azurite) over HTTPS with OAuth.

Used by ``clearance demo`` as the storage account and by the test beds.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from clearance.demo.credential import LocalWorkloadCredential
from clearance.demo.pki import LocalPKI

REPO = Path(__file__).resolve().parents[2]
AZURITE_BIN = Path(os.environ.get("CLEARANCE_AZURITE", REPO / "tests" / "beds" / "azurite" / "node_modules" / ".bin" / "azurite"))
SERVICES = ("blob", "queue", "table")
# Azurite's well-known development key; every emulated account uses it.
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
HOSTS_FILE = Path("/etc/hosts")
HOSTS_MARK = "# clearance local endpoints"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_hosts(names: list[str], hosts_file: Path = HOSTS_FILE) -> None:
    """Make every name resolve to 127.0.0.1 through ``hosts_file`` (idempotent; one marked line).

    glibc does not resolve ``*.localhost`` on its own, and host-style endpoints
    (``https://<account>.blob.localhost:<port>``) need it.
    """
    def resolves(name: str) -> bool:
        try:
            return any(ai[4][0] == "127.0.0.1" for ai in socket.getaddrinfo(name, None, socket.AF_INET))
        except OSError:
            return False

    missing = [n for n in names if not resolves(n)]
    if missing:
        with hosts_file.open("a") as f:
            f.write(f"127.0.0.1 {' '.join(missing)} {HOSTS_MARK}\n")


@dataclass
class Azurite:
    """A running Azurite: its endpoints and trust anchor."""

    ca_cert: Path
    ports: dict[str, int]
    process: subprocess.Popen[bytes]
    log_path: Path
    accounts: tuple[str, ...]
    account: str = field(init=False)
    _credential: LocalWorkloadCredential = field(default_factory=LocalWorkloadCredential)

    def __post_init__(self) -> None:
        self.account = self.accounts[0]

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
        """The URL template of the agent's ``--endpoint SERVICE=TEMPLATE`` (``{account}`` placeholder)."""
        return self.url(service, style, "{account}")

    def credential(self) -> LocalWorkloadCredential:
        """A TokenCredential whose bearer tokens Azurite accepts."""
        return self._credential

    def sdk_kwargs(self) -> dict[str, Any]:
        """Keyword arguments that make an SDK client trust the local CA."""
        return {"connection_verify": str(self.ca_cert)}

    def blob_service_client(self, style: str = "path", account: str | None = None) -> Any:
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient(self.blob_url(style, account), credential=self._credential, **self.sdk_kwargs())

    def queue_service_client(self, style: str = "path", account: str | None = None) -> Any:
        from azure.storage.queue import QueueServiceClient

        return QueueServiceClient(self.queue_url(style, account), credential=self._credential, **self.sdk_kwargs())

    def table_service_client(self, style: str = "path", account: str | None = None) -> Any:
        from azure.data.tables import TableServiceClient

        return TableServiceClient(self.table_url(style, account), credential=self._credential, **self.sdk_kwargs())

    def stop(self) -> None:
        """Stop the emulator (idempotent)."""
        stop_process_group(self.process)


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process group, SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)
    except ProcessLookupError:
        pass


def _wait_listening(proc: subprocess.Popen[bytes], ports: list[int], log_path: Path, deadline_s: float) -> None:
    end = time.monotonic() + deadline_s
    pending = list(ports)
    while pending:
        if proc.poll() is not None:
            raise RuntimeError(f"azurite exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
        if time.monotonic() > end:
            raise RuntimeError(f"azurite did not listen on {pending} within {deadline_s}s: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", pending[0]), timeout=0.5):
                pending.pop(0)
        except OSError:
            time.sleep(0.1)


def start_azurite(pki: LocalPKI, workdir: Path, accounts: tuple[str, ...] = ("devstoreaccount1",),
                  attempts: int = 3, host_style: bool = True) -> Azurite:
    """Start Azurite over HTTPS with ``--oauth basic`` on free ports; the caller must ``stop()`` it."""
    if not AZURITE_BIN.exists():
        raise RuntimeError(f"{AZURITE_BIN} is missing: run scripts/install (or set CLEARANCE_AZURITE)")
    if shutil.which("node") is None:
        raise RuntimeError("node is not on PATH: run scripts/install")
    if host_style:
        ensure_hosts([f"{a}.{s}.localhost" for a in accounts for s in SERVICES])
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, AZURITE_ACCOUNTS=";".join(f"{a}:{DEV_KEY}" for a in accounts))
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
        except RuntimeError as exc:
            stop_process_group(proc)
            last_error = exc
            continue
        return Azurite(ca_cert=pki.ca_cert, ports=ports, process=proc, log_path=log_path, accounts=accounts)
    raise RuntimeError(f"azurite did not start after {attempts} attempts: {last_error}")
