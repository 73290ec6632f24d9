"""The kernel's own count of a BPF program's runs and the time spent in them (bpf syscall, Linux >= 5.8).

Run time is counted only while some process holds a ``BPF_ENABLE_STATS`` fd (or the
``kernel.bpf_stats_enabled`` sysctl is on); closing the fd turns counting off again. This measures
the program's own work exactly, without the trap that brought the CPU to it.
"""
from __future__ import annotations

import ctypes
import os
import platform
import struct

_SYS_BPF = {"x86_64": 321, "aarch64": 280}
BPF_OBJ_GET_INFO_BY_FD, BPF_ENABLE_STATS, BPF_STATS_RUN_TIME = 15, 32, 0
_INFO_LEN = 224                 # up to verified_insns in struct bpf_prog_info
_RUN_TIME_OFF, _RUN_CNT_OFF = 192, 200
_NAME_OFF = 64


def _bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    nr = _SYS_BPF.get(platform.machine())
    if nr is None:
        raise OSError(f"bpf syscall number unknown on {platform.machine()}")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ret = libc.syscall(ctypes.c_long(nr), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(ret)


def enable_run_stats() -> int:
    """An fd that keeps the kernel counting BPF run time until it is closed."""
    return _bpf(BPF_ENABLE_STATS, ctypes.create_string_buffer(struct.pack("<I", BPF_STATS_RUN_TIME), 8))


def program_run_stats(prog_fd: int) -> tuple[str, int, int]:
    """(name, runs, nanoseconds spent) of the BPF program behind ``prog_fd``."""
    info = ctypes.create_string_buffer(_INFO_LEN)
    attr = ctypes.create_string_buffer(struct.pack("<IIQ", prog_fd, _INFO_LEN, ctypes.addressof(info)), 16)
    _bpf(BPF_OBJ_GET_INFO_BY_FD, attr)
    name = info.raw[_NAME_OFF:_NAME_OFF + 16].split(b"\0", 1)[0].decode("ascii", "replace")
    run_time, run_cnt = struct.unpack_from("<QQ", info.raw, _RUN_TIME_OFF)
    return name, run_cnt, run_time
