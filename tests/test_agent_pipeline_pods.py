"""KubePods against the Kubernetes API test server: this node's pods only, live updates, deletions."""
from __future__ import annotations

import time

from clearance.nodeagent.pods import KubePods


def wait_for(cond, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def pod(name: str, node: str, sa: str = "orders") -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop",
                         "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "orders-7d9c",
                                              "uid": "11111111-2222-3333-4444-555555555555", "controller": True}]},
            "spec": {"nodeName": node, "serviceAccountName": sa, "containers": [{"name": "api", "image": "x"}]}}


def test_kube_pods_watches_only_this_node(kube_server):
    mine = kube_server.create(pod("orders-7d9c-x2x1", "node-1"))
    other = kube_server.create(pod("orders-7d9c-y3y2", "node-2"))
    kube_server.set_status("v1", "Pod", "shop", "orders-7d9c-x2x1", {
        "containerStatuses": [{"name": "api", "containerID": "containerd://" + "a" * 64, "ready": True,
                               "restartCount": 0, "image": "x", "imageID": "x"}]})
    source = KubePods("node-1", kube_server.api_client(), watch_timeout_s=5)
    try:
        assert source.wait_synced(20)
        assert wait_for(lambda: source.get(mine["metadata"]["uid"]) is not None
                        and source.get(mine["metadata"]["uid"]).containers)
        p = source.get(mine["metadata"]["uid"])
        assert (p.namespace, p.name, p.service_account, p.owner_kind, p.owner_name) == (
            "shop", "orders-7d9c-x2x1", "orders", "ReplicaSet", "orders-7d9c")
        assert p.containers == {"a" * 64: "api"}
        assert source.get(other["metadata"]["uid"]) is None

        late = kube_server.create(pod("billing-1", "node-1", sa="billing"))
        assert wait_for(lambda: source.get(late["metadata"]["uid"]) is not None)
        kube_server.delete("v1", "Pod", "shop", "orders-7d9c-x2x1")
        # a deleted pod stays known for a while: its last calls are still attributed
        time.sleep(0.5)
        assert source.get(mine["metadata"]["uid"]).name == "orders-7d9c-x2x1"
    finally:
        source.close()
