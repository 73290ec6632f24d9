"""The user-space mirror of ``struct tls_event`` (tls_event.h) and its conversion to TlsEvent."""
from __future__ import annotations

import ctypes
import struct
from pathlib import Path

from clearance.nodeagent.events import Direction, TlsEvent

HERE = Path(__file__).resolve().parent
TLS_MAX_DATA = 16384

# timestamp_ns, cgroup_id, conn (u64); pid, tid, length, data_len, direction, _pad (u32); then data[]
HEADER = struct.Struct("<QQQIIIIII")
HEADER_SIZE = HEADER.size
_DIRECTIONS = {int(d): d for d in Direction}


def decode(raw: int, size: int) -> TlsEvent | None:
    """A TlsEvent from the record at address ``raw`` of ``size`` bytes; None if it is malformed.

    One copy of the record, one unpack: this runs once per captured request and response.
    """
    if size < HEADER_SIZE or not raw:
        return None
    record = ctypes.string_at(raw, min(size, HEADER_SIZE + TLS_MAX_DATA))
    timestamp_ns, cgroup_id, conn, pid, tid, length, data_len, direction, _pad = HEADER.unpack_from(record)
    d = _DIRECTIONS.get(direction)
    if d is None:
        return None
    n = min(data_len, len(record) - HEADER_SIZE)
    return TlsEvent(direction=d, pid=pid, tid=tid, cgroup_id=cgroup_id, conn=conn, timestamp_ns=timestamp_ns,
                    data=record[HEADER_SIZE:HEADER_SIZE + n], length=max(length, n))
