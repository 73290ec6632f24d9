"""Prometheus metrics of the mapper: reports, calls, refusals, and store sizes."""
from __future__ import annotations

from typing import Any

from prometheus_client import Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily, REGISTRY

REPORTS = Counter("clearance_mapper_reports_total", "Agent reports by outcome", ["outcome"])
CALLS = Counter("clearance_mapper_calls_total", "Observed calls stored")


class _StoreSizes:
    def __init__(self, mapper: Any) -> None:
        self.mapper = mapper

    def collect(self):  # noqa: ANN201 - prometheus collector protocol
        g = GaugeMetricFamily("clearance_mapper_store_rows", "Rows in the mapper's store", labels=["table"])
        for table, n in self.mapper.store.counts().items():
            g.add_metric([table], n)
        yield g


def start_metrics(mapper: Any, port: int) -> None:
    REGISTRY.register(_StoreSizes(mapper))
    start_http_server(port)
