"""The user-space mirror of ``struct tls_event`` (tls_event.h) and its conversion to TlsEvent."""
from __future__ import annotations

import ctypes
from pathlib import Path

from clearance.nodeagent.events import Direction, TlsEvent

HERE = Path(__file__).resolve().parent
TLS_MAX_DATA = 16384


class TlsEventHeader(ctypes.Structure):
    """Fixed fields of ``struct tls_event``; ``data`` follows at ``sizeof(TlsEventHeader)``."""

    _fields_ = [
        ("timestamp_ns", ctypes.c_uint64),
        ("cgroup_id", ctypes.c_uint64),
        ("conn", ctypes.c_uint64),
        ("pid", ctypes.c_uint32),
        ("tid", ctypes.c_uint32),
        ("length", ctypes.c_uint32),
        ("data_len", ctypes.c_uint32),
        ("direction", ctypes.c_uint32),
        ("_pad", ctypes.c_uint32),
    ]


HEADER_SIZE = ctypes.sizeof(TlsEventHeader)


def decode(raw: int, size: int) -> TlsEvent | None:
    """A TlsEvent from the record at address ``raw`` of ``size`` bytes; None if it is malformed."""
    if size < HEADER_SIZE:
        return None
    h = TlsEventHeader.from_address(raw)
    n = min(h.data_len, size - HEADER_SIZE, TLS_MAX_DATA)
    if h.direction not in (Direction.WRITE, Direction.READ):
        return None
    return TlsEvent(direction=Direction(h.direction), pid=h.pid, tid=h.tid, cgroup_id=h.cgroup_id,
                    conn=h.conn, timestamp_ns=h.timestamp_ns, data=ctypes.string_at(raw + HEADER_SIZE, n),
                    length=max(h.length, n))
