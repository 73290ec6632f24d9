"""Shared pytest set-up. Each test bed lives in tests/beds/ and registers its fixtures here."""
from __future__ import annotations

pytest_plugins = [
    "beds.certs",
    "beds.azurite",
    "beds.kube",
    "beds.arm",
    "beds.pods",
]

import logging

import pytest


@pytest.fixture(autouse=True)
def _restore_root_logging():
    """``clearance.cli.main`` run in-process points the root logger at that test's captured stderr;
    put the handlers back so later tests' threads never log to a closed stream."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
