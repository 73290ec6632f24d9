"""Load the TLS capture BPF program, attach it to every TLS library on the node, deliver events.

One attachment per library *file* (device, inode) with pid=-1: the kernel then fires for every
process that maps it, in any container. Raw tracepoints hint at processes about to map a TLS library
(an exec of node, an open of libssl.so*: load_watch.bpf.c); that one process's maps are scanned at
once and a few times after (scan_schedule.py), so a short-lived process on a library file never seen
before is probed before its first request. A periodic rescan of /proc stays as the safety net and
detaches from files nothing maps any more.
"""
from __future__ import annotations

import ctypes
import logging
import os
import re
import struct
import time
from collections.abc import Callable
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from clearance.nodeagent.events import TlsEvent

from . import layout
from .elf_symbols import ElfError, function_offsets
from .libraries import TlsLibrary, libraries_of, scan
from .probe_points import MAX_SKIP, entry_probe_offset
from .run_stats import program_run_stats
from .scan_schedule import ScanSchedule

log = logging.getLogger("clearance.nodeagent.capture")
RESCAN_S = 2.0           # the full /proc/*/maps rescan without load hints
RESCAN_HINTED_S = 30.0   # ... while exec and open hints find new libraries at once

# (symbol, BPF function, on return?, required?). Writes need only the entry (the plaintext is in the
# buffer then), so their probe may sit past the prologue; reads need entry and return at the start.
PROBES: tuple[tuple[str, str, bool, bool], ...] = (
    ("SSL_write", "on_ssl_write_entry", False, True),   # int num
    ("SSL_write_ex", "on_write_entry", False, False),     # size_t num; OpenSSL >= 1.1.1; Python >= 3.10 uses only these
    ("SSL_write_ex2", "on_write_entry", False, False),  # OpenSSL >= 3.3
    ("SSL_read", "on_read_entry", False, True),
    ("SSL_read", "on_read_return", True, True),
    ("SSL_read_ex", "on_read_ex_entry", False, False),
    ("SSL_read_ex", "on_read_return", True, False),
)


def probe_points(f: BinaryIO, offsets: dict[str, int]) -> dict[str, int]:
    """{symbol: bytes past its start for its entry probe}; 0 for a symbol that also has a return probe."""
    with_return = {sym for sym, _fn, on_return, _req in PROBES if on_return}
    points = {}
    for sym, off in offsets.items():
        f.seek(off)
        points[sym] = 0 if sym in with_return else entry_probe_offset(f.read(MAX_SKIP + 8))
    return points


class CaptureError(RuntimeError):
    """The BPF program cannot be compiled or loaded on this machine."""


@dataclass
class Attachment:
    """The probes on one library file; closing their perf-event fds detaches them."""

    library: TlsLibrary
    fds: list[int] = field(default_factory=list)
    symbols: list[str] = field(default_factory=list)
    attached_at: float = 0.0  # time.monotonic()
    found_by: str = ""        # "rescan" | "hint" | "request"


class Capture:
    """Uprobe-based plaintext capture of HTTP/1.x over OpenSSL, for every process on the node.

    ``on_event`` is called from ``poll()`` with each TlsEvent. ``stats()`` reports lost events and
    attached libraries. ``load_hints=False`` leaves discovery to the periodic rescan alone;
    ``open_hints=False`` keeps the exec hint (node) but not the open hint (libssl): the open hint's
    ``sys_enter`` tracepoint puts every system call on the node through the kernel's slow path
    (~+240 ns per call on a 6.x VM whose calls cost ~630 ns; bench/agent_library_discovery.py).

    The full /proc rescan runs every ``rescan_interval_s``; by default every ``RESCAN_HINTED_S`` while
    both hints are active (they find new libraries; the rescan only catches what they missed) and
    every ``RESCAN_S`` otherwise.
    """

    def __init__(self, on_event: Callable[[TlsEvent], None], *, ring_pages: int = 256,
                 rescan_interval_s: float | None = None, proc: Path = Path("/proc"),
                 use_ringbuf: bool | None = None, attach_self: bool = False,
                 entry_past_prologue: bool = True, program: Path | None = None, load_hints: bool = True,
                 schedule: ScanSchedule | None = None, open_hints: bool = True) -> None:
        if ring_pages <= 0 or ring_pages & (ring_pages - 1):
            raise ValueError(f"ring_pages must be a power of two, not {ring_pages}")
        self.on_event = on_event
        self.ring_pages = ring_pages
        self._rescan_fixed = rescan_interval_s is not None
        self.rescan_interval_s = RESCAN_S if rescan_interval_s is None else rescan_interval_s
        self.proc = proc
        self.use_ringbuf = use_ringbuf
        self.skip_pids = frozenset() if attach_self else frozenset({os.getpid()})
        self.entry_past_prologue = entry_past_prologue  # False: every probe at its symbol (to compare)
        self.program = program or layout.HERE / "tls_capture.bpf.c"  # another version, to compare
        self.load_hints = load_hints
        self.open_hints = open_hints
        self.schedule = schedule or ScanSchedule()
        self._hints_active = False
        self._hint_scans = 0
        self._hint_attaches = 0
        self._bpf: Any = None
        self._detacher: Detacher | None = None
        self._attached: dict[tuple[str, int], Attachment] = {}
        self._unusable: set[tuple[str, int]] = set()
        self._pinned: set[tuple[str, int]] = set()  # attached on request: rescans keep them
        self._next_scan = 0.0
        self._perf_lost = 0
        self._decode_errors = 0
        self._delivered = 0
        self.transport = ""

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Compile and load the program, open the event buffer, attach to all current libraries."""
        from bcc import BPF  # the only import of bcc in the agent

        src = self.program.read_text()
        if self.load_hints:
            src += "\n" + (layout.HERE / "load_watch.bpf.c").read_text()
        cflags = [f"-I{layout.HERE}", f"-DRING_PAGES={self.ring_pages}", "-Wno-macro-redefined"]
        attempts = [True, False] if self.use_ringbuf is None else [self.use_ringbuf]
        errors = []
        for ring in attempts:
            try:
                self._bpf = BPF(text=src, cflags=cflags + (["-DUSE_RINGBUF"] if ring else []))
                if ring:
                    self._bpf["tls_events"].open_ring_buffer(self._on_raw)
                    if self.load_hints:
                        self._bpf["lib_hints"].open_ring_buffer(self._on_hint)
                else:
                    self._bpf["tls_events"].open_perf_buffer(self._on_raw_perf, page_cnt=self.ring_pages,
                                                             lost_cb=self._on_lost)
                    if self.load_hints:
                        self._bpf["lib_hints"].open_perf_buffer(self._on_hint_perf, page_cnt=8)
                self.transport = "ringbuf" if ring else "perf"
                break
            except Exception as e:  # noqa: BLE001 - bcc raises bare Exception
                errors.append(f"{'ringbuf' if ring else 'perf'}: {e}")
                log.warning("capture transport unavailable", extra={"fields": {
                    "transport": "ringbuf" if ring else "perf", "error": str(e)[-500:]}})
                if self._bpf is not None:
                    self._bpf.cleanup()
                    self._bpf = None
        if self._bpf is None:
            raise CaptureError("cannot load the TLS capture program: " + "; ".join(errors))
        if self.load_hints:
            self._start_hints()
        log.info("capture loaded", extra={"fields": {"transport": self.transport, "load_hints": self._hints_active}})
        self.rescan()

    def _start_hints(self) -> None:
        """Attach the load-watch raw tracepoints; without them discovery falls back to the periodic rescan."""
        try:
            self._bpf.attach_raw_tracepoint(tp=b"sched_process_exec", fn_name=b"on_exec")
            if self.open_hints:
                self._bpf.attach_raw_tracepoint(tp=b"sys_enter", fn_name=b"on_sys_enter")
            self._hints_active = True
            if self.open_hints and not self._rescan_fixed:
                self.rescan_interval_s = RESCAN_HINTED_S
        except Exception as e:  # noqa: BLE001 - bcc raises bare Exception
            log.warning("load hints unavailable; new TLS libraries are found by the periodic rescan only",
                        extra={"fields": {"error": str(e)[-300:]}})
            for tp in (b"sched_process_exec", b"sys_enter"):
                try:
                    self._bpf.detach_raw_tracepoint(tp=tp)
                except Exception:  # noqa: BLE001 - not attached
                    pass

    def close(self) -> None:
        """Detach everything and free the program (idempotent)."""
        self.detach_all()
        if self._detacher is not None:
            self._detacher.close()
            self._detacher = None
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None

    def detach_all(self) -> None:
        """Detach from every library, and return when the probes are gone; the next ``rescan()`` (or
        ``poll()`` when due) attaches again."""
        self._pinned.clear()
        for key in list(self._attached):
            self._detach(key)
        if self._detacher is not None:
            self._detacher.flush()

    def __enter__(self) -> "Capture":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- events ----------------------------------------------------------------------------
    def poll(self, timeout_ms: int = 100) -> None:
        """Deliver pending events, and rescan /proc when due.

        With the ring buffer, events wait for the timeout (the program does not wake the reader per
        event) unless a quarter of the ring fills first: ``timeout_ms`` is the delivery latency. A load
        hint wakes the reader at once, and the timeout is shortened to the next hinted scan due.
        """
        if self._bpf is None:
            raise RuntimeError("Capture.poll() before start()")
        due = self.schedule.next_due(time.monotonic())
        if due is not None:
            timeout_ms = max(0, min(timeout_ms, int((due - time.monotonic()) * 1000) + 1))
        if self.transport == "ringbuf":
            self._bpf.ring_buffer_poll(timeout_ms)
            self._bpf.ring_buffer_consume()
        else:
            self._bpf.perf_buffer_poll(timeout_ms)
        self.scan_hinted()
        if self._detacher is not None:
            self._detacher.pause(self.schedule.waiting() > 0)
        if time.monotonic() >= self._next_scan:
            self.rescan()

    def _deliver(self, data: int, size: int) -> int:
        ev = layout.decode(data, size)
        if ev is None:
            self._decode_errors += 1
            return 0
        self._delivered += 1
        try:
            self.on_event(ev)
        except Exception:  # noqa: BLE001 - one bad event must not stop capture
            log.exception("event handler failed")
        return 0

    def _on_raw(self, _ctx: Any, data: int | None, size: int) -> int:
        return self._deliver(data or 0, size)  # bcc passes the c_void_p as an int already

    def _on_raw_perf(self, _cpu: int, data: int | None, size: int) -> None:
        self._deliver(data or 0, size)

    def _on_lost(self, count: int) -> None:
        self._perf_lost += count

    def _hint(self, data: int | None, size: int) -> None:
        if not data or size < 8:
            return
        pid, _kind = struct.unpack("<II", ctypes.string_at(data, 8))
        if pid not in self.skip_pids:
            self.schedule.hint(pid, time.monotonic())

    def _on_hint(self, _ctx: Any, data: int | None, size: int) -> int:
        self._hint(data, size)
        return 0

    def _on_hint_perf(self, _cpu: int, data: int | None, size: int) -> None:
        self._hint(data, size)

    # -- libraries -------------------------------------------------------------------------
    def rescan(self) -> None:
        """Attach to newly mapped TLS libraries; detach from those no process maps any more."""
        self._next_scan = time.monotonic() + self.rescan_interval_s
        seen: dict[tuple[str, int], TlsLibrary] = {}
        for lib in scan(self.proc, self.skip_pids):
            seen.setdefault(lib.key, lib)
        for key, lib in seen.items():
            if key not in self._attached and key not in self._unusable:
                self._attach(lib, "rescan")
        for key in [k for k in self._attached if k not in seen and k not in self._pinned]:
            self._detach(key)
        self._unusable &= set(seen)

    def scan_hinted(self) -> None:
        """Scan the maps of the hinted processes whose turn has come; attach to new TLS libraries in them."""
        now = time.monotonic()
        for pid in self.schedule.due(now):
            self._hint_scans += 1
            try:
                text = (self.proc / str(pid) / "maps").read_text(errors="replace")
            except OSError:  # exited
                self.schedule.found(pid, now)
                continue
            libs = libraries_of(pid, text, self.proc)
            if not libs:
                continue  # not mapped yet: the schedule retries
            self.schedule.found(pid, now)
            for lib in libs:
                if lib.key not in self._attached and lib.key not in self._unusable:
                    self._attach(lib, "hint")
                    self._hint_attaches += lib.key in self._attached

    def attach_library(self, lib: TlsLibrary) -> bool:
        """Attach to one library file now and keep it until ``detach_all``; False if it is unusable.

        ``rescan`` finds libraries itself; this is for one it would not see (e.g. this process's own).
        """
        if self._bpf is None:
            raise RuntimeError("Capture.attach_library() before start()")
        if lib.key not in self._attached:
            self._unusable.discard(lib.key)
            self._attach(lib, "request")
        if lib.key in self._attached:
            self._pinned.add(lib.key)
            return True
        return False

    def _attach(self, lib: TlsLibrary, found_by: str) -> None:
        from bcc import BPF, lib as libbcc

        att = Attachment(lib, found_by=found_by)
        try:
            with open(lib.open_path, "rb") as f:
                offsets = function_offsets(f, {p[0] for p in PROBES})
                points = probe_points(f, offsets) if self.entry_past_prologue else dict.fromkeys(offsets, 0)
        except (OSError, ElfError) as e:
            log.debug("cannot read library", extra={"fields": {"path": lib.pathname, "error": str(e)}})
            self._unusable.add(lib.key)
            return
        if not all(sym in offsets for sym, _fn, _ret, required in PROBES if required):
            self._unusable.add(lib.key)
            return
        tag = re.sub(r"[^A-Za-z0-9_]", "_", f"{lib.key[0]}_{lib.key[1]}")
        for sym, fn, on_return, _required in PROBES:
            if sym not in offsets:
                continue
            skip = 0 if on_return else points[sym]
            try:
                prog = self._bpf.load_func(fn, BPF.KPROBE)
            except Exception:  # noqa: BLE001 - bcc raises bare Exception; e.g. an older program (to compare)
                log.warning("no such BPF function", extra={"fields": {"function": fn, "symbol": sym}})
                continue
            ev_name = f"{'r' if on_return else 'p'}_clr_{tag}_{offsets[sym] + skip:x}".encode()
            fd = libbcc.bpf_attach_uprobe(prog.fd, 1 if on_return else 0, ev_name, lib.open_path.encode(),
                                          offsets[sym] + skip, -1)
            if fd < 0:
                log.warning("uprobe attach failed", extra={"fields": {"path": lib.pathname, "symbol": sym}})
                continue
            att.fds.append(fd)
            att.symbols.append(("ret:" if on_return else "") + sym + (f"+{skip}" if skip else ""))
        if not att.fds:
            self._unusable.add(lib.key)
            return
        att.attached_at = time.monotonic()
        self._attached[lib.key] = att
        log.info("attached", extra={"fields": {"path": lib.pathname, "kind": lib.kind, "pid": lib.pid,
                                               "symbols": len(att.symbols), "found_by": found_by}})

    def _detach(self, key: tuple[str, int]) -> None:
        """Forget the library now; its probes go away in the background (see Detacher)."""
        att = self._attached.pop(key)
        if self._detacher is None:
            self._detacher = Detacher()
        self._detacher.submit(att.fds)
        att.fds.clear()
        log.info("detached", extra={"fields": {"path": att.library.pathname}})

    # -- introspection ---------------------------------------------------------------------
    def kernel_counters(self) -> tuple[int, int]:
        """(dropped, captured) as counted by the BPF program, summed over CPUs."""
        if self._bpf is None:
            return (0, 0)
        t = self._bpf["stats"]
        return (sum(t[ctypes.c_int(0)]), sum(t[ctypes.c_int(1)]))

    def program_run_stats(self) -> dict[str, tuple[int, int]]:
        """{BPF function: (runs, ns spent)} as the kernel counts them (while run stats are enabled)."""
        from bcc import BPF

        if self._bpf is None:
            return {}
        out = {}
        for fn in sorted({fn for _sym, fn, _ret, _req in PROBES}):
            try:
                out[fn] = program_run_stats(self._bpf.load_func(fn, BPF.KPROBE).fd)[1:]
            except Exception:  # noqa: BLE001 - not in this (older) program
                continue
        return out

    def probe_points(self) -> dict[str, list[str]]:
        """{library path: probed symbols}, an entry probe moved past the prologue as ``SYMBOL+N``."""
        return {a.library.pathname: list(a.symbols) for a in self._attached.values()}

    def attachments(self) -> list[Attachment]:
        """The libraries attached now, with when and how each was found."""
        return list(self._attached.values())

    def stats(self) -> dict[str, Any]:
        """Lost events, delivered events, and the libraries attached."""
        dropped, captured = self.kernel_counters()
        return {
            "lost": dropped + self._perf_lost,
            "captured": captured,
            "delivered": self._delivered,
            "malformed": self._decode_errors,
            "transport": self.transport,
            "libraries": sorted(a.library.pathname for a in self._attached.values()),
            "attached": len(self._attached),
            "load_hints": self._hints_active,
            "rescan_interval_s": self.rescan_interval_s,
            "hints": self.schedule.hints,
            "hints_dropped": self.schedule.dropped,
            "hint_scans": self._hint_scans,
            "hint_attaches": self._hint_attaches,
        }


class Detacher:
    """Closes probe fds on a background thread, one at a time, while not ``paused``.

    Removing a uprobe makes the kernel wait out an RCU grace period (~0.1 s per probe on 6.x) while it
    holds the lock that creating one needs. Closing on the poll thread would hold up event delivery
    and load hints for about a second per library; closing while a hinted process waits for its
    library to be probed would delay that attach behind every queued close. So closes happen here,
    and pause while hinted scans are pending (an attach then waits for one close at most).
    """

    def __init__(self) -> None:
        self._may_close = threading.Event()
        self._may_close.set()
        self._fds: queue.SimpleQueue[int | threading.Event | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="uprobe-detach", daemon=True)
        self._thread.start()

    def submit(self, fds: list[int]) -> None:
        for fd in fds:
            self._fds.put(fd)

    def pause(self, paused: bool) -> None:
        if paused:
            self._may_close.clear()
        else:
            self._may_close.set()

    def flush(self) -> None:
        """Return when everything queued so far is closed."""
        done = threading.Event()
        self._may_close.set()
        self._fds.put(done)
        done.wait()

    def close(self) -> None:
        """Close everything still queued, then stop the thread."""
        self._may_close.set()
        self._fds.put(None)
        self._thread.join()

    def _run(self) -> None:
        from bcc import lib as libbcc

        while (item := self._fds.get()) is not None:
            if isinstance(item, threading.Event):
                item.set()
                continue
            self._may_close.wait()
            libbcc.bpf_close_perf_event_fd(item)
