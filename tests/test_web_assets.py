"""The mapper serves the access-graph page itself: index, assets with their content types, no
external references (works offline), and nothing outside mapper/webpage/ (path traversal refused)."""
from __future__ import annotations

import http.client
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from beds.require import need
from clearance.mapper.web import WEBPAGE, load_assets, serve_web
from test_mapper_support import running_mapper


@pytest.fixture
def web(tmp_path: Path) -> Iterator[int]:
    with running_mapper(tmp_path) as m:
        httpd, port = serve_web(m.mapper, "127.0.0.1", 0)
        try:
            yield port
        finally:
            httpd.shutdown()
            httpd.server_close()


def get(port: int, path: str, method: str = "GET") -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        # skip_host etc. are not needed; putrequest keeps the raw path exactly as given.
        conn.putrequest(method, path, skip_accept_encoding=True)
        conn.endheaders()
        res = conn.getresponse()
        return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
    finally:
        conn.close()


def test_index_and_assets_are_served_with_their_content_types(web: int) -> None:
    status, headers, body = get(web, "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    assert body == (WEBPAGE / "index.html").read_bytes()
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    for name, ctype in (("app.js", "text/javascript; charset=utf-8"), ("style.css", "text/css; charset=utf-8")):
        status, headers, body = get(web, f"/assets/{name}")
        assert (status, headers["content-type"]) == (200, ctype), name
        assert body == (WEBPAGE / name).read_bytes()
        assert int(headers["content-length"]) == len(body)


def test_the_page_references_only_its_own_assets() -> None:
    html = (WEBPAGE / "index.html").read_text()
    refs = [r for r in re.findall(r'(?:src|href)="([^"]+)"', html) if r != "data:,"]  # the empty favicon
    assert refs and all(r.startswith("/assets/") for r in refs), refs
    for name, (data, _) in load_assets().items():
        text = data.decode()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), f"{name} refers to another origin"
        assert "@import" not in text, name
    assert {r.removeprefix("/assets/") for r in refs} <= set(load_assets())


@pytest.mark.parametrize("path", [
    "/assets/../web.py", "/assets/..%2fweb.py", "/assets/%2e%2e%2fweb.py", "/assets/%2E%2E/web.py",
    "/assets/..%5cweb.py", "/assets//etc/passwd", "/assets/%2fetc%2fpasswd", "/assets/", "/assets/.",
    "/assets/nope.js", "/../../etc/passwd", "/assets/app.js%00.css", "/webpage/app.js", "/web.py",
])
def test_path_traversal_and_unknown_files_are_refused(web: int, path: str) -> None:
    status, headers, body = get(web, path)
    assert status == 404, (path, body[:200])
    assert headers["content-type"] == "application/json"
    assert b"def " not in body and b"root:" not in body
    assert "error" in json.loads(body)


def test_only_get_is_served(web: int) -> None:
    status, _, _ = get(web, "/", method="POST")
    assert status == 501


def test_a_missing_page_is_a_clear_start_up_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="access-graph page is missing"):
        load_assets(tmp_path)


def test_the_script_parses() -> None:
    node = shutil.which("node")
    need(node is not None, "node is not on PATH (scripts/install puts it there for Azurite)")
    res = subprocess.run([node, "--check", str(WEBPAGE / "app.js")], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
