"""The test beds' certificate authority: one CA and server certificate per session."""
from __future__ import annotations

import pytest

from clearance.demo.pki import DEFAULT_NAMES, LocalPKI, make_pki

TestPKI = LocalPKI
__all__ = ["DEFAULT_NAMES", "TestPKI", "make_pki", "test_pki"]


@pytest.fixture(scope="session")
def test_pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    """One CA and server certificate for every HTTPS test bed of the session."""
    return make_pki(tmp_path_factory.mktemp("pki"))
