"""Shared pytest set-up. Each test bed lives in tests/beds/ and registers its fixtures here."""
from __future__ import annotations

pytest_plugins = [
    "beds.certs",
    "beds.azurite",
    "beds.kube",
    "beds.arm",
    "beds.pods",
]
