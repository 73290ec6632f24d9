"""Test bed: the Kubernetes API server (fixtures registered in tests/conftest.py).

``kube_server`` is function-scoped: every test gets a fresh server on a free port, stopped afterwards.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from beds.kubeserver import KubeServer, start_kube_server

__all__ = ["kube_server", "KubeServer", "start_kube_server"]


@pytest.fixture
def kube_server() -> Iterator[KubeServer]:
    server = start_kube_server()
    try:
        yield server
    finally:
        server.stop()
