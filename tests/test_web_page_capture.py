"""The access-graph page in a real headless Chromium against a mapper filled by a real capture run:
Azurite over HTTPS, `clearance mapper` (with applied ClientIntents read from the Kubernetes API test
server) and `clearance agent` (eBPF uprobes on OpenSSL) as subprocesses, and pods (kubelet-style
cgroups) calling storage with the real Azure SDK, wired as `clearance demo` wires them.

Workload shop/web reads downloads (granted by an applied ClientIntents: green), writes uploads
(not granted: yellow) and deletes in archive through a read-only SAS (Azurite answers 403
AuthorizationPermissionMismatch: red). A second workload started while the page is open appears
without a reload. A screenshot is saved under artifacts/.
"""
from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import sys
import textwrap
import urllib.request
from contextlib import ExitStack
from pathlib import Path

from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By

from beds.require import need
from clearance.demo.azurite import DEV_KEY, free_port, start_azurite
from clearance.demo.pki import make_pki
from clearance.demo.pods import LocalPods
from clearance.demo.run import Demo, preflight
from clearance.operator.api import crd_manifest
from test_web_support import (
    COLOURS,
    chromium,
    chromium_missing,
    click_workload,
    console_errors,
    edges,
    page_state,
    panel_yaml,
    screenshot,
    wait_for,
)

CLEARANCE = [str(Path(sys.executable).with_name("clearance"))]
ACCOUNT = "shopdata"
NS = "shop"
CONTAINERS = f"/providers/Microsoft.Storage/storageAccounts/{ACCOUNT}/blobServices/default/containers/"
BLOBS = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/"
WEB = f"workload:{NS}/Deployment/web"
REPORTER = f"workload:{NS}/Deployment/reporter"

# The pods' program: the Azure SDK with a workload-identity-style bearer token, in a loop until killed.
POD = textwrap.dedent('''
    import sys, time
    from azure.storage.blob import BlobServiceClient, ContainerClient
    from clearance.demo.credential import LocalWorkloadCredential

    role, url, ca, sas_url = sys.argv[1:5]
    service = BlobServiceClient(url, credential=LocalWorkloadCredential(), connection_verify=ca, retry_total=0)
    archive = ContainerClient.from_container_url(sas_url, connection_verify=ca, retry_total=0)
    while True:
        try:
            if role == "web":
                service.get_blob_client("downloads", "hello.txt").download_blob().readall()
                service.get_blob_client("uploads", "hello.txt").upload_blob(b"hello", overwrite=True)
                try:
                    archive.delete_blob("old.txt")
                except Exception as exc:
                    print("delete refused:", getattr(exc, "error_code", exc), flush=True)
            else:
                service.get_blob_client("uploads", "hello.txt").download_blob().readall()
            print("round done", flush=True)
        except Exception as exc:
            print("error:", type(exc).__name__, str(exc)[:200], flush=True)
        time.sleep(1)
''')


def applied_intents() -> dict:
    """What the user applied for shop/web: read on downloads only."""
    return {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents",
            "metadata": {"name": "web-intents", "namespace": NS},
            "spec": {"workload": {"name": "web", "kind": "Deployment"},
                     "targets": [{"azure": {"scope": CONTAINERS + "downloads", "dataActions": [BLOBS + "read"]}}]}}


def api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as res:
        return json.load(res)


def healthy(port: int) -> bool:
    try:
        return api(port, "/healthz") == {"status": "ok"}
    except OSError:
        return False


def readonly_sas_url(azurite) -> str:  # noqa: ANN001
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    sas = generate_container_sas(ACCOUNT, "archive", account_key=DEV_KEY, permission=ContainerSasPermissions(read=True),
                                 expiry=dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1))
    return f"{azurite.url('blob')}/archive?{sas}"


def test_page_shows_a_real_capture_run(tmp_path: Path, kube_server) -> None:  # noqa: ANN001
    need(preflight() is None, preflight() or "")
    need(chromium_missing() is None, chromium_missing() or "")
    kube_server.create(crd_manifest())
    kube_server.create(applied_intents())

    with ExitStack() as stack:
        procs = Demo(tmp_path, 0, CLEARANCE)  # the demo's process handling: spawn, check_alive, cli, stop_all
        stack.callback(procs.stop_all)
        pki = make_pki(tmp_path / "pki")
        azurite = start_azurite(pki, tmp_path / "azurite", accounts=(ACCOUNT,), host_style=False)
        stack.callback(azurite.stop)
        blobs = azurite.blob_service_client()
        for name in ("downloads", "uploads", "archive"):
            blobs.create_container(name)
        blobs.get_blob_client("downloads", "hello.txt").upload_blob(b"hello\n")
        blobs.get_blob_client("archive", "old.txt").upload_blob(b"old\n")

        token = tmp_path / "agent-token"
        token.write_text(secrets.token_urlsafe(32))
        token.chmod(0o600)
        pods = LocalPods(tmp_path / "pods")
        stack.callback(pods.close)
        pods_file = pods.pods_file(tmp_path / "pods.yaml")
        grpc_port, web_port = free_port(), free_port()
        mapper = f"127.0.0.1:{grpc_port}"
        procs.spawn("mapper", [*CLEARANCE, "mapper", "--listen", mapper, "--db", str(tmp_path / "clearance.db"),
                               "--pods-file", str(pods_file), "--agent-token-file", str(token),
                               "--kubeconfig", str(kube_server.kubeconfig), "--web-port", str(web_port)])
        procs.wait_port(grpc_port, "mapper")
        wait_for("the mapper's web port", lambda: procs.check_alive() or healthy(web_port))
        procs.spawn("agent", [*CLEARANCE, "agent", "--mapper", mapper, "--pods-file", str(pods_file),
                              "--token-file", str(token), "--metrics-port", "0",
                              "--endpoint", f"blob={azurite.endpoint_template('blob')}"])
        wait_for("the agent to attach its probes", lambda: procs.check_alive() or
                 "agent started" in (tmp_path / "agent.log").read_text(errors="replace"), seconds=120)

        script = tmp_path / "pod.py"
        script.write_text(POD)
        argv = [sys.executable, str(script), "web", azurite.url("blob"), str(pki.ca_cert), readonly_sas_url(azurite)]
        web = pods.start(NS, "web-7d4b9c6f5-x2x1q", argv, service_account="web", owner=("Deployment", "web"),
                         cwd=tmp_path)
        pods.pods_file(pods_file)

        # The mapper's own view (what a script sees) once the capture has found all three.
        def web_intents() -> dict[str, str]:
            procs.check_alive()
            found = {i["scope"].rsplit("/", 1)[-1]: i["status"] for i in api(web_port, "/api/intents?workload=web")["intents"]}
            return found if {"downloads", "uploads", "archive"} <= set(found) else {}
        assert wait_for("the capture to find web's three intents", web_intents, seconds=180) == \
            {"downloads": "applied", "uploads": "missing", "archive": "denied"}, web.stdout()[-2000:]
        assert "AuthorizationPermissionMismatch" in web.stdout()

        with chromium(tmp_path) as driver:
            driver.get(f"http://127.0.0.1:{web_port}/")
            driver.execute_script("window.__sameDocument = true")

            # Nodes and edges, with the legend's colours as the computed stroke.
            want = {(WEB, f"scope:{CONTAINERS}downloads"): "applied", (WEB, f"scope:{CONTAINERS}uploads"): "missing",
                    (WEB, f"scope:{CONTAINERS}archive"): "denied"}
            drawn = wait_for("web's three edges", lambda: (e := edges(driver)) and
                             {(x["from"], x["to"]): x["status"] for x in e} == want and e,
                             explain=lambda: page_state(driver))
            for e in drawn:
                assert e["stroke"] == COLOURS[e["status"]], e
                assert e["length"] > 0
            perms = {e["status"]: e["permissions"] for e in drawn}
            assert perms == {"applied": [BLOBS + "read"], "missing": [BLOBS + "write"], "denied": [BLOBS + "delete"]}
            labels = driver.execute_script(
                "return [...document.querySelectorAll('.node')].map(n => n.dataset.id + ' ' + n.innerText)")
            assert any(t.startswith(WEB) and "web" in t for t in labels), labels
            assert any(t.startswith(f"scope:{CONTAINERS}archive") and "archive" in t for t in labels), labels
            heads = driver.execute_script(
                "return [...document.querySelectorAll('#scopes .group-head')].map(h => h.textContent)")
            assert heads == [f"storage account {ACCOUNT}"]

            # Hovering an edge shows its status and permissions.
            denied = driver.find_element(By.CSS_SELECTOR, "#edges path.denied")
            ActionChains(driver).move_to_element(denied).perform()
            tip = wait_for("the tooltip", lambda: driver.execute_script(
                "const t = document.getElementById('tooltip'); return !t.hidden && t.textContent"))
            hovered = driver.execute_script(
                "const p = document.querySelector('#edges path:hover'); return p && p.dataset.status")
            assert tip.startswith(f"{hovered} · ") and (BLOBS + {"applied": "read", "missing": "write",
                                                                 "denied": "delete"}[hovered]) in tip, tip

            # Click the workload: its complete ClientIntents, exactly what `clearance intents export` prints.
            click_workload(driver, WEB)
            cli = procs.cli("intents", "export", "--mapper", mapper, "-n", NS, "--workload", "web")
            assert cli.returncode == 0, cli.stderr
            shown = wait_for("the YAML panel", lambda: (y := panel_yaml(driver)).startswith("apiVersion") and y)
            assert shown == cli.stdout
            assert "name: web-intents" in shown  # updates the applied document
            driver.find_element(By.ID, "download").click()
            saved = wait_for("the download", lambda: (p := tmp_path / "downloads" / f"{NS}.web.yaml").is_file()
                             and p.stat().st_size == len(shown.encode()) and p)
            assert saved.read_text() == cli.stdout
            driver.execute_cdp_cmd("Browser.grantPermissions", {"origin": f"http://127.0.0.1:{web_port}",
                                   "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
            driver.find_element(By.ID, "copy").click()
            wait_for("the copy to be confirmed", lambda: driver.find_element(By.ID, "copied").text == "copied")
            pasted = driver.execute_async_script(
                "const done = arguments[0]; navigator.clipboard.readText().then(done, e => done('error: ' + e))")
            assert pasted == cli.stdout

            # A workload started now appears without a reload (live refresh).
            assert not [e for e in edges(driver) if e["from"] == REPORTER]
            pods.start(NS, "reporter-5f6d7c8b9-q1w2e", [*argv[:2], "reporter", *argv[3:]], service_account="reporter",
                       owner=("Deployment", "reporter"), cwd=tmp_path)
            pods.pods_file(pods_file)
            new = wait_for("the new workload's edge", lambda: procs.check_alive() or
                           [e for e in edges(driver) if e["from"] == REPORTER], seconds=180)
            assert [(e["to"], e["status"], e["stroke"]) for e in new] == \
                [(f"scope:{CONTAINERS}uploads", "missing", COLOURS["missing"])]
            assert driver.execute_script("return window.__sameDocument") is True
            assert driver.find_elements(By.CSS_SELECTOR, f'.node.workload[data-id="{REPORTER}"]')
            path = screenshot(driver, "access-graph-capture.png")
            assert path.stat().st_size > 10_000
            assert console_errors(driver) == []
