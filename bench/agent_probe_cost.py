"""Per-call cost the capture probes add to SSL_write_ex, split into the kernel's trap and our work.

A client and a server SSLObject talk through memory BIOs in this process (no sockets, no other
process), so a loop of small ``SSLObject.write`` calls is a tight loop of SSL_write_ex. Each round
measures, in a rotating order, µs per call with:

* nothing attached;
* an EMPTY BPF program (``return 0``) as a uprobe at SSL_write_ex's first byte, attached like the
  agent's (raw perf uprobe on the library file, every process); the kernel's trap cost alone;
* the empty program at the probe point the agent uses (past the prologue, on an instruction the
  kernel emulates: one trap instead of trap + single step), when that differs;
* an empty uretprobe, and an empty uprobe + uretprobe (what a read-side probe pair costs);
* the agent's Capture with every probe at its symbol, and with write probes past the prologue
  (the default).

The loop runs on a private copy of libssl (the bench re-executes itself with LD_LIBRARY_PATH
pointing at ``libssl.so.3 -> clrbench-ssl.so.3``): other agents running on the machine (tests)
attach to every file named libssl*, and their probes would otherwise add to every figure here.

Two payloads: a non-HTTP record (the probe fires, the kernel filter drops it) and an Azure-looking
request (captured into the ring buffer; delivered by ``poll`` outside the timed loop). Prints
medians over rounds of the per-round differences from "nothing attached", and the BPF programs'
own run time per call as the kernel counts it (BPF_ENABLE_STATS), which noise from other
processes does not touch. Run as root:

    [ROUNDS=7] [BASELINE_PROGRAM=old.bpf.c] .venv/bin/python bench/agent_probe_cost.py

BASELINE_PROGRAM adds a Capture running another version of tls_capture.bpf.c (probes at +0), e.g.
``git show 9bd7932:nodeagent/capture/tls_capture.bpf.c > /tmp/old.bpf.c``.
"""
from __future__ import annotations

import os
import shutil
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from beds.certs import make_pki  # noqa: E402
from clients.tls_peers import memory_tls_client  # noqa: E402

from clearance.nodeagent.capture import Capture  # noqa: E402
from clearance.nodeagent.capture.elf_symbols import function_offsets  # noqa: E402
from clearance.nodeagent.capture.libraries import TlsLibrary, libraries_of  # noqa: E402
from clearance.nodeagent.capture.probe_points import entry_probe_offset  # noqa: E402
from clearance.nodeagent.capture.run_stats import enable_run_stats, program_run_stats  # noqa: E402

BATCH, BATCHES, ROUNDS = 2000, 4, int(os.environ.get("ROUNDS", "7"))
AZURE = b"GET /c/b?restype=container HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\nx-ms-version: 2021-08-06\r\n\r\n"
OTHER = b"\x17\x03\x03" + b"x" * (len(AZURE) - 3)
PAYLOADS = {"non-Azure": OTHER, "Azure": AZURE}
PRIVATE_NAME = "clrbench-ssl.so.3"  # not matched by the agent's libssl pattern


def reexec_with_private_libssl() -> None:
    """Run this script again on a private copy of this process's libssl (see the docstring)."""
    (lib,) = {m.split()[-1] for m in Path("/proc/self/maps").read_text().splitlines()
              if m.split()[-1].rsplit("/", 1)[-1].startswith("libssl.so")}
    d = Path(tempfile.mkdtemp(prefix="clrbench-ssl-"))
    shutil.copy(lib, d / PRIVATE_NAME)
    (d / "libssl.so.3").symlink_to(PRIVATE_NAME)
    env = dict(os.environ, LD_LIBRARY_PATH=str(d), CLRBENCH_PRIVATE_SSL=str(d))
    os.execve(sys.executable, [sys.executable, *sys.argv], env)


def per_call_us(client: ssl.SSLObject, out: ssl.MemoryBIO, payload: bytes, drain: Callable[[], None]) -> float:
    """Mean µs per SSL_write_ex over BATCH * BATCHES calls (drain and BIO reads not timed)."""
    total = 0.0
    for _ in range(BATCHES):
        t = time.perf_counter()
        for _ in range(BATCH):
            client.write(payload)
        total += time.perf_counter() - t
        out.read()
        drain()
    return total / (BATCH * BATCHES) * 1e6


def private_libssl() -> TlsLibrary:
    """This process's private libssl copy, as the agent's discovery would describe it."""
    maps = Path("/proc/self/maps").read_text().replace(PRIVATE_NAME, "libssl.so.3")
    libs = [lb for lb in libraries_of(os.getpid(), maps) if lb.kind == "libssl"]
    if len(libs) != 1 or os.environ["CLRBENCH_PRIVATE_SSL"] not in libs[0].pathname:
        sys.exit(f"expected one private libssl, found {[lb.pathname for lb in libs]}")
    return libs[0]


def ssl_write_ex(lib: TlsLibrary) -> tuple[int, int]:
    """(file offset of SSL_write_ex, bytes past it of the agent's write probe point)."""
    with open(lib.open_path, "rb") as f:
        off = function_offsets(f, {"SSL_write_ex"})["SSL_write_ex"]
        f.seek(off)
        return off, entry_probe_offset(f.read(32))


class EmptyProbes:
    """An empty BPF program attached as uprobes/uretprobes on one function, the way the agent attaches."""

    def __init__(self, path: str, offset: int) -> None:
        from bcc import BPF

        self.path, self.offset = path, offset
        self.bpf = BPF(text="int empty(struct pt_regs *ctx) { return 0; }")
        self.fn = self.bpf.load_func("empty", BPF.KPROBE)
        self.fds: list[int] = []

    def attach(self, specs: list[tuple[int, bool]]) -> None:
        from bcc import lib as libbcc

        for skip, ret in specs:
            name = f"{'r' if ret else 'p'}_clr_bench_{os.getpid()}_{self.offset + skip:x}".encode()
            fd = libbcc.bpf_attach_uprobe(self.fn.fd, 1 if ret else 0, name, self.path.encode(), self.offset + skip, -1)
            if fd < 0:
                raise RuntimeError(f"cannot attach the empty probe at +{skip}")
            self.fds.append(fd)

    def detach(self) -> None:
        from bcc import lib as libbcc

        for fd in self.fds:
            libbcc.bpf_close_perf_event_fd(fd)
        self.fds.clear()

    def close(self) -> None:
        self.detach()
        self.bpf.cleanup()


def syscall_us() -> float:
    """Rough µs of a trivial syscall from Python (getppid minus a Python-level call), for scale."""
    n = 200_000
    t = time.perf_counter()
    for _ in range(n):
        os.getppid()
    sys_t = time.perf_counter() - t
    t = time.perf_counter()
    for _ in range(n):
        abs(1)
    return (sys_t - (time.perf_counter() - t)) / n * 1e6


def main() -> None:
    if "CLRBENCH_PRIVATE_SSL" not in os.environ:
        reexec_with_private_libssl()
    try:
        run()
    finally:
        shutil.rmtree(os.environ["CLRBENCH_PRIVATE_SSL"], ignore_errors=True)


def run() -> None:
    pki = make_pki(Path(tempfile.mkdtemp(prefix="bench-pki-")))
    client, out = memory_tls_client(pki)
    lib = private_libssl()
    path = lib.open_path
    off, skip = ssl_write_ex(lib)
    empty = EmptyProbes(path, off)
    delivered = [0]
    caps = {moved: Capture(lambda ev: delivered.__setitem__(0, delivered[0] + 1), rescan_interval_s=1e9,
                           entry_past_prologue=moved) for moved in (False, True)}
    baseline = os.environ.get("BASELINE_PROGRAM")  # another tls_capture.bpf.c, e.g. from git show
    if baseline:
        caps["baseline"] = Capture(lambda ev: delivered.__setitem__(0, delivered[0] + 1), rescan_interval_s=1e9,
                                   entry_past_prologue=False, program=Path(baseline))
    for cap in caps.values():
        cap.start()
        cap.detach_all()  # only the private copy, below

    def none() -> None:
        pass

    configs: dict[str, tuple[Callable[[], None], Callable[[], None], Callable[[], None]]] = {
        "none": (none, none, none),
        "empty uprobe @+0": (lambda: empty.attach([(0, False)]), empty.detach, none),
    }
    if skip:
        configs[f"empty uprobe @+{skip}"] = (lambda: empty.attach([(skip, False)]), empty.detach, none)
    configs["empty uretprobe"] = (lambda: empty.attach([(0, True)]), empty.detach, none)
    configs["empty uprobe+uretprobe"] = (lambda: empty.attach([(0, False), (0, True)]), empty.detach, none)
    for moved, cap in caps.items():
        configs[f"agent Capture{' (default)' if moved is True else ' @+0' if moved is False else ' baseline @+0'}"] = (
            lambda cap=cap: cap.attach_library(lib) or sys.exit("cannot attach"), cap.detach_all,
            lambda cap=cap: cap.poll(0))

    def prog_counts(c: str) -> tuple[int, int]:
        """(runs, ns) of the BPF program that config ``c`` runs on SSL_write_ex."""
        if c.startswith("empty uprobe @"):
            return program_run_stats(empty.fn.fd)[1:]
        if c.startswith("agent Capture"):
            key = "baseline" if "baseline" in c else c.endswith("(default)")
            return caps[key].program_run_stats()["on_write_entry"]
        return (0, 0)

    names = list(configs)
    samples: dict[tuple[str, str], list[float]] = {(c, p): [] for c in names for p in PAYLOADS}
    prog_ns: dict[tuple[str, str], list[float]] = {(c, p): [] for c in names for p in PAYLOADS}
    stats_fd = enable_run_stats()
    probe_symbols: list[list[str]] = []
    try:
        per_call_us(client, out, OTHER, none)  # warm-up
        for r in range(ROUNDS):
            for c in names[r % len(names):] + names[:r % len(names)]:
                attach, detach, drain = configs[c]
                attach()
                if c.startswith("agent Capture") and r == 0:
                    probe_symbols += caps[c.endswith("(default)") if "baseline" not in c else "baseline"] \
                        .probe_points().values()
                try:
                    for p, payload in PAYLOADS.items():
                        runs0, ns0 = prog_counts(c)
                        samples[(c, p)].append(per_call_us(client, out, payload, drain))
                        runs1, ns1 = prog_counts(c)
                        if runs1 > runs0:
                            prog_ns[(c, p)].append((ns1 - ns0) / (runs1 - runs0))
                finally:
                    detach()
        st = [cap.stats() for cap in caps.values()]
    finally:
        os.close(stats_fd)
        for cap in caps.values():
            cap.close()
        empty.close()

    n_azure = BATCH * BATCHES * ROUNDS
    print(f"SSL_write_ex in {path} at file offset 0x{off:x}; agent probe point +{skip}; "
          f"{ROUNDS} rounds x {BATCH * BATCHES} calls; load average {os.getloadavg()[0]:.2f}")
    for symbols in probe_symbols:
        print("agent probes:", ", ".join(symbols))
    print(f"trivial syscall (getppid) ~{syscall_us():.2f} µs")
    print(f"{'':37s} {'µs/call':>8s} {'added vs none':>14s} {'BPF program ns/run':>19s}")
    for p in PAYLOADS:
        for c in names:
            base = samples[("none", p)]
            added = statistics.median(v - b for v, b in zip(samples[(c, p)], base))
            ns = f"{statistics.median(prog_ns[(c, p)]):8.0f}" if prog_ns[(c, p)] else ""
            print(f"{p:10s} {c:26s} {statistics.median(samples[(c, p)]):8.2f} "
                  + ("" if c == "none" else f"{added:+14.2f} {ns:>19s}"))
    ours = {p: statistics.median(v - b for v, b in zip(samples[("agent Capture (default)", p)],
                                                       samples[("none", p)]))
            for p in PAYLOADS}
    trap_name = f"empty uprobe @+{skip}" if skip else "empty uprobe @+0"
    trap = {p: statistics.median(v - b for v, b in zip(samples[(trap_name, p)], samples[("none", p)]))
            for p in PAYLOADS}
    for p, target in (("non-Azure", 2), ("Azure", 6)):
        work = statistics.median(prog_ns[("agent Capture (default)", p)]) - statistics.median(prog_ns[(trap_name, p)])
        print(f"{p}: probe cost {ours[p]:.2f} µs (target <= {target}) = kernel trap ({trap_name}) "
              f"{trap[p]:.2f} + the rest {ours[p] - trap[p]:.2f}; our program's work by the kernel's count: "
              f"{work / 1000:.3f} µs over an empty program")
    print(f"transport={st[0]['transport']} lost={sum(x['lost'] for x in st)} delivered={delivered[0]} "
          f"(Azure writes made with a Capture attached: {len(caps) * n_azure})")


if __name__ == "__main__":
    main()
