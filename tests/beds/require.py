"""Skip locally when a real part is missing; under CI=true, fail instead (never a silent skip)."""
from __future__ import annotations

import os

import pytest

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def need(condition: bool, why: str) -> None:
    """Continue when ``condition`` holds; otherwise skip (locally) or fail (CI=true) saying ``why``."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"CI=true and a required real part is missing: {why}", pytrace=False)
    pytest.skip(why)
