"""The JSON-over-HTTP query API (documented in docs/mapper-api.md):

GET /api/intents?namespace=&workload=&status=   {"intents": [...], "unknown": [...]}
GET /api/export?namespace=&workload=&status=&format=clearance|otterize   {"documents": [...]}
GET /api/graph?namespace=&workload=&status=     {"nodes": [...], "edges": [...]}
GET /healthz                                     ok
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .intents import Intent, unknown_to_json
from .service import Mapper

log = logging.getLogger("clearance.mapper.web")

_PARAMS = {"namespace", "workload", "status", "format"}


def graph(intents: list[Intent]) -> dict[str, Any]:
    """Workloads and Azure scopes as nodes; one edge per (workload, scope, status)."""
    nodes: dict[str, dict[str, Any]] = {}
    edges = []
    for e in intents:
        wid = f"workload:{e.namespace}/{e.kind}/{e.name}"
        sid = f"scope:{e.scope}"
        nodes.setdefault(wid, {"id": wid, "type": "workload", "namespace": e.namespace, "kind": e.kind,
                               "name": e.name})
        nodes.setdefault(sid, {"id": sid, "type": "scope", "scope": e.scope})
        edges.append({"from": wid, "to": sid, "status": e.status, "actions": e.actions,
                      "dataActions": e.data_actions, "calls": e.calls, "lastSeen": e.last_seen})
    return {"nodes": list(nodes.values()), "edges": edges}


def make_handler(mapper: Mapper) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "clearance-mapper"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            raw = parse_qs(url.query, keep_blank_values=True)
            bad = sorted(set(raw) - _PARAMS)
            if bad:
                return self._send(400, {"error": f"unknown query parameter(s): {', '.join(bad)}"})
            q = {k: v[-1] for k, v in raw.items()}
            sel = dict(namespace=q.get("namespace", ""), workload=q.get("workload", ""), status=q.get("status", ""))
            try:
                if url.path == "/healthz":
                    return self._send(200, {"status": "ok"})
                if url.path == "/api/intents":
                    body = {"intents": [e.to_json() for e in mapper.intents(**sel)],
                            "unknown": [unknown_to_json(u) for u in mapper.unknown(sel["namespace"], sel["workload"])]}
                elif url.path == "/api/export":
                    docs = mapper.export(**sel, format=q.get("format") or "clearance")
                    body = {"documents": [{"namespace": d.namespace, "workload": {"kind": d.kind, "name": d.name},
                                           "document": d.document, "yaml": d.yaml()} for d in docs]}
                elif url.path == "/api/graph":
                    body = graph(mapper.intents(**sel))
                else:
                    return self._send(404, {"error": f"no such endpoint: {url.path}"})
            except ValueError as exc:
                return self._send(400, {"error": str(exc)})
            except Exception:  # noqa: BLE001 - never take the server down on one request
                log.exception("query failed", extra={"fields": {"path": url.path}})
                return self._send(500, {"error": "internal error; see the mapper's log"})
            self._send(200, body)

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("http " + format % args)

    return Handler


def serve_web(mapper: Mapper, host: str, port: int) -> tuple[ThreadingHTTPServer, int]:
    """Start the JSON API in a daemon thread; returns (server, bound port)."""
    httpd = ThreadingHTTPServer((host, port), make_handler(mapper))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="web", daemon=True).start()
    return httpd, httpd.server_address[1]
