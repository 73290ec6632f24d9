"""The agent process: capture -> pipeline -> reporter, until SIGTERM/SIGINT.

One thread polls the kernel buffer and feeds the pipeline; every ``drain_interval_s`` the
distinct calls go to the reporter (its own thread sends them to the mapper at once).

Delivery budget (issue 3: a call at the mapper within 1 s of its capture): the ring buffer does not
wake the reader per event, so an event waits up to ``POLL_MS`` for the poll's timeout; then up to
``drain_interval_s`` for the next drain; then one RPC. bench/agent_report_latency.py measures it.
"""
from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from clearance.nodeagent.metrics import Metrics
from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline

log = logging.getLogger("clearance.agent")
POLL_MS = 100                 # the longest an event waits in the kernel buffer
DRAIN_INTERVAL_S = 0.25       # the longest a finished call waits in the pipeline


class TokenFile:
    """The agent's token from a file, re-read only when the file changes (a projected token rotates).

    The file is known by (mtime_ns, size, inode): kubelet swaps a symlink to a new file. When the file
    cannot be read for a moment (mid-rotation), the last token read is kept.
    """

    def __init__(self, path: str) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"--token-file {path}: no such file")
        self._seen: tuple[int, int, int] | None = None
        self._token = ""
        self()

    def __call__(self) -> str:
        try:
            st = self.path.stat()
            seen = (st.st_mtime_ns, st.st_size, st.st_ino)
            if seen != self._seen:
                self._token = self.path.read_text().strip()
                self._seen = seen
        except (OSError, UnicodeDecodeError) as e:
            if self._seen is None:
                raise ValueError(f"--token-file {self.path}: cannot read it ({type(e).__name__})") from None
            log.warning("token file unreadable; keeping the last token", extra={"fields": {
                "path": str(self.path), "error": type(e).__name__}})
        return self._token


def _pod_source(args: argparse.Namespace, node: str) -> Any:
    from clearance.nodeagent import pods

    if args.pods_file:
        return pods.PodsFile(args.pods_file)
    from kubernetes import config

    try:
        api = config.new_client_from_config() if not _in_cluster() else _incluster_client()
    except Exception as e:  # noqa: BLE001 - the kubernetes client raises several types
        raise ValueError(f"no --pods-file and no Kubernetes API access: {e}") from None
    return pods.KubePods(node, api)


def _in_cluster() -> bool:
    return Path("/var/run/secrets/kubernetes.io/serviceaccount/token").exists()


def _incluster_client() -> Any:
    from kubernetes import client, config

    config.load_incluster_config()
    return client.ApiClient()


class Agent:
    """The wired agent; ``run()`` loops until ``stop()``."""

    def __init__(self, args: argparse.Namespace, *, drain_interval_s: float = DRAIN_INTERVAL_S) -> None:
        from clearance.nodeagent.capture import Capture
        from clearance.nodeagent.reporter import Reporter

        self.node = args.node_name or socket.gethostname()
        self.metrics = Metrics()
        endpoints = EndpointMatcher.from_flags(list(args.endpoint or []))
        token = TokenFile(args.token_file) if args.token_file else None
        self.pods = _pod_source(args, self.node)
        self.pipeline = Pipeline(endpoints, Attributor(self.pods, self.node), self.metrics)
        self.capture = Capture(self.pipeline.feed, open_hints=getattr(args, "library_open_hints", True))
        self._lost_seen = 0  # kernel-lost events: updated on the poll thread, read by the reporter's
        self.reporter = Reporter(args.mapper, token, args.buffer_size, self.node, metrics=self.metrics,
                                 lost_events=lambda: self._lost_seen, mapper_ca=args.mapper_ca,
                                 server_name=args.mapper_server_name)
        self.metrics_port = args.metrics_port
        self.drain_interval_s = drain_interval_s
        self._stopping = False

    def stop(self, *_: object) -> None:
        self._stopping = True

    def run(self) -> None:
        self.capture.start()
        if self.metrics_port:
            self.metrics.serve(self.metrics_port)
        log.info("agent started", extra={"fields": {"node": self.node, "transport": self.capture.transport,
                                                     "libraries": self.capture.stats()["attached"]}})
        next_drain = time.monotonic() + self.drain_interval_s
        try:
            while not self._stopping:
                self.capture.poll(POLL_MS)
                if time.monotonic() >= next_drain:
                    next_drain = time.monotonic() + self.drain_interval_s
                    self._tick()
        finally:
            self.reporter.submit(self.pipeline.drain(final=True))
            self.reporter.close()
            self.capture.close()
            self.pods.close()
            log.info("agent stopped")

    def _tick(self) -> None:
        self.reporter.submit(self.pipeline.drain())
        st = self.capture.stats()
        self.metrics.libraries_attached.set(st["attached"])
        if st["lost"] > self._lost_seen:
            self.metrics.lost.inc(st["lost"] - self._lost_seen)
            self._lost_seen = st["lost"]


def run_agent(args: argparse.Namespace) -> int:
    """``clearance agent``: returns the process exit code (``clearance.cli`` has set up logging)."""
    try:
        agent = Agent(args)
    except ValueError as e:
        print(f"clearance agent: {e}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, agent.stop)
    signal.signal(signal.SIGINT, agent.stop)
    try:
        agent.run()
    except Exception as e:  # noqa: BLE001 - e.g. CaptureError: say what, not a traceback
        log.error("agent failed", extra={"fields": {"error": str(e)[:500]}})
        return 1
    return 0
