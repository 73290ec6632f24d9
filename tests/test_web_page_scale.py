"""The access-graph page with 300 workloads in a real headless Chromium: every node and edge drawn,
no two node boxes overlap (also in a narrow window), and search / namespace / status filters narrow
the graph. The mapper is the real one (gRPC reports in, SQLite store, JSON API and page out)."""
from __future__ import annotations

import json
import urllib.request
from collections import Counter
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from beds.require import need
from clearance.mapper.web import serve_web
from test_mapper_support import call, running_mapper
from test_web_support import (
    COLOURS,
    chromium,
    chromium_missing,
    console_errors,
    edges,
    nodes,
    overlaps,
    page_state,
    screenshot,
    wait_for,
)

WORKLOADS = 300
NAMESPACES = ("shop", "billing", "search", "ml")
W042 = f"workload:{NAMESPACES[42 % len(NAMESPACES)]}/Deployment/w042"


def _pods() -> list[tuple[str, str, str, str]]:
    return [(NAMESPACES[i % len(NAMESPACES)], f"w{i:03d}-7d4b9c6f5-abcde", "ReplicaSet", f"w{i:03d}-7d4b9c6f5")
            for i in range(WORKLOADS)]


def _calls() -> list:
    out = []
    for i, (ns, pod, _, _) in enumerate(_pods()):
        account = f"{ns}data{(i // 4) % 2}"  # a namespace's workloads share its two accounts
        out.append(call(pod, namespace=ns, account=account, path=f"/data{i % 9}/{{name}}"))  # blobs/read: missing
        if i % 3 == 0:
            out.append(call(pod, namespace=ns, account=account, service="queue", path=f"/jobs{i % 4}/messages"))
        if i % 7 == 0:
            out.append(call(pod, namespace=ns, account=account, method="DELETE", path=f"/data{i % 9}/{{name}}",
                            status=403, error_code="AuthorizationPermissionMismatch"))
    return out


def _api(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as res:
        return json.load(res)


def test_three_hundred_workloads_are_drawn_without_overlap(tmp_path: Path) -> None:
    need(chromium_missing() is None, chromium_missing() or "")
    with running_mapper(tmp_path, pods=_pods(), max_calls=5000) as m:
        calls = _calls()
        for seq, start in enumerate(range(0, len(calls), 200), 1):
            assert m.report(calls[start:start + 200], seq=seq).accepted == len(calls[start:start + 200])
        httpd, port = serve_web(m.mapper, "127.0.0.1", 0)
        try:
            graph = _api(port, "/api/graph")
            api_workloads = [n for n in graph["nodes"] if n["type"] == "workload"]
            api_scopes = [n for n in graph["nodes"] if n["type"] == "scope"]
            assert len(api_workloads) == WORKLOADS
            statuses = Counter(e["status"] for e in graph["edges"])
            assert statuses["missing"] > 0 and statuses["denied"] > 0

            with chromium(tmp_path) as driver:
                driver.get(f"http://127.0.0.1:{port}/")
                drawn = wait_for("every edge to be drawn", lambda: (e := edges(driver)) and
                                 len(e) == len(graph["edges"]) and e, explain=lambda: page_state(driver))
                boxes = nodes(driver)
                assert Counter(b["type"] for b in boxes) == {"workload": WORKLOADS, "scope": len(api_scopes)}
                assert {b["id"] for b in boxes} == {n["id"] for n in graph["nodes"]}
                assert overlaps(boxes) == []
                assert all(b["w"] > 0 and b["h"] > 0 for b in boxes)
                assert Counter((e["from"], e["to"], e["status"]) for e in drawn) == \
                    Counter((e["from"], e["to"], e["status"]) for e in graph["edges"])
                assert all(e["length"] > 0 and e["stroke"] == COLOURS[e["status"]] for e in drawn)
                # Workloads left of every scope; scopes grouped by storage account, one group per account.
                right_of_workloads = max(b["x"] + b["w"] for b in boxes if b["type"] == "workload")
                assert min(b["x"] for b in boxes if b["type"] == "scope") > right_of_workloads
                groups = driver.execute_script("""return [...document.querySelectorAll('#scopes .group')].map(g =>
                    [g.querySelector('.group-head').textContent,
                     [...g.querySelectorAll('.node')].map(n => n.dataset.id)])""")
                assert sorted(head for head, _ in groups) == sorted(f"storage account {ns}data{k}" for ns in NAMESPACES
                                                                    for k in (0, 1))
                for head, ids in groups:
                    account = head.split()[-1]
                    assert ids and all(f"/storageAccounts/{account}/" in i for i in ids), (head, ids)
                screenshot(driver, "access-graph-300-workloads.png")
                screenshot(driver, "access-graph-300-workloads-top.png", full_page=False)

                # Search narrows to one workload and its edges.
                driver.find_element(By.ID, "search").send_keys("w042")
                one = wait_for("the search to apply", lambda: (e := edges(driver)) and
                               {x["from"] for x in e} == {W042} and e)
                assert len(one) == sum(1 for e in graph["edges"] if e["from"] == W042)
                driver.find_element(By.ID, "search").clear()
                driver.execute_script("document.getElementById('search').dispatchEvent(new Event('input'))")
                wait_for("the search to be cleared", lambda: len(edges(driver)) == len(graph["edges"]))

                # Status filter: only the denied edges, all red.
                Select(driver.find_element(By.ID, "status")).select_by_value("denied")
                denied = wait_for("the status filter", lambda: (e := edges(driver)) and
                                  len(e) == statuses["denied"] and e)
                assert {e["stroke"] for e in denied} == {COLOURS["denied"]}
                Select(driver.find_element(By.ID, "status")).select_by_value("")

                # Namespace filter: only that namespace's workloads.
                wait_for("the namespace list", lambda: driver.execute_script(
                    "return [...document.getElementById('namespace').options].map(o => o.value)")
                    == ["", *sorted(NAMESPACES)])
                Select(driver.find_element(By.ID, "namespace")).select_by_value("ml")
                wait_for("the namespace filter", lambda: (b := nodes(driver)) and
                         {x["id"].split("/")[0] for x in b if x["type"] == "workload"} == {"workload:ml"})
                Select(driver.find_element(By.ID, "namespace")).select_by_value("")
                wait_for("all workloads again", lambda: len(edges(driver)) == len(graph["edges"]))

                # A narrow window: still no overlap, every edge still drawn.
                driver.set_window_size(820, 900)
                wait_for("the edges to follow the resize", lambda: overlaps(nodes(driver)) == [] and
                         len(edges(driver)) == len(graph["edges"]) and
                         all(e["length"] > 0 for e in edges(driver)))
                assert console_errors(driver) == []
        finally:
            httpd.shutdown()
            httpd.server_close()
