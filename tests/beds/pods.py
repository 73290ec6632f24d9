"""Test bed: kubelet-style cgroup v2 "pods" on this machine (``clearance.demo.pods``).

``fake_pods.start(...)`` runs a process in its own kubelet-style cgroup, so the kernel attributes
it exactly as on a node; teardown kills the processes and removes the directories it created.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from beds.require import need
from clearance.demo.pods import KUBEPODS, LocalPod, LocalPods, cgroup2_mount

FakePod = LocalPod
FakePods = LocalPods
__all__ = ["KUBEPODS", "FakePod", "FakePods", "cgroup2_mount", "fake_pods"]


@pytest.fixture
def fake_pods(tmp_path: Path) -> Iterator[FakePods]:
    """Start processes in kubelet-style cgroup v2 pods; everything is removed after the test."""
    need(os.geteuid() == 0, "fake pods need root (cgroup directories)")
    pods = FakePods(workdir=tmp_path)
    try:
        yield pods
    finally:
        pods.close()
