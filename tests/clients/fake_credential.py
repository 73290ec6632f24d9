"""The client programs' credential: the demo's local workload-identity stand-in."""
from __future__ import annotations

from clearance.demo.credential import TENANT, LocalWorkloadCredential, Token

FakeWorkloadIdentityCredential = LocalWorkloadCredential
__all__ = ["TENANT", "FakeWorkloadIdentityCredential", "Token"]
