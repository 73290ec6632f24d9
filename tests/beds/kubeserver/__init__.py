"""Kubernetes API test bed: an HTTP kube-apiserver stand-in built on kmock (see emulator.py for what it adds)."""
from .server import KubeServer, RecordedRequest, start_kube_server

__all__ = ["KubeServer", "RecordedRequest", "start_kube_server"]
