"""Test bed: Azurite (Azure Storage emulator) over HTTPS with OAuth, and real SDK clients for it.

The runner is the demo's (``clearance.demo.azurite``); this module adds the fixtures:
``azurite`` (session-scoped; tests use unique container/queue/table names) and
``azurite_fresh`` (one Azurite per test, for tests that need an empty or a restartable emulator).

Host-style endpoints (``https://<account>.blob.localhost:<port>``) need the names to resolve:
glibc does not resolve ``*.localhost`` on its own, so the runner appends one marked line to
/etc/hosts, idempotently. That line is harmless and left in place for later runs.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from clearance.demo.azurite import DEV_KEY as DEFAULT_KEY
from clearance.demo.azurite import Azurite, free_port
from clearance.demo.azurite import start_azurite as _start
from clearance.demo.pki import LocalPKI

DEFAULT_ACCOUNT = "devstoreaccount1"
SECOND_ACCOUNT = "clearancetwo"
__all__ = ["Azurite", "DEFAULT_ACCOUNT", "DEFAULT_KEY", "SECOND_ACCOUNT", "azurite", "azurite_fresh", "free_port",
           "start_azurite"]


def start_azurite(pki: LocalPKI, workdir: Path) -> Azurite:
    """Azurite with the beds' two accounts; the caller must ``stop()`` it."""
    return _start(pki, workdir, accounts=(DEFAULT_ACCOUNT, SECOND_ACCOUNT))


@pytest.fixture(scope="session")
def azurite(test_pki: LocalPKI, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """One Azurite for the session (HTTPS, --oauth basic, blob+queue+table, in memory)."""
    az = start_azurite(test_pki, tmp_path_factory.mktemp("azurite"))
    try:
        yield az
    finally:
        az.stop()


@pytest.fixture
def azurite_fresh(test_pki: LocalPKI, tmp_path: Path) -> Iterator[Azurite]:
    """An Azurite of this test alone."""
    az = start_azurite(test_pki, tmp_path / "azurite")
    try:
        yield az
    finally:
        az.stop()
