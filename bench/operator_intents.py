"""Benchmark: 500 ClientIntents x 3 targets reconciled against the ARM bed (token bucket, 50 ms latency).

Targets per ClientIntents: a custom role on its own blob container, a built-in role on the storage
account, a Key Vault access policy. Prints ARM writes against the minimum (2 + 1 + 1 per
ClientIntents), wall time against what the write bucket allows ((writes - burst) / refill),
429s seen, and the writes of a second resync (expected: 0).
Run: .venv/bin/python bench/operator_intents.py [--intents 500] [--latency-ms 50] [--concurrency 64]
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from beds.arm import start_arm_server  # noqa: E402
from beds.certs import make_pki  # noqa: E402
from beds.kube import start_kube_server  # noqa: E402
from test_operator_identity_harness import bed_settings, core, ensure_namespace, make_pod, make_sa  # noqa: E402

from clearance.operator.api import parse_client_intents  # noqa: E402
from clearance.operator.azure.arm import ArmClients  # noqa: E402
from clearance.operator.azure.identities import Identities  # noqa: E402
from clearance.operator.intents.reconciler import IntentsReconciler  # noqa: E402

BURST, REFILL = 200, 10.0
# The operator's own pacer runs a little under ARM's bucket so that send-time jitter never
# meets an empty bucket (0 x 429) at a cost of ~5% of the bucket's rate.

BLOB_READ = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/read"
WRITES = ("PUT", "PATCH", "POST", "DELETE")


def intents_doc(i: int, account: str) -> dict:
    return {"apiVersion": "clearance.dev/v1", "kind": "ClientIntents",
            "metadata": {"name": f"app-{i:03d}", "namespace": f"bench-{i:03d}"},
            "spec": {"workload": {"name": f"app-{i:03d}"}, "targets": [
                {"azure": {"scope": f"{account}/blobServices/default/containers/c{i:03d}", "dataActions": [BLOB_READ]}},
                {"azure": {"scope": account, "roles": ["Storage Blob Delegator"]}},
                {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/bench-kv",
                           "keyVaultPolicy": {"secretPermissions": ["get"]}}}]}}


def arm_writes(arm) -> int:  # noqa: ANN001
    return len([c for c in arm.calls() if c.method in WRITES and "/oauth2/" not in c.path])


async def reconcile_all(reconciler: IntentsReconciler, docs: list, records: list, concurrency: int) -> list:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> object:
        async with gate:
            return await reconciler.reconcile(parse_client_intents(docs[i]), records[i])
    return await asyncio.gather(*(one(i) for i in range(len(docs))))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--intents", type=int, default=500)
    parser.add_argument("--latency-ms", type=float, default=50)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    n = args.intents
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        arm, kube = start_arm_server(pki), start_kube_server()
        try:
            settings = bed_settings(arm)
            sub, rg = arm.subscription_id, arm.resource_group
            arm.add_storage_account(sub, rg, "benchdata")
            for i in range(n):
                arm.add_container(sub, rg, "benchdata", f"c{i:03d}")
            arm.add_vault(sub, rg, "bench-kv")
            account = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/benchdata"
            api = core(kube)
            for i in range(n):
                ns = f"bench-{i:03d}"
                ensure_namespace(api, ns)
                make_sa(api, ns, "app")
                make_pod(api, ns, f"app-{i:03d}", "app", labels={})
            docs = [intents_doc(i, account) for i in range(n)]

            async def run() -> dict:
                client = ArmClients(settings, credential=arm.credential())
                try:
                    identities = Identities(client, settings)
                    arm.faults.throttle(enabled=False)  # set-up only: identities are not what is measured
                    for i in range(n):
                        await identities.ensure(f"bench-{i:03d}", "app")
                    reconciler = IntentsReconciler(client, settings, identities, api)
                    arm.faults.latency_ms = args.latency_ms
                    arm.faults.throttle(BURST, REFILL)
                    client.pacer.__init__(settings.write_burst, settings.write_rate)  # start full, like the bed's bucket
                    arm.calls.clear()
                    start = time.monotonic()
                    first = await reconcile_all(reconciler, docs, [{}] * n, args.concurrency)
                    wall = time.monotonic() - start
                    writes = arm_writes(arm)
                    throttled = len(arm.calls(status=429))
                    not_ready = sum(1 for o in first for s in o.states if s.type != "Ready")
                    arm.calls.clear()
                    start2 = time.monotonic()
                    await reconcile_all(reconciler, docs, [o.record for o in first], args.concurrency)
                    return {"wall": wall, "writes": writes, "throttled": throttled, "not_ready": not_ready,
                            "resync_writes": arm_writes(arm), "resync_wall": time.monotonic() - start2}
                finally:
                    await client.close()
            result = asyncio.run(run())
        finally:
            arm.stop()
            kube.stop()
    minimum = n * 4
    allowed = max(0.0, (minimum - BURST) / REFILL)
    print(f"ClientIntents: {n} x 3 targets, ARM latency {args.latency_ms:.0f} ms, bucket {BURST} burst / {REFILL:.0f}/s")
    print(f"targets not Ready after the first pass: {result['not_ready']}")
    print(f"ARM writes: {result['writes']} (minimum {minimum})")
    print(f"wall time: {result['wall']:.1f} s (bucket allows {allowed:.1f} s; ratio "
          f"{result['wall'] / allowed if allowed else float('nan'):.2f})")
    print(f"429 responses: {result['throttled']}")
    print(f"second resync: {result['resync_writes']} writes in {result['resync_wall']:.1f} s")
    ok = (result["writes"] == minimum and result["throttled"] == 0 and result["resync_writes"] == 0
          and result["not_ready"] == 0 and (not allowed or result["wall"] <= 1.2 * allowed))
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
