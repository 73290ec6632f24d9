"""Benchmark: 200 labelled pods across 100 ServiceAccounts converge on the ARM and kube test beds.

Prints wall time to convergence, ARM calls by verb and status, identity/credential creates per
ServiceAccount, and 429s seen (the bed runs ARM's write token bucket: 200 burst, 10/s).
Run: .venv/bin/python bench/operator_identities.py [--service-accounts 100] [--pods-per-sa 2]
"""
from __future__ import annotations

import argparse
import collections
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from beds.arm import start_arm_server  # noqa: E402
from beds.certs import make_pki  # noqa: E402
from beds.kube import start_kube_server  # noqa: E402
from test_operator_identity_harness import (  # noqa: E402
    bed_settings, core, ensure_namespace, fic_puts, identity_puts, make_pod, make_sa, start_operator,
)

from clearance.operator.identity import labels as L  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--service-accounts", type=int, default=100)
    parser.add_argument("--pods-per-sa", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pki = make_pki(Path(tmp))
        arm, kube = start_arm_server(pki), start_kube_server()
        op = None
        try:
            op = start_operator(bed_settings(arm), kube, arm, pki)
            api = core(kube)
            ensure_namespace(api, "bench")
            sas = [f"sa-{i:03d}" for i in range(args.service_accounts)]
            for sa in sas:
                make_sa(api, "bench", sa)
            arm.calls.clear()
            start = time.monotonic()
            for p in range(args.pods_per_sa):
                for sa in sas:
                    make_pod(api, "bench", f"{sa}-{p}", sa)
            created = time.monotonic() - start
            pending = set(sas)
            while pending and time.monotonic() - start < args.timeout:
                for sa in list(pending):
                    meta = api.api_client.sanitize_for_serialization(
                        api.read_namespaced_service_account(sa, "bench"))["metadata"]
                    if (meta.get("annotations") or {}).get(L.SA_CLIENT_ID):
                        pending.discard(sa)
                if pending:
                    time.sleep(0.2)
            wall = time.monotonic() - start
            by_verb = collections.Counter(f"{c.method} {c.status}" for c in arm.calls())
            id_creates = [len(identity_puts(arm, op.settings, "bench", sa, status=201)) for sa in sas]
            fic_creates = [len(fic_puts(arm, op.settings, "bench", sa)) for sa in sas]
            print(f"pods: {args.pods_per_sa * len(sas)}  service accounts: {len(sas)}")
            print(f"pods created in {created:.2f}s; converged: {len(sas) - len(pending)}/{len(sas)} in {wall:.2f}s wall")
            print("ARM calls by verb/status: " + ", ".join(f"{k}={v}" for k, v in sorted(by_verb.items())))
            print(f"identity creates per SA: min={min(id_creates)} max={max(id_creates)}; "
                  f"credential PUTs per SA: min={min(fic_creates)} max={max(fic_creates)}")
            print(f"429 answers: {len(arm.calls(status=429))}")
            ok = not pending and set(id_creates) == {1} and set(fic_creates) == {1}
            print("RESULT:", "ok" if ok else "NOT CONVERGED AS EXPECTED")
            return 0 if ok else 1
        finally:
            if op is not None:
                op.stop()
            kube.stop()
            arm.stop()


if __name__ == "__main__":
    sys.exit(main())
