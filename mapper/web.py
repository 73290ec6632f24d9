"""The JSON-over-HTTP query API (documented in docs/mapper-api.md):

GET /api/intents?namespace=&workload=&status=   {"intents": [...], "unknown": [...]}
GET /api/export?namespace=&workload=&status=&format=clearance|otterize   {"documents": [...]}
GET /api/graph?namespace=&workload=&status=     {"nodes": [...], "edges": [...]}
GET /healthz                                     ok
GET /  and  /assets/<file>                       the access-graph page (mapper/webpage/), no CDN
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from .intents import Intent, unknown_to_json
from .service import Mapper

log = logging.getLogger("clearance.mapper.web")

_PARAMS = {"namespace", "workload", "status", "format"}
WEBPAGE = Path(__file__).resolve().parent / "webpage"
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# The page loads only its own assets and talks only to this server.
_PAGE_HEADERS = {"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                 "img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"}


def load_assets(directory: Path = WEBPAGE) -> dict[str, tuple[bytes, str]]:
    """The page's files by name (read once; only these names are ever served)."""
    if not (directory / "index.html").is_file():
        raise RuntimeError(f"the access-graph page is missing: no {directory / 'index.html'}")
    return {f.name: (f.read_bytes(), _TYPES[f.suffix]) for f in sorted(directory.iterdir())
            if f.is_file() and f.suffix in _TYPES and not f.name.startswith(".")}


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


def make_handler(mapper: Mapper, assets: dict[str, tuple[bytes, str]] | None = None) -> type[BaseHTTPRequestHandler]:
    page = load_assets() if assets is None else assets

    class Handler(BaseHTTPRequestHandler):
        server_version = "clearance-mapper"

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            url = urlsplit(self.path)
            if url.path in ("/", "/index.html") or url.path.startswith("/assets/"):
                return self._asset(url.path)
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

        def _asset(self, path: str) -> None:
            name = "index.html" if path in ("/", "/index.html") else unquote(path.removeprefix("/assets/"))
            found = page.get(name)
            if found is None:
                return self._send(404, {"error": f"no such page asset: {path}"})
            data, ctype = found
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-cache")
            for k, v in _PAGE_HEADERS.items():
                self.send_header(k, v)
            self.end_headers()
            self._write(data)

        def _write(self, data: bytes) -> None:
            try:
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                log.debug("client went away", extra={"fields": {"path": urlsplit(self.path).path}})

        def _send(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self._write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("http " + format % args)

    return Handler


def serve_web(mapper: Mapper, host: str, port: int) -> tuple[ThreadingHTTPServer, int]:
    """Start the JSON API and the page in a daemon thread; returns (server, bound port)."""
    httpd = ThreadingHTTPServer((host, port), make_handler(mapper))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, name="web", daemon=True).start()
    return httpd, httpd.server_address[1]
