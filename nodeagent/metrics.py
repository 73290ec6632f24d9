"""Prometheus metrics of the node agent, held in one registry object (no module globals)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Metrics:
    """The agent's counters; pass one instance to the pipeline, the reporter and the capture."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.captured = Counter("clearance_agent_captured_events", "TLS events received from the kernel", registry=r)
        self.parsed = Counter("clearance_agent_parsed_requests", "Azure REST calls recognised and redacted", registry=r)
        self.ignored = Counter("clearance_agent_ignored", "events or requests ignored, by reason",
                               ["reason"], registry=r)
        self.lost = Counter("clearance_agent_lost_events", "events lost (kernel buffer full, report overflow)",
                            registry=r)
        self.libraries_attached = Gauge("clearance_agent_libraries_attached", "TLS library files with probes",
                                        registry=r)
        self.report_latency = Histogram("clearance_agent_report_latency_seconds",
                                        "time from submit to the mapper's acknowledgement", registry=r,
                                        buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.buffer_fill = Gauge("clearance_agent_buffer_fill", "distinct calls waiting for the mapper",
                                 registry=r)
        self.report_overflow = Counter("clearance_agent_report_overflow",
                                       "distinct calls dropped because the report buffer was full", registry=r)
        self.reports_sent = Counter("clearance_agent_reports_sent", "batches the mapper accepted", registry=r)
        self.report_errors = Counter("clearance_agent_report_errors", "failed report attempts", registry=r)
        self.reports_dropped = Counter("clearance_agent_reports_dropped",
                                       "batches the mapper refused permanently, by gRPC status", ["code"],
                                       registry=r)
        self.report_dropped_calls = Counter("clearance_agent_report_dropped_calls",
                                            "distinct calls in batches the mapper refused permanently", registry=r)

    def ignore(self, reason: str, n: int = 1) -> None:
        """Count ``n`` ignored events or requests for ``reason``."""
        self.ignored.labels(reason=reason).inc(n)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value of a sample (tests and benchmarks); 0 when it has none yet."""
        v = self.registry.get_sample_value(name, labels or {})
        return v or 0.0

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        """Serve ``/metrics`` on ``port`` in a daemon thread."""
        start_http_server(port, addr=addr, registry=self.registry)
