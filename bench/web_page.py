"""The access-graph page with many workloads, in headless Chromium.

Fills an in-process mapper (real gRPC reports, SQLite store, JSON API and page) with N workloads
(2 intents each on average; a third denied), opens the page, and prints medians of: GET /api/graph
(server + transfer, from the page), a full render (DOM, scope placement and edges), a redraw of
the edges alone, and the scripting time of a refresh that finds nothing changed.

    .venv/bin/python bench/web_page.py [--workloads 300 1000] [--rounds 7]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from clearance.mapper.web import serve_web  # noqa: E402
from test_mapper_support import call, running_mapper  # noqa: E402
from test_web_support import chromium, chromium_missing, edges, wait_for  # noqa: E402

NAMESPACES = ("shop", "billing", "search", "ml", "batch", "web", "ops", "data")

MEASURE = """
const done = arguments[arguments.length - 1];
(async () => {
  const t0 = performance.now(); const res = await fetch('/api/graph', {cache: 'no-store'}); await res.text();
  const t1 = performance.now(); render();
  const t2 = performance.now(); drawEdges(visibleGraph().edges);
  const t3 = performance.now(); await refresh();
  const t4 = performance.now();
  done([t1 - t0, t2 - t1, t3 - t2, t4 - t3]);
})();
"""


def pods(n: int) -> list[tuple[str, str, str, str]]:
    return [(NAMESPACES[i % len(NAMESPACES)], f"w{i:04d}-7d4b9c6f5-abcde", "ReplicaSet", f"w{i:04d}-7d4b9c6f5")
            for i in range(n)]


def fill(m, n: int) -> int:  # noqa: ANN001
    """Report the calls of ``n`` workloads; returns the number of intents (edges)."""
    calls = []
    for i, (ns, pod, _, _) in enumerate(pods(n)):
        account = f"{ns}data{(i // 8) % 3}"
        calls.append(call(pod, namespace=ns, account=account, path=f"/c{i % 11}/{{name}}"))
        if i % 2:
            calls.append(call(pod, namespace=ns, account=account, method="PUT", path=f"/c{i % 5}/{{name}}",
                              headers={"x-ms-blob-type": "BlockBlob"}))
        if i % 3 == 0:
            calls.append(call(pod, namespace=ns, account=account, method="DELETE", path=f"/c{i % 7}/{{name}}",
                              status=403, error_code="AuthorizationPermissionMismatch"))
    for seq, start in enumerate(range(0, len(calls), 500), 1):
        m.report(calls[start:start + 500], seq=seq)
    return len(m.mapper.intents(namespace="", workload="", status=""))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workloads", type=int, nargs="+", default=[300, 1000])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    if chromium_missing():
        print(f"cannot run: {chromium_missing()}", file=sys.stderr)
        return 2
    print(f"{'workloads':>9} {'intents':>8} {'GET graph ms':>13} {'render ms':>10} {'edges ms':>9} {'idle refresh ms':>16}"
          f" {'page load s':>12}")
    for n in args.workloads:
        with tempfile.TemporaryDirectory(prefix="clearance-bench-web-") as tmp, \
                running_mapper(Path(tmp), pods=pods(n), max_calls=100_000) as m:
            intents = fill(m, n)
            httpd, port = serve_web(m.mapper, "127.0.0.1", 0)
            try:
                with chromium(Path(tmp), 1500, 1000) as driver:
                    start = time.monotonic()
                    driver.get(f"http://127.0.0.1:{port}/")
                    wait_for("every edge", lambda: len(edges(driver)) == intents, seconds=300, every=0.05)
                    load = time.monotonic() - start
                    rows = [driver.execute_async_script(MEASURE) for _ in range(args.rounds)]
            finally:
                httpd.shutdown()
                httpd.server_close()
        med = [statistics.median(r[i] for r in rows) for i in range(4)]
        print(f"{n:>9} {intents:>8} {med[0]:>13.1f} {med[1]:>10.1f} {med[2]:>9.1f} {med[3]:>16.1f} {load:>12.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
