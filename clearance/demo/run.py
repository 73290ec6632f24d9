"""``clearance demo``: the Azure IAM tutorial end to end on one machine, with no cluster and no Azure.

Azurite plays the storage account, the mapper and the eBPF node agent run as they would on a node,
and the tutorial's client runs as a pod (its own kubelet-style cgroup) with the real Azure SDK.
The demo prints the discovered intents as they appear, then the exported ClientIntents and the
plan of Azure role changes they imply. It stops everything it started, also on Ctrl-C.
"""
from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from clearance.demo.azurite import Azurite

NAMESPACE = "otterize-tutorial-azure-iam"
WORKLOAD = "client"
ACCOUNT = "ottrazuredemo"
EXPECTED = {
    "downloads": {"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"},
    "uploads": {"Microsoft.Storage/storageAccounts/blobServices/containers/blobs/write"},
}


def say(text: str) -> None:
    print(f"[demo] {text}", flush=True)


def preflight() -> str | None:
    """Why the demo cannot run here, or None."""
    if os.geteuid() != 0:
        return "the demo needs root (eBPF uprobes and cgroups): run it with sudo, e.g. `sudo make demo`"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "bcc is not importable: install Debian's python3-bpfcc (scripts/install does)"
    release = os.uname().release
    if not Path(f"/lib/modules/{release}/build").exists() and not Path("/sys/kernel/kheaders.tar.xz").exists() \
            and not os.environ.get("BCC_KERNEL_SOURCE"):
        return (f"no kernel headers for {release}: install linux-headers-{release} "
                "(scripts/install links Debian's headers when the kernel has no package)")
    return None


class Demo:
    """Starts the parts, shows the results, cleans up."""

    def __init__(self, workdir: Path, duration: float, clearance: list[str]) -> None:
        self.workdir = workdir
        self.duration = duration
        self.clearance = clearance
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.procs.append((name, proc))
        return proc

    def stop_all(self) -> None:
        from clearance.demo.azurite import stop_process_group

        for _, proc in reversed(self.procs):
            stop_process_group(proc)

    def check_alive(self) -> None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")

    def cli(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.clearance, *args], capture_output=True, text=True, input=stdin, timeout=60)

    def run(self) -> int:
        from clearance.demo.azurite import free_port, start_azurite
        from clearance.demo.pki import make_pki
        from clearance.demo.pods import LocalPods

        with ExitStack() as stack:
            stack.callback(self.stop_all)
            pki = make_pki(self.workdir / "pki")
            azurite = start_azurite(pki, self.workdir / "azurite", accounts=(ACCOUNT,), host_style=False)
            stack.callback(azurite.stop)
            account_url = azurite.url("blob")
            say(f"Azurite (HTTPS, OAuth) is the storage account {ACCOUNT} at {account_url}")
            self.seed(azurite)
            say("created containers downloads and uploads, and downloads/hello.txt")

            token = self.workdir / "agent-token"
            token.write_text(secrets.token_urlsafe(32))
            token.chmod(0o600)
            pods = LocalPods(self.workdir / "pods")
            stack.callback(pods.close)
            pods_file = self.workdir / "pods.yaml"
            pods.pods_file(pods_file)

            grpc_port, agents_port = free_port(), free_port()
            mapper, agents = f"127.0.0.1:{grpc_port}", f"127.0.0.1:{agents_port}"
            self.spawn("mapper", [*self.clearance, "mapper", "--listen", mapper, "--db", str(self.workdir / "clearance.db"),
                                  "--pods-file", str(pods_file), "--agent-token-file", str(token),
                                  "--agent-listen", agents, "--tls-cert", str(pki.cert), "--tls-key", str(pki.key)])
            self.wait_port(grpc_port, "mapper")
            self.wait_port(agents_port, "mapper")
            say(f"mapper listening on {mapper} (SQLite store {self.workdir / 'clearance.db'}); "
                f"agents report to {agents} over TLS")
            self.spawn("agent", [*self.clearance, "agent", "--mapper", agents, "--mapper-ca", str(pki.ca_cert),
                                 "--pods-file", str(pods_file), "--token-file", str(token), "--metrics-port", "0",
                                 "--endpoint", f"blob={azurite.endpoint_template('blob')}"])
            say("node agent started: eBPF uprobes on OpenSSL (SSL_write/SSL_read and their _ex forms)")
            time.sleep(3)
            self.check_alive()

            client = pods.start(NAMESPACE, "client-7d9c4b8f6-x2x1q",
                                [sys.executable, "-m", "clearance.demo.client", "--account-url", account_url,
                                 "--ca", str(pki.ca_cert)],
                                service_account=WORKLOAD, owner=("Deployment", WORKLOAD), container="client")
            pods.pods_file(pods_file)
            say(f"client pod started: Deployment {NAMESPACE}/{WORKLOAD}, ServiceAccount {WORKLOAD}, "
                f"pid {client.pid}, cgroup {client.cgroup_dir}")
            return self.watch(mapper, client)
        return 1

    def seed(self, azurite: Azurite) -> None:
        """The tutorial's storage: containers downloads and uploads, and downloads/hello.txt."""
        service = azurite.blob_service_client()
        for name in ("downloads", "uploads"):
            service.create_container(name)
        service.get_blob_client("downloads", "hello.txt").upload_blob(b"Hello, Azure integration\n")

    def wait_port(self, port: int, name: str, timeout: float = 60) -> None:
        import socket

        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"{name} did not listen on port {port} within {timeout}s")

    def watch(self, mapper: str, client) -> int:  # noqa: ANN001
        import json

        end = time.monotonic() + self.duration
        shown = ""
        complete = False
        while time.monotonic() < end:
            time.sleep(2)
            self.check_alive()
            table = self.cli("intents", "list", "--mapper", mapper, "-n", NAMESPACE)
            if table.returncode != 0:
                say(f"intents list failed: {table.stderr.strip()}")
                continue
            if table.stdout != shown:
                shown = table.stdout
                say("discovered intents:")
                print(shown, flush=True)
            listed = json.loads(self.cli("intents", "list", "--mapper", mapper, "-n", NAMESPACE, "-o", "json").stdout)
            if self.has_expected(listed):
                complete = True
                break
        last = client.stdout().strip().splitlines()[-2:]
        for line in last:
            say(f"client says: {line}")
        export = self.cli("intents", "export", "--mapper", mapper, "-n", NAMESPACE, "--workload", WORKLOAD)
        if export.returncode != 0:
            say(f"export failed: {export.stderr.strip()}")
            return 1
        say("exported ClientIntents (review, then `clearance intents apply -f` or `kubectl apply -f`):")
        print(export.stdout, flush=True)
        plan = self.cli("plan", "-f", "-", "--offline", stdin=export.stdout)
        say("clearance plan --offline (the Azure changes the operator would make):")
        print(plan.stdout or plan.stderr, flush=True)
        if not complete:
            say(f"did not see every expected permission within {self.duration:.0f}s; logs in {self.workdir}")
            return 1
        say("done: the client's least-privilege permissions were discovered from its TLS traffic")
        return 0 if plan.returncode == 0 else 1

    @staticmethod
    def has_expected(listed: dict) -> bool:
        seen: dict[str, set[str]] = {}
        for intent in listed.get("intents", []):
            container = intent["scope"].rsplit("/", 1)[-1]
            seen.setdefault(container, set()).update(intent.get("dataActions", []))
        return all(want <= seen.get(c, set()) for c, want in EXPECTED.items())


def run_demo(args: argparse.Namespace) -> int:
    """Entry point of ``clearance demo``."""
    problem = preflight()
    if problem:
        print(f"clearance demo: {problem}", file=sys.stderr)
        return 2
    keep = args.workdir is not None
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="clearance-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    clearance = [sys.executable, "-m", "clearance"]
    demo = Demo(workdir, args.duration, clearance)
    previous = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    try:
        return demo.run()
    except KeyboardInterrupt:
        say("interrupted: stopping everything the demo started")
        return 130
    except RuntimeError as exc:
        say(f"failed: {exc}")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
