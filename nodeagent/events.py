"""The one event shape that crosses from the BPF side to user space, and the parsed call.

The BPF program (capture/) fills ``struct tls_event`` (see capture/tls_event.h); user space turns
each into a ``TlsEvent`` and the pipeline never sees BPF types.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum


class Direction(IntEnum):
    """Which side of the TLS connection the plaintext belongs to."""

    WRITE = 0  # SSL_write / SSL_write_ex: the request the process sends
    READ = 1   # SSL_read / SSL_read_ex: the response it receives


@dataclass(frozen=True, slots=True)
class TlsEvent:
    """A chunk of plaintext from one TLS call of one process."""

    direction: Direction
    pid: int
    tid: int
    cgroup_id: int
    conn: int            # the SSL* pointer: identifies the connection within the process
    timestamp_ns: int    # CLOCK_MONOTONIC (bpf_ktime_get_ns)
    data: bytes          # at most the captured prefix
    length: int          # the full length of the TLS call's buffer (may exceed len(data))


@dataclass(slots=True)
class AzureCall:
    """One observed, recognised, redacted Azure REST call attributed to a caller."""

    service: str                     # blob | queue | table | file | dfs | vault | arm
    account: str                     # storage account or vault name; "" for ARM
    host: str
    method: str
    path: str                        # redacted shape
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    status: int = 0
    error_code: str = ""
