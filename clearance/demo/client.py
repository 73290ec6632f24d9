"""The tutorial's client: download hello.txt from ``downloads``, upload to ``uploads``, in a loop.

Runs as the demo's "pod" with the real Azure SDK for Python and a bearer token, as a pod with an
Azure workload identity would (the tutorial's client does the same with ``az storage blob``).
"""
from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--account-url", required=True)
    p.add_argument("--ca", required=True, help="CA bundle that signed the storage endpoint's certificate")
    p.add_argument("--interval", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=0, help="stop after this many rounds (0: forever)")
    args = p.parse_args(argv)

    from azure.storage.blob import BlobServiceClient

    from clearance.demo.credential import LocalWorkloadCredential

    service = BlobServiceClient(args.account_url, credential=LocalWorkloadCredential(), connection_verify=args.ca)
    done = 0
    while True:
        stamp = time.strftime("%H:%M:%S")
        try:
            data = service.get_blob_client("downloads", "hello.txt").download_blob().readall()
            print(f"client {stamp} downloaded hello.txt from downloads: {data.decode().strip()!r}", flush=True)
            service.get_blob_client("uploads", "hello.txt").upload_blob(b"hello", overwrite=True)
            print(f"client {stamp} uploaded hello.txt to uploads", flush=True)
        except Exception as exc:  # noqa: BLE001 - a demo client reports and keeps going
            print(f"client {stamp} error: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}", flush=True)
        done += 1
        if args.rounds and done >= args.rounds:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
