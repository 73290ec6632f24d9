"""``clearance demo`` (the README's main command) runs end to end: Azurite, mapper, eBPF agent and
the tutorial's client pod; its table, exported ClientIntents and plan are asserted."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from beds.require import need

CLEARANCE = Path(sys.executable).with_name("clearance")
SCOPE = "/providers/Microsoft.Storage/storageAccounts/ottrazuredemo/blobServices/default/containers/"
BLOB = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/"


def can_ebpf() -> bool:
    try:
        import bcc  # noqa: F401
    except ImportError:
        return False
    return os.geteuid() == 0


def exported_document(output: str) -> dict:
    """The YAML between the export heading and the plan heading."""
    start = output.index("[demo] exported ClientIntents")
    body = output[output.index("\n", start) + 1: output.index("[demo] clearance plan")]
    return yaml.safe_load(body)


def test_demo_discovers_the_tutorials_least_privilege_intents(tmp_path: Path) -> None:
    need(can_ebpf(), "the demo needs root and bcc (eBPF)")
    workdir = tmp_path / "demo"
    out = subprocess.run([str(CLEARANCE), "demo", "--duration", "120", "--workdir", str(workdir)],
                         capture_output=True, text=True, timeout=300)
    text = out.stdout
    assert out.returncode == 0, text + out.stderr
    # Progress, then the table.
    assert "[demo] Azurite (HTTPS, OAuth) is the storage account ottrazuredemo" in text
    assert "[demo] client pod started: Deployment otterize-tutorial-azure-iam/client" in text
    header = next(line for line in text.splitlines() if line.startswith("NAMESPACE"))
    assert header.split() == ["NAMESPACE", "WORKLOAD", "SCOPE", "PERMISSIONS", "STATUS", "LAST", "SEEN"]
    rows = [line.split() for line in text.splitlines() if line.startswith("otterize-tutorial-azure-iam ")]
    assert any(r[1] == "Deployment/client" and r[2] == SCOPE + "downloads" and BLOB + "read" in r[3] and r[4] == "missing"
               for r in rows), rows
    assert any(r[2] == SCOPE + "uploads" and BLOB + "write" in r[3] for r in rows), rows
    # The complete ClientIntents: read on downloads; what an overwriting upload needs on uploads.
    doc = exported_document(text)
    assert doc["apiVersion"] == "clearance.dev/v1" and doc["kind"] == "ClientIntents"
    assert doc["metadata"] == {"name": "client-intents-for-client", "namespace": "otterize-tutorial-azure-iam"}
    assert doc["spec"]["workload"] == {"name": "client", "kind": "Deployment"}
    targets = {t["azure"]["scope"]: t["azure"] for t in doc["spec"]["targets"]}
    assert targets == {
        SCOPE + "downloads": {"scope": SCOPE + "downloads", "dataActions": [BLOB + "read"]},
        SCOPE + "uploads": {"scope": SCOPE + "uploads", "dataActions": [BLOB + "write"]},
    }
    # The plan: one custom role and one assignment per target, nothing else.
    plan = text[text.index("[demo] clearance plan"):]
    assert plan.count("+ create    roleDefinition") == 2
    assert plan.count("+ create    roleAssignment") == 2
    assert "Plan: 4 to create, 0 to update, 0 to delete." in plan
    # It cleaned up: no process of the demo is left, nor its cgroups.
    leftover = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""


def test_demo_without_root_says_what_to_do() -> None:
    # A new user namespace without a mapping: the demo runs as "nobody" yet can still read its files.
    need(subprocess.run(["unshare", "--user", "true"]).returncode == 0, "unshare --user is not available")
    out = subprocess.run(["unshare", "--user", str(CLEARANCE), "demo"], capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "needs root" in out.stderr and "sudo" in out.stderr


def test_ctrl_c_stops_everything_the_demo_started(tmp_path: Path) -> None:
    import re
    import signal
    import time

    need(can_ebpf(), "the demo needs root and bcc (eBPF)")
    workdir = tmp_path / "demo"
    proc = subprocess.Popen([str(CLEARANCE), "demo", "--workdir", str(workdir)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    deadline = time.monotonic() + 180
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if "client pod started" in line or time.monotonic() > deadline:
            break
    started = "".join(seen)
    assert "client pod started" in started, started
    cgroup = Path(re.search(r"cgroup (\S+\.scope)", started).group(1))
    assert cgroup.is_dir()
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, started + rest
    assert "interrupted: stopping everything the demo started" in rest
    assert not cgroup.exists()
    leftover = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True)
    assert leftover.stdout.strip() == ""
