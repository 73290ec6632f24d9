"""Capture (nodeagent/capture): library discovery, and the real BPF program on real processes."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from beds.azurite import Azurite
from beds.certs import TestPKI
from beds.pods import FakePods
from clients.tls_peers import https_server, memory_tls_client
from beds.require import need
from clearance.nodeagent.capture.elf_symbols import function_offsets
from clearance.nodeagent.capture.libraries import classify, libraries_of, parse_maps_line
from clearance.nodeagent.capture.probe_points import entry_probe_offset
from clearance.nodeagent.events import Direction, TlsEvent

CLIENTS = Path(__file__).parent / "clients"
LIBSSL = Path("/lib/x86_64-linux-gnu/libssl.so.3")


# -- discovery (no eBPF) -------------------------------------------------------------------------
def test_maps_pathname_is_the_whole_rest_of_the_line() -> None:
    line = "7f00-7f10 r-xp 00000000 fd:01 1234    /tmp/evil/libssl.so.3 /lib/x86_64-linux-gnu/libssl.so.3\n"
    m = parse_maps_line(42, line)
    assert m is not None and m.pathname == "/tmp/evil/libssl.so.3 /lib/x86_64-linux-gnu/libssl.so.3"
    # Whatever the name claims, the file is reached through the kernel's link to the mapped inode.
    assert m.open_path() == "/proc/42/map_files/7f00-7f10"


def test_libraries_are_reached_through_map_files_once_per_file() -> None:
    maps = "\n".join([
        "5500-5600 r--p 00000000 fd:01 11 /usr/bin/python3.11",
        "7f00-7f10 r--p 00000000 fd:01 99 /usr/lib/x86_64-linux-gnu/libssl.so.3",
        "7f10-7f20 r-xp 00010000 fd:01 99 /usr/lib/x86_64-linux-gnu/libssl.so.3",
        "00007f30-00007f40 r-xp 00000000 00:2a 77 /usr/local/bin/node (deleted)",
        "7f50-7f60 rw-p 00000000 00:00 0 ",
        "7ffd-7ffe rw-p 00000000 00:00 0 [stack]",
        "garbage",
    ])
    libs = libraries_of(7, maps)
    assert [(lb.kind, lb.key, lb.open_path) for lb in libs] == [
        ("libssl", ("fd:01", 99), "/proc/7/map_files/7f00-7f10"),
        ("node", ("00:2a", 77), "/proc/7/map_files/7f30-7f40"),
    ]


@pytest.mark.parametrize("name,kind", [("libssl.so.3", "libssl"), ("libssl.so.1.1", "libssl"),
                                       ("libssl.so", "libssl"), ("node", "node"), ("nodejs", "node"),
                                       ("libssl3.so", None), ("libcrypto.so.3", None), ("nodemon", None)])
def test_classify(name: str, kind: str | None) -> None:
    assert classify(f"/x/{name}") == kind


# -- event records (no eBPF) ----------------------------------------------------------------------
def test_decode_records_and_malformed_ones() -> None:
    import ctypes

    from clearance.nodeagent.capture import layout

    def rec(data_len: int, direction: int, data: bytes, length: int = 0) -> tuple[ctypes.Array[ctypes.c_char], int]:
        raw = layout.HEADER.pack(7, 8, 9, 10, 11, length, data_len, direction, 0) + data
        buf = ctypes.create_string_buffer(raw, len(raw))
        return buf, len(raw)

    buf, size = rec(5, 1, b"HTTP/")
    ev = layout.decode(ctypes.addressof(buf), size)
    assert ev == TlsEvent(Direction.READ, pid=10, tid=11, cgroup_id=8, conn=9, timestamp_ns=7, data=b"HTTP/", length=5)
    buf, size = rec(1 << 30, 0, b"GET ")  # data_len beyond the record: clamped to what is there
    ev = layout.decode(ctypes.addressof(buf), size)
    assert ev is not None and ev.data == b"GET " and ev.length == 4
    buf, size = rec(4, 7, b"GET ")        # no such direction
    assert layout.decode(ctypes.addressof(buf), size) is None
    assert layout.decode(ctypes.addressof(buf), layout.HEADER_SIZE - 1) is None
    assert layout.decode(0, 100) is None


# -- probe points (no eBPF) ----------------------------------------------------------------------
SUB8, CALL, ENDBR = b"\x48\x83\xec\x08", b"\xe8\x87\xfb\xff\xff", b"\xf3\x0f\x1e\xfa"


@pytest.mark.parametrize("code,expected", [
    (SUB8 + CALL, 4),                                  # OpenSSL 3.0 SSL_write_ex: past sub, on the call
    (ENDBR + SUB8 + CALL, 8),                          # the same built with CET
    (ENDBR + b"\x55\x48\x89\xe5", 4),                  # endbr64; push %rbp
    (b"\x55\x48\x89\xe5\x41\x54", 0),                  # push %rbp first: already emulated
    (b"\x41\x57\x41\x56", 0),                          # push %r15 first
    (ENDBR + b"\x48\x81\xec\x00\x01\x00\x00\x41\x54", 11),  # endbr64; sub $256,%rsp; push %r12
    # OpenSSL 3.0 SSL_write: sub; canary load and store; xor %eax; test %edx; js -> on the js
    (b"\x48\x83\xec\x18\x64\x48\x8b\x04\x25\x28\x00\x00\x00\x48\x89\x44\x24\x08\x31\xc0\x85\xd2\x78\x2f", 22),
    (SUB8 + b"\x0f\x84\x10\x00\x00\x00", 4),          # jcc rel32
    (SUB8 + b"\x64\x48\x8b\x04\x25\x28\x00\x00\x00\x48\x89\xc7", 0),  # then mov %rax,%rdi: no
    (b"\x48\x89\xfb\xe8\x00\x00\x00\x00", 0),          # mov %rdi,%rbx is not on the skip list
    (SUB8 + b"\xe8\x00", 0),                           # truncated call
    (SUB8, 0), (b"", 0), (ENDBR * 9 + CALL, 0),        # nothing emulated within the window
])
def test_entry_probe_offset(code: bytes, expected: int) -> None:
    assert entry_probe_offset(code, machine="x86_64") == expected


def test_entry_probe_stays_at_the_start_off_x86() -> None:
    assert entry_probe_offset(SUB8 + CALL, machine="aarch64") == 0


# -- the real program ----------------------------------------------------------------------------
class Collector:
    def __init__(self) -> None:
        self.events: list[TlsEvent] = []

    def __call__(self, ev: TlsEvent) -> None:
        self.events.append(ev)

    def of(self, pid: int, direction: Direction = Direction.WRITE) -> list[TlsEvent]:
        return [e for e in self.events if e.pid == pid and e.direction == direction]


@pytest.fixture
def capture() -> Iterator[tuple[object, Collector]]:
    need(os.geteuid() == 0, "eBPF needs root")
    try:
        from clearance.nodeagent.capture import Capture
    except ImportError as e:
        need(False, f"bcc not importable: {e}")
    col = Collector()
    cap = Capture(col, rescan_interval_s=0.2)
    try:
        cap.start()
    except Exception as e:  # noqa: BLE001
        need(False, f"cannot load the capture program: {e}")
    try:
        yield cap, col
    finally:
        cap.close()


def run_until(cap, done, rounds: int = 100) -> None:  # noqa: ANN001
    for _ in range(rounds):
        cap.poll(100)
        if done():
            return


@pytest.fixture
def tls_server(test_pki: TestPKI) -> Iterator[int]:
    """A local TLS server answering every request with a 200 (the reader side)."""
    yield from serve_tls(test_pki, 0.0)


@pytest.fixture
def distant_tls_server(test_pki: TestPKI) -> Iterator[int]:
    """The same, 0.3 s away: it starts each handshake after that long, as a remote endpoint would."""
    yield from serve_tls(test_pki, 0.3)


def serve_tls(test_pki: TestPKI, delay_s: float) -> Iterator[int]:
    stop = threading.Event()
    port, thread = https_server(test_pki.cert, test_pki.key, stop, delay_s=delay_s)
    try:
        yield port
    finally:
        stop.set()
        thread.join(5)


def test_sdk_calls_from_a_pod_started_before_capture(azurite: Azurite, fake_pods: FakePods, tmp_path: Path,
                                                      capture) -> None:  # noqa: ANN001
    cap, col = capture
    go = tmp_path / "go"
    pod = fake_pods.start("shop", "orders", [sys.executable, str(CLIENTS / "storage_calls.py"), "--service", "queue",
                                             "--url", azurite.queue_url("host"), "--ca", str(azurite.ca_cert),
                                             "--go", str(go)])
    run_until(cap, lambda: any(str(LIBSSL) in p for p in cap.stats()["libraries"]))
    assert any(str(LIBSSL) in p for p in cap.stats()["libraries"]), cap.stats()
    go.touch()
    out = pod.check()
    assert '"op": "send_message", "ok": true' in out
    run_until(cap, lambda: len(col.of(pod.pid, Direction.READ)) >= 5)
    writes = col.of(pod.pid)
    lines = [e.data.split(b"\r\n", 1)[0] for e in writes if e.data[:4] in (b"PUT ", b"POST", b"GET ", b"DELE")]
    assert any(ln.startswith(b"PUT /jobs") for ln in lines), lines
    assert any(ln.startswith(b"POST /jobs") and b"/messages" in ln for ln in lines), lines
    assert all(e.cgroup_id == pod.cgroup_id for e in col.events if e.pid == pod.pid)
    assert any(b"host: devstoreaccount1.queue.localhost" in e.data.lower() for e in writes)
    reads = col.of(pod.pid, Direction.READ)
    assert any(e.data.startswith(b"HTTP/1.1 201") for e in reads), [e.data[:20] for e in reads]
    assert cap.stats()["lost"] == 0


def test_ring_buffer_used_where_the_kernel_has_one(capture) -> None:  # noqa: ANN001
    """The ring-buffer build of the program must compile: a silent fallback to perf costs every event."""
    cap, _col = capture
    release = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    need(release >= (5, 8), "no BPF ring buffer before Linux 5.8")
    assert cap.stats()["transport"] == "ringbuf"


def test_write_probes_past_the_prologue_read_probes_at_the_start(capture) -> None:  # noqa: ANN001
    """The agent's own probe points on this machine's libssl, from its bytes."""
    cap, _col = capture
    with open(LIBSSL, "rb") as f:
        offsets = function_offsets(f, {"SSL_write_ex", "SSL_read_ex"})
        f.seek(offsets["SSL_write_ex"])
        skip = entry_probe_offset(f.read(32))
    proc = subprocess.Popen([sys.executable, "-c", "import ssl, sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        run_until(cap, lambda: any(p.endswith("/libssl.so.3") for p in cap.probe_points()))
        points = [syms for path, syms in cap.probe_points().items() if path.endswith("/libssl.so.3")]
    finally:
        proc.communicate(b"")
    assert points, cap.stats()
    for syms in points:
        assert ("SSL_write_ex" + (f"+{skip}" if skip else "")) in syms, syms
        assert "SSL_read_ex" in syms and "ret:SSL_read_ex" in syms, syms


def test_attach_library_run_stats_and_detach_all(test_pki: TestPKI, capture) -> None:  # noqa: ANN001
    """This very process's libssl, attached on request (the agent skips its own pid when scanning)."""
    from clearance.nodeagent.capture.run_stats import enable_run_stats

    cap, col = capture
    client, out = memory_tls_client(test_pki)
    (lib,) = [lb for lb in libraries_of(os.getpid(), Path("/proc/self/maps").read_text()) if lb.kind == "libssl"]
    assert cap.attach_library(lib)
    cap.rescan()  # it skips this process: the library stays attached because it was asked for
    stats_fd = enable_run_stats()
    try:
        runs0, ns0 = cap.program_run_stats()["on_write_entry"]
        for i in range(50):
            client.write(b"\x00binary record %d" % i)
        client.write(b"GET /c/b?comp=list HTTP/1.1\r\nHost: a.blob.core.windows.net\r\n\r\n")
        runs1, ns1 = cap.program_run_stats()["on_write_entry"]
    finally:
        os.close(stats_fd)
    out.read()
    assert runs1 - runs0 >= 51 and ns1 > ns0
    run_until(cap, lambda: bool(col.of(os.getpid())))
    assert [e.data for e in col.of(os.getpid())] == [b"GET /c/b?comp=list HTTP/1.1\r\nHost: a.blob.core.windows.net\r\n\r\n"]
    cap.detach_all()
    assert cap.stats()["attached"] == 0
    client.write(b"PUT /after-detach HTTP/1.1\r\n\r\n")
    cap.poll(0)
    assert not any(e.data.startswith(b"PUT /after-detach") for e in col.of(os.getpid()))


class RawSsl:
    """An SSL object of this process's libssl over memory BIOs, for calling SSL_write(_ex) with ctypes.

    The probe reads the buffer at entry, so a write need not succeed: no handshake is done.
    ``SSL_write``'s ``num`` is declared 64-bit here so a test can put garbage in the register's upper half.
    """

    def __init__(self) -> None:
        import ctypes

        (self.lib,) = [lb for lb in libraries_of(os.getpid(), Path("/proc/self/maps").read_text())
                       if lb.kind == "libssl"]
        libssl = self.libssl = ctypes.CDLL(self.lib.open_path)
        libcrypto = ctypes.CDLL("libcrypto.so.3")
        for name, restype in (("TLS_client_method", ctypes.c_void_p), ("SSL_CTX_new", ctypes.c_void_p),
                              ("SSL_new", ctypes.c_void_p), ("SSL_write", ctypes.c_int),
                              ("SSL_write_ex", ctypes.c_int)):
            getattr(libssl, name).restype = restype
        libcrypto.BIO_s_mem.restype = libcrypto.BIO_new.restype = ctypes.c_void_p
        libssl.SSL_CTX_new.argtypes = [ctypes.c_void_p]
        libssl.SSL_new.argtypes = [ctypes.c_void_p]
        libssl.SSL_set_bio.argtypes = [ctypes.c_void_p] * 3
        libssl.SSL_set_connect_state.argtypes = [ctypes.c_void_p]
        libssl.SSL_write.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64]
        libssl.SSL_write_ex.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
        libssl.SSL_free.argtypes = libssl.SSL_CTX_free.argtypes = [ctypes.c_void_p]
        libcrypto.BIO_new.argtypes = [ctypes.c_void_p]
        self.ctx = libssl.SSL_CTX_new(libssl.TLS_client_method())
        self.conn = libssl.SSL_new(self.ctx)
        libssl.SSL_set_bio(self.conn, libcrypto.BIO_new(libcrypto.BIO_s_mem()),
                           libcrypto.BIO_new(libcrypto.BIO_s_mem()))
        libssl.SSL_set_connect_state(self.conn)

    def write(self, data: bytes, num: int | None = None) -> None:
        """SSL_write(ssl, data, num) with the full 64-bit register value ``num`` (default len(data))."""
        self.libssl.SSL_write(self.conn, data, len(data) if num is None else num)

    def write_ex(self, data: bytes) -> None:
        import ctypes

        written = ctypes.c_size_t(0)
        self.libssl.SSL_write_ex(self.conn, data, len(data), ctypes.byref(written))

    def close(self) -> None:
        self.libssl.SSL_free(self.conn)
        self.libssl.SSL_CTX_free(self.ctx)


@pytest.fixture
def raw_ssl() -> Iterator[RawSsl]:
    r = RawSsl()
    try:
        yield r
    finally:
        r.close()


def test_ssl_write_and_ssl_write_ex_called_directly_are_captured(raw_ssl: RawSsl, capture) -> None:  # noqa: ANN001
    """Both write entry points through their (moved) probes, called with ctypes on this process's libssl."""
    cap, col = capture
    assert cap.attach_library(raw_ssl.lib)
    one = b"GET /via-ssl-write HTTP/1.1\r\nHost: a.blob.core.windows.net\r\n\r\n"
    two = b"PUT /via-ssl-write-ex HTTP/1.1\r\nHost: a.blob.core.windows.net\r\n\r\n"
    raw_ssl.write(one)
    raw_ssl.write_ex(two)
    run_until(cap, lambda: len(col.of(os.getpid())) >= 2)
    assert [e.data for e in col.of(os.getpid())] == [one, two]
    with open(raw_ssl.lib.open_path, "rb") as f:
        offsets = function_offsets(f, {"SSL_write"})
        f.seek(offsets["SSL_write"])
        skip = entry_probe_offset(f.read(64))
    points = [syms for path, syms in cap.probe_points().items() if path.endswith("/libssl.so.3")]
    assert points and all(("SSL_write" + (f"+{skip}" if skip else "")) in syms for syms in points), points


def test_ssl_write_num_is_a_32_bit_int(raw_ssl: RawSsl, capture) -> None:  # noqa: ANN001
    """SSL_write's ``int num``: garbage in the register's upper half is not length, a negative num is no write."""
    cap, col = capture
    assert cap.attach_library(raw_ssl.lib)
    req = b"GET /upper-garbage HTTP/1.1\r\nHost: a.blob.core.windows.net\r\n\r\n"
    raw_ssl.write(req, (0xDEADBEEF << 32) | len(req))
    raw_ssl.write(b"PUT /negative HTTP/1.1\r\n\r\n", 0xFFFFFFFB)         # (int)-5
    raw_ssl.write(b"PUT /negative-upper HTTP/1.1\r\n\r\n", (7 << 32) | 0x80000000)  # INT_MIN
    marker = b"GET /marker HTTP/1.1\r\n\r\n"
    raw_ssl.write_ex(marker)
    run_until(cap, lambda: any(e.data == marker for e in col.of(os.getpid())))
    mine = col.of(os.getpid())
    assert [(e.data, e.length) for e in mine] == [(req, len(req)), (marker, len(marker))]


def test_ring_wakes_the_reader_when_a_quarter_fills(test_pki: TestPKI) -> None:
    """Events do not wake the reader one by one; a quarter of the ring written does, long before its timeout."""
    need(os.geteuid() == 0, "eBPF needs root")
    from clearance.nodeagent.capture import Capture

    col = Collector()
    arrived = threading.Event()
    cap = Capture(lambda ev: (col(ev), arrived.set()), ring_pages=4, rescan_interval_s=1e9, use_ringbuf=True)
    try:
        cap.start()
    except Exception as e:  # noqa: BLE001
        need(False, f"no ring buffer here: {e}")
    try:
        cap.detach_all()
        client, out = memory_tls_client(test_pki)
        (lib,) = [lb for lb in libraries_of(os.getpid(), Path("/proc/self/maps").read_text()) if lb.kind == "libssl"]
        assert cap.attach_library(lib)
        cap.poll(0)
        col.events.clear()
        arrived.clear()
        reader = threading.Thread(target=cap.poll, args=(120_000,), daemon=True)
        reader.start()
        request = b"PUT /c/b HTTP/1.1\r\nx-pad: " + b"p" * 1000 + b"\r\n\r\n"
        for _ in range(6):  # 6 KiB of a 16 KiB ring: past a quarter
            client.write(request)
        out.read()
        assert arrived.wait(30), "the reader was not woken (it would have slept for its 120 s timeout)"
        reader.join(30)
        assert not reader.is_alive()
        assert len(col.of(os.getpid())) >= 4 and cap.stats()["lost"] == 0
    finally:
        cap.close()


def test_headers_across_writes_and_non_http_filtered(fake_pods: FakePods, tls_server: int, test_pki: TestPKI,
                                                     tmp_path: Path, capture) -> None:  # noqa: ANN001
    cap, col = capture
    go = tmp_path / "go"
    long_sas = "sig=" + "A" * 6000
    pieces = ["\x16\x03binary-non-http", "GET /c/b?", long_sas + " HTTP/1.1\r\n",
              "Host: acct.blob.core.windows.net\r\n", "x-ms-version: 2021-08-06\r\n\r\n", "BODY-NOT-CAPTURED"]
    pod = fake_pods.start("shop", "raw", [sys.executable, str(CLIENTS / "raw_tls_writer.py"), "localhost",
                                          str(tls_server), str(test_pki.ca_cert), str(go), json.dumps(pieces)])
    run_until(cap, lambda: cap.stats()["attached"] > 0)
    cap.rescan()
    go.touch()
    assert pod.check().startswith("HTTP/1.1 200")
    run_until(cap, lambda: len(col.of(pod.pid)) >= 4)
    data = [e.data for e in col.of(pod.pid)]
    assert data == [p.encode("latin-1") for p in pieces[1:5]]
    reads = col.of(pod.pid, Direction.READ)
    assert [r.data for r in reads] == [b"HTTP/1.1 200 OK\r\nx-ms-error-code: Fine\r\nContent-Length: 0\r\n\r\n"]


def test_single_long_request_kept_to_16k(fake_pods: FakePods, tls_server: int, test_pki: TestPKI,
                                         tmp_path: Path, capture) -> None:  # noqa: ANN001
    cap, col = capture
    go = tmp_path / "go"
    req = "PUT /c/b?sig=" + "B" * 20000 + " HTTP/1.1\r\nHost: a\r\n\r\n"
    pod = fake_pods.start("shop", "long", [sys.executable, str(CLIENTS / "raw_tls_writer.py"), "localhost",
                                           str(tls_server), str(test_pki.ca_cert), str(go), json.dumps([req])])
    run_until(cap, lambda: cap.stats()["attached"] > 0)
    cap.rescan()
    go.touch()
    pod.check()
    run_until(cap, lambda: bool(col.of(pod.pid)))
    (ev,) = col.of(pod.pid)
    assert ev.data == req.encode()[:16384] and ev.length == len(req)


def test_late_loaded_copy_of_libssl_is_attached_then_detached(azurite: Azurite, fake_pods: FakePods,
                                                              tmp_path: Path, capture) -> None:  # noqa: ANN001
    """A process that loads its own libssl file (another inode) only after the agent started."""
    cap, col = capture
    libdir = tmp_path / "lib"
    libdir.mkdir()
    shutil.copy(LIBSSL, libdir / "libssl.so.3")
    go = tmp_path / "go"
    hold = tmp_path / "hold"
    pod = fake_pods.start("shop", "late", [sys.executable, str(CLIENTS / "storage_calls.py"), "--service", "blob",
                                           "--url", azurite.blob_url(), "--ca", str(azurite.ca_cert), "--go", str(go),
                                           "--late-import", "--hold", str(hold)],
                          env={"LD_LIBRARY_PATH": str(libdir)})
    cap.rescan()
    assert str(libdir) not in json.dumps(cap.stats()["libraries"])
    go.touch()  # now it imports ssl, mapping the copy; the periodic rescan must find it before the calls
    run_until(cap, lambda: any(ln.startswith(str(libdir)) for ln in cap.stats()["libraries"]))
    assert any(ln.startswith(str(libdir)) for ln in cap.stats()["libraries"]), cap.stats()
    run_until(cap, lambda: any(e.data.startswith(b"DELETE /devstoreaccount1/orders") for e in col.of(pod.pid)))
    lines = [e.data.split(b"\r\n", 1)[0] for e in col.of(pod.pid)]
    assert any(ln.startswith(b"DELETE /devstoreaccount1/orders") for ln in lines), lines
    hold.touch()
    pod.check()
    cap.rescan()
    assert not any(ln.startswith(str(libdir)) for ln in cap.stats()["libraries"]), cap.stats()


def test_node_with_static_openssl(fake_pods: FakePods, azurite: Azurite, tmp_path: Path,
                                  capture) -> None:  # noqa: ANN001
    cap, col = capture
    node = shutil.which("node")
    need(node is not None, "node is not installed")
    go = tmp_path / "go"
    url = f"{azurite.blob_url('host')}/nodecontainer?restype=container"
    pod = fake_pods.start("web", "frontend", [node, str(CLIENTS / "node_https.js"), url, str(azurite.ca_cert), str(go),
                                              azurite.credential().token().token])
    run_until(cap, lambda: any(p.endswith("/node") for p in cap.stats()["libraries"]))
    assert any(p.endswith("/node") for p in cap.stats()["libraries"]), cap.stats()
    go.touch()
    assert pod.check().strip() in ("201", "409")
    run_until(cap, lambda: bool(col.of(pod.pid)) and bool(col.of(pod.pid, Direction.READ)))
    lines = [e.data.split(b"\r\n", 1)[0] for e in col.of(pod.pid)]
    assert b"PUT /nodecontainer?restype=container HTTP/1.1" in lines, lines
    assert all(e.cgroup_id == pod.cgroup_id for e in col.of(pod.pid))
    assert col.of(pod.pid, Direction.READ)[0].data.startswith(b"HTTP/1.1 ")


# -- load hints: scan schedule (no eBPF) ----------------------------------------------------------
def test_scan_schedule_debounces_retries_and_stops_when_found() -> None:
    from clearance.nodeagent.capture.scan_schedule import ScanSchedule

    s = ScanSchedule(delays_s=(0.01, 0.1, 0.3), scans_per_s=1000)
    s.hint(7, 100.0)
    s.hint(7, 100.001)                   # already waiting: no extra scans
    assert s.next_due(100.0) == pytest.approx(100.01)
    assert s.due(100.005) == []
    assert s.due(100.01) == [7]          # debounced first attempt
    assert s.due(100.05) == []
    assert s.due(100.1) == [7]           # retry, timed from the first hint
    s.found(7, 100.1)
    assert s.due(100.5) == [] and s.next_due(100.5) is None and s.waiting() == 0
    s.hint(7, 100.2)                     # just handled: cooling down
    assert s.waiting() == 0
    s.hint(7, 101.2)
    assert s.waiting() == 1
    s.found(7, 101.2)
    s.hint(8, 200.0)
    assert [s.due(t) for t in (200.01, 200.1, 200.3, 201.0)] == [[8], [8], [8], []]  # gives up after the last
    assert s.hints == 5


def test_scan_schedule_is_bounded() -> None:
    from clearance.nodeagent.capture.scan_schedule import ScanSchedule

    s = ScanSchedule(delays_s=(0.0,), max_pids=3, scans_per_s=20)  # bursts of 2 scans
    for pid in range(10):
        s.hint(pid, 0.0)
    assert s.waiting() == 3 and s.dropped == 7
    assert s.due(0.0) == [0, 1]          # the rest wait for tokens
    assert s.next_due(0.0) == pytest.approx(0.05)
    assert s.due(0.05) == [2]
    with pytest.raises(ValueError, match="delays_s"):
        ScanSchedule(delays_s=(0.3, 0.1))
    with pytest.raises(ValueError, match="max_pids"):
        ScanSchedule(max_pids=0)


def test_symbol_found_when_its_name_is_the_tail_of_another() -> None:
    """Linkers share string-table tails: st_name may point into the middle of a longer name."""
    import struct as st

    from clearance.nodeagent.capture.elf_symbols import _first_function

    strtab = b"\0my_SSL_write\0SSL_read\0"
    def sym(name_off: int, value: int, info: int = 0x12, shndx: int = 14) -> bytes:
        return st.pack("<IBBHQQ", name_off, info, 0, shndx, value, 8)
    syms = sym(0, 0, 0, 0) + sym(1, 0x1000) + sym(4, 0x2000, shndx=0) + sym(4, 0x3000, info=0x11) + sym(4, 0x4000) \
        + sym(14, 0x5000)
    assert _first_function(syms, strtab, b"SSL_write") == 0x4000   # undefined and non-function entries skipped
    assert _first_function(syms, strtab, b"my_SSL_write") == 0x1000
    assert _first_function(syms, strtab, b"SSL_read") == 0x5000
    assert _first_function(syms, strtab, b"SSL_peek") is None
    assert _first_function(syms[:-1], strtab, b"SSL_read") is None  # a truncated last entry is not read


# -- load hints: the real program -----------------------------------------------------------------
class RecordingSchedule:
    """A ScanSchedule that also remembers which pids were hinted."""

    def __new__(cls) -> object:
        from clearance.nodeagent.capture.scan_schedule import ScanSchedule

        class Recording(ScanSchedule):
            def __init__(self) -> None:
                super().__init__()
                self.pids: set[int] = set()

            def hint(self, pid: int, now: float) -> None:
                self.pids.add(pid)
                super().hint(pid, now)

        return Recording()


def hint_capture(col: Collector, **kw: object):  # noqa: ANN201
    need(os.geteuid() == 0, "eBPF needs root")
    from clearance.nodeagent.capture import Capture

    cap = Capture(col, rescan_interval_s=1e9, **kw)  # the periodic rescan never comes: only hints find libraries
    try:
        cap.start()
    except Exception as e:  # noqa: BLE001
        need(False, f"cannot load the capture program: {e}")
    return cap


@pytest.mark.parametrize("ring", [True, False], ids=["ringbuf", "perf"])
def test_open_of_a_libssl_path_hints_that_pid_only(tmp_path: Path, ring: bool) -> None:
    col, schedule = Collector(), RecordingSchedule()
    cap = hint_capture(col, schedule=schedule, use_ringbuf=ring)
    try:
        assert cap.stats()["load_hints"] is True and cap.stats()["transport"] == ("ringbuf" if ring else "perf")
        names = {"libssl.so.3": True, "libssl.so": True, "libssl.so.1.1": True, "libssl.so.3.bak": False,
                 "xlibssl.so.3": False, "libssl3.so": False, "libcrypto.so.3": False}
        for name in names:
            (tmp_path / name).write_bytes(b"not an ELF file")
        procs = {name: subprocess.Popen(["cat", str(tmp_path / name)], stdout=subprocess.DEVNULL) for name in names}
        for p in procs.values():
            p.wait()
        relative = subprocess.Popen(["cat", "libssl.so.1.1"], cwd=tmp_path, stdout=subprocess.DEVNULL)
        relative.wait()
        want = {procs[n].pid for n, hinted in names.items() if hinted} | {relative.pid}
        run_until(cap, lambda: want <= schedule.pids, rounds=50)
        assert {n for n, p in procs.items() if p.pid in schedule.pids} == {n for n, h in names.items() if h}
        assert relative.pid in schedule.pids
        assert cap.stats()["hints_dropped"] == 0
    finally:
        cap.close()


ONE_SHOT = """
import http.client, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
c = http.client.HTTPSConnection("localhost", int(sys.argv[1]), context=ctx, timeout=10)
c.request("GET", "/oneshot/" + sys.argv[3] + "?restype=container", headers={"Host": "acct.blob.core.windows.net"})
print(c.getresponse().status)
"""


@pytest.mark.parametrize("load_hints", [True, False])
def test_one_request_of_a_short_lived_process_on_a_new_libssl_file(distant_tls_server: int, test_pki: TestPKI,
                                                                    tmp_path: Path, load_hints: bool) -> None:
    """A process that maps a libssl file never seen before, makes ONE request at once and exits.

    The server is 0.3 s away (as Azure is some tens of ms): the library must be probed by the time the
    handshake is done. bench/agent_library_discovery.py measures the margin without that help.

    With load hints the request is captured; without them (periodic rescan only, never due here) it is
    not: the control shows the capture is the hints' doing.
    """
    col = Collector()
    cap = hint_capture(col, load_hints=load_hints)
    try:
        libdir = tmp_path / "lib"
        libdir.mkdir()
        shutil.copy(LIBSSL, libdir / "libssl.so.3")  # a new inode: nothing has it probed
        stop = threading.Event()
        poller = threading.Thread(target=lambda: [cap.poll(50) for _ in iter(stop.is_set, True)], daemon=True)
        poller.start()
        try:
            tag = uuid_hex()
            out = subprocess.run([sys.executable, "-c", ONE_SHOT, str(distant_tls_server), str(test_pki.ca_cert), tag],
                                 env={**os.environ, "LD_LIBRARY_PATH": str(libdir)}, capture_output=True, text=True,
                                 timeout=60, check=True)
            assert out.stdout.strip() == "200"
            mine = [a for a in cap.attachments() if a.library.pathname.startswith(str(libdir))]
            if load_hints:
                assert [a.found_by for a in mine] == ["hint"], cap.stats()
                wanted = f"GET /oneshot/{tag}?restype=container HTTP/1.1".encode()
                for _ in range(100):
                    if any(e.data.startswith(wanted) for e in col.events):
                        break
                    stop.wait(0.05)
            else:
                assert mine == []
        finally:
            stop.set()
            poller.join(10)
        got = [e for e in col.events if e.data.startswith(f"GET /oneshot/{tag}".encode())]
        assert len(got) == (1 if load_hints else 0), [e.data[:60] for e in col.events]
        if load_hints:
            assert b"host: acct.blob.core.windows.net" in got[0].data.lower()
            reads = [e for e in col.events if e.pid == got[0].pid and e.direction == Direction.READ]
            assert [r.data.split(b"\r\n", 1)[0] for r in reads] == [b"HTTP/1.1 200 OK"]
    finally:
        cap.close()


def test_one_request_of_a_fresh_node_binary(distant_tls_server: int, test_pki: TestPKI, tmp_path: Path) -> None:
    """A node executable never seen before (OpenSSL linked in): its exec hints it; its one request is captured."""
    node = shutil.which("node")
    need(node is not None, "node is not installed")
    col = Collector()
    cap = hint_capture(col)
    try:
        bindir = tmp_path / "bin"
        bindir.mkdir()
        shutil.copy(node, bindir / "node")
        tag = uuid_hex()
        js = ("const https=require('https'),fs=require('fs');"
              "https.get({host:'127.0.0.1',servername:'localhost',port:+process.argv[1],path:'/node-oneshot/'+process.argv[3],"
              "headers:{Host:'acct.blob.core.windows.net'},ca:fs.readFileSync(process.argv[2])},"
              "r=>{console.log(r.statusCode);r.resume();r.on('end',()=>process.exit(0))})"
              ".on('error',e=>{console.error(e.message);process.exit(2)})")
        stop = threading.Event()
        poller = threading.Thread(target=lambda: [cap.poll(50) for _ in iter(stop.is_set, True)], daemon=True)
        poller.start()
        try:
            out = subprocess.run([str(bindir / "node"), "-e", js, str(distant_tls_server), str(test_pki.ca_cert), tag],
                                 capture_output=True, text=True, timeout=60)
            assert (out.returncode, out.stdout.strip()) == (0, "200"), out.stderr
            wanted = f"GET /node-oneshot/{tag}".encode()
            for _ in range(100):
                if any(e.data.startswith(wanted) for e in col.events):
                    break
                stop.wait(0.05)
        finally:
            stop.set()
            poller.join(10)
        assert [a.found_by for a in cap.attachments() if a.library.pathname.startswith(str(bindir))] == ["hint"]
        # Node may call SSL_write with the request before the (slow) handshake is done and again after:
        # entry probes see each attempt.
        lines = [e.data.split(b"\r\n", 1)[0] for e in col.events if e.data.startswith(wanted)]
        assert lines and set(lines) == {wanted + b" HTTP/1.1"}, lines
    finally:
        cap.close()


def uuid_hex() -> str:
    import uuid

    return uuid.uuid4().hex[:12]
