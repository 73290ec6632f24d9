"""Run the emulated Kubernetes API on a free port in a background thread; helpers for tests."""
from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import os
import shutil
import tempfile
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp.web
import kopf
import kubernetes.client
import yaml

from .emulator import KubeEmulator
from .errors import ApiError
from .selection import field_matcher, label_matcher

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class RecordedRequest:
    """What a test may count: no headers, no bodies (they can carry tokens)."""

    method: str
    path: str
    query: dict[str, str]


class KubeServer:
    """An HTTP Kubernetes API on 127.0.0.1 with fresh state; use :func:`start_kube_server`, then ``stop()``."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None
        self._failure: BaseException | None = None
        self._tmpdir = tempfile.mkdtemp(prefix="kube-testbed-")
        self.handler: KubeEmulator | None = None  # kmock handler: add reactions here to inject faults
        self.port = 0

    # --- life cycle -----------------------------------------------------------------------------

    def start(self) -> "KubeServer":
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="kube-testbed", daemon=True)
        self._thread.start()
        if not ready.wait(30) or self._failure is not None:
            raise RuntimeError(f"the Kubernetes test server did not start: {self._failure!r}")
        self._write_kubeconfig()
        return self

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as e:  # reported to start() or stop()
            self._failure = e
            ready.set()

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self.handler = KubeEmulator()
        async with self.handler:
            runner = aiohttp.web.ServerRunner(aiohttp.web.Server(self.handler, handler_cancellation=True),
                                              shutdown_timeout=5)
            await runner.setup()
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            self.port = runner.addresses[0][1]
            self.handler.address = f"127.0.0.1:{self.port}"
            _ = self.handler.store  # default namespaces exist before the first request
            ready.set()
            try:
                await self._stopped.wait()
            finally:
                self.handler.stop_watches()
                await runner.cleanup()

    def stop(self) -> None:
        """Stop serving, end all watches, and remove the kubeconfig. Safe to call twice."""
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(30)
            self._thread = None
        shutil.rmtree(self._tmpdir, ignore_errors=True)

    def __enter__(self) -> "KubeServer":
        return self

    def __exit__(self, *_: Any) -> None:
        self.stop()

    # --- connection -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig(self) -> str:
        return os.path.join(self._tmpdir, "kubeconfig")

    def _write_kubeconfig(self) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "testbed",
            "clusters": [{"name": "testbed", "cluster": {"server": self.url}}],
            "users": [{"name": "testbed", "user": {"token": "testbed-admin"}}],
            "contexts": [{"name": "testbed", "context": {"cluster": "testbed", "user": "testbed",
                                                         "namespace": "default"}}],
        }
        with open(self.kubeconfig, "w", encoding="utf-8") as f:
            yaml.safe_dump(config, f)

    def api_client(self) -> kubernetes.client.ApiClient:
        """A real kubernetes ApiClient for this server (close it, or use it as a context manager)."""
        configuration = kubernetes.client.Configuration()
        configuration.host = self.url
        return kubernetes.client.ApiClient(configuration)

    def kopf_login(self, **_: Any) -> kopf.ConnectionInfo:
        """Use as ``kopf.on.login()(kube_server.kopf_login)``."""
        return kopf.ConnectionInfo(server=self.url, insecure=True)

    # --- direct state helpers (run on the server's loop; they bypass HTTP but not the rules) ---

    def _call(self, fn: Callable[[], T]) -> T:
        if self._loop is None:
            raise RuntimeError("the Kubernetes test server is not running")

        async def run() -> T:
            return fn()
        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(30)

    def _kind(self, api_version: str, kind: str) -> Any:
        assert self.handler is not None
        found = self.handler.catalog.by_kind(api_version, kind)
        if found is None:
            raise LookupError(f"the test server does not serve {kind} in {api_version}")
        return found

    def create(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Seed an object as given, status included; its namespace is created if missing."""
        handler = self.handler
        assert handler is not None
        kind = self._kind(str(obj.get("apiVersion")), str(obj.get("kind")))
        version = str(obj["apiVersion"]).rpartition("/")[2]
        namespace = (obj.get("metadata") or {}).get("namespace") or ("default" if kind.namespaced else None)

        def create() -> dict[str, Any]:
            ns_kind = handler.catalog.find("", "v1", "namespaces")
            if namespace and handler.store.get((("", "namespaces"), None, namespace)) is None:
                handler.create_object(ns_kind, "v1", None, {"metadata": {"name": namespace}},  # type: ignore
                                      manager="testbed")
            return handler.create_object(kind, version, namespace, obj, manager="testbed", keep_status=True)
        return self._call(create)

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """The object as the API would show it, or None."""
        handler = self.handler
        assert handler is not None
        found = self._kind(api_version, kind)
        version = api_version.rpartition("/")[2]

        def get() -> dict[str, Any] | None:
            obj = handler.store.get((found.storage_key, namespace if found.namespaced else None, name))
            return handler._out(obj, found, version) if obj is not None else None
        return self._call(get)

    def list(self, api_version: str, kind: str, namespace: str | None = None, label_selector: str = "",
             field_selector: str = "") -> list[dict[str, Any]]:
        handler = self.handler
        assert handler is not None
        found = self._kind(api_version, kind)
        labels = label_matcher(label_selector)
        fields = field_matcher(field_selector, found.field_labels, found.kind)
        return self._call(lambda: handler.list_objects(found, api_version.rpartition("/")[2], namespace,
                                                       lambda o: labels(o) and fields(o)))

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """Delete as the API does (finalizers hold the object); None if it did not exist."""
        handler = self.handler
        assert handler is not None
        found = self._kind(api_version, kind)
        key = (found.storage_key, namespace if found.namespaced else None, name)

        def delete() -> dict[str, Any] | None:
            try:
                return handler.delete_object(found, api_version.rpartition("/")[2], key)
            except ApiError as e:
                if e.status == 404:
                    return None
                raise
        return self._call(delete)

    def set_status(self, api_version: str, kind: str, namespace: str | None, name: str,
                   status: dict[str, Any]) -> dict[str, Any]:
        """Replace an object's status, as a controller or kubelet would (e.g. a pod's phase and podIP)."""
        handler = self.handler
        assert handler is not None
        found = self._kind(api_version, kind)
        key = (found.storage_key, namespace if found.namespaced else None, name)
        return self._call(lambda: handler.commit_update(found, key, {"metadata": {}, "status": status},
                                                        subresource="status", manager="testbed",
                                                        version=api_version.rpartition("/")[2]))

    def register_token(self, token: str, username: str, groups: list[str] | tuple[str, ...] = (),
                       audiences: list[str] | tuple[str, ...] = (), uid: str | None = None) -> None:
        """TokenReview will authenticate ``token`` as ``username`` in ``groups``."""
        assert self.handler is not None
        self.handler.tokens.register(token, username, groups, audiences, uid)

    @property
    def requests(self) -> list[RecordedRequest]:
        assert self.handler is not None
        return [RecordedRequest(r.method.value, r.url.path, dict(r.params)) for r in list(self.handler._requests)]


def start_kube_server() -> KubeServer:
    """Start a server on a free port; call ``.stop()`` (or use it as a context manager) when done."""
    return KubeServer().start()
