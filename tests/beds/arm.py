"""Test bed: the Azure Resource Manager + Entra ID server (fixtures registered in tests/conftest.py)."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from beds.armserver import ArmServer, start_arm_server
from beds.certs import TestPKI

__all__ = ["ArmServer", "arm_server", "start_arm_server"]


@pytest.fixture
def arm_server(test_pki: TestPKI) -> Iterator[ArmServer]:
    """A fresh ARM + Entra ID server per test (default subscription, resource group and AKS cluster seeded)."""
    server = start_arm_server(test_pki)
    try:
        yield server
    finally:
        server.stop()
