"""How soon the agent probes a TLS library file it has never seen, with load hints and without.

Each trial copies the system libssl to a fresh directory (a new inode: nothing has it probed) and
starts a Python process on it (``LD_LIBRARY_PATH``) that imports ssl, makes one TLS write of an HTTP
request at once (over memory BIOs: the probe reads the buffer at entry, no server is needed), then
lingers ``--linger`` seconds so the periodic rescan also has its chance. Libraries of earlier trials
are detached meanwhile, as on a node where containers come and go. The agent's Capture runs in
this process with a polling thread, as ``clearance agent`` does. Prints, per mode, medians and
maxima of: process start -> library attached, first hint -> attached, attached -> the process's
first write (positive: probed in time), and how many first requests were captured.

Then what the hints cost every other process: the ``sys_enter`` raw tracepoint runs on every system
call on the node. ``dd bs=1`` (one read and one write per byte) and a loop of opens of a file
(``openat`` is where the program reads the path), timed with the hints loaded and without, in
alternating rounds; prints the median added ns per system call.

    .venv/bin/python bench/agent_library_discovery.py [--trials 10] [--rescan 2.0] [--linger 2.5]
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

LIBSSL = Path("/lib/x86_64-linux-gnu/libssl.so.3")
CHILD = r"""
import sys, time
t_start = time.monotonic()
import ssl
t_import = time.monotonic()
c = ssl.create_default_context().wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="x")
t_write = time.monotonic()
try:
    c.write(b"GET /discovery/" + sys.argv[1].encode() + b" HTTP/1.1\r\nHost: a.blob.core.windows.net\r\n\r\n")
except ssl.SSLError:
    pass
print(t_start, t_import, t_write, flush=True)
time.sleep(float(sys.argv[2]))
"""


def trial(cap, events: list, hints: dict[int, float], n: int, linger: float) -> dict[str, float | bool | None]:  # noqa: ANN001
    d = Path(tempfile.mkdtemp(prefix="clr-discovery-"))
    try:
        shutil.copy(LIBSSL, d / "libssl.so.3")
        tag = f"{os.getpid()}-{n}"
        child = subprocess.Popen([sys.executable, "-c", CHILD, tag, str(linger)], stdout=subprocess.PIPE, text=True,
                                 env={**os.environ, "LD_LIBRARY_PATH": str(d)})
        assert child.stdout is not None
        t_start, _t_import, t_write = map(float, child.stdout.readline().split())
        time.sleep(0.2)
        att = [a for a in cap.attachments() if a.library.pathname.startswith(str(d))]
        deadline = time.monotonic() + linger
        while not att and time.monotonic() < deadline:  # the periodic rescan's turn
            time.sleep(0.05)
            att = [a for a in cap.attachments() if a.library.pathname.startswith(str(d))]
        child.wait(60)
        attached = att[0].attached_at if att else None
        pid = att[0].library.pid if att else None
        hint = hints.get(pid) if pid else None
        captured = any(e.data.startswith(f"GET /discovery/{tag} ".encode()) for e in list(events))
        return {"start_to_attach": attached - t_start if attached else None,
                "hint_to_attach": attached - hint if attached and hint else None,
                "attach_before_write": t_write - attached if attached else None,
                "captured": captured}
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run(mode: bool, trials: int, rescan: float, linger: float) -> None:
    from clearance.nodeagent.capture import Capture
    from clearance.nodeagent.capture.scan_schedule import ScanSchedule

    hints: dict[int, float] = {}

    class Timed(ScanSchedule):
        def hint(self, pid: int, now: float) -> None:
            hints.setdefault(pid, now)
            super().hint(pid, now)

    events: list = []
    cap = Capture(events.append, rescan_interval_s=rescan, load_hints=mode, schedule=Timed())
    cap.start()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            cap.poll(100)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    try:
        rows = [trial(cap, events, hints, n, linger) for n in range(trials)]
    finally:
        stop.set()
        t.join(10)
        cap.close()
    name = "with load hints" if mode else f"periodic rescan only ({rescan:g} s)"
    print(f"{name}: {sum(bool(r['captured']) for r in rows)}/{trials} first requests captured")
    for key, label in (("start_to_attach", "process start -> attached"), ("hint_to_attach", "first hint -> attached"),
                       ("attach_before_write", "attached -> first write ")):
        vals = [float(r[key]) for r in rows if r[key] is not None]  # type: ignore[arg-type]
        if vals:
            print(f"  {label}: median {statistics.median(vals) * 1000:8.1f} ms  min {min(vals) * 1000:8.1f} ms  "
                  f"max {max(vals) * 1000:8.1f} ms  (n={len(vals)})")
        else:
            print(f"  {label}: never")


def syscall_cost(rounds: int, count: int) -> None:
    from clearance.nodeagent.capture import Capture

    opens = "import os,sys\nfor _ in range(int(sys.argv[1])): os.close(os.open('/etc/hostname', os.O_RDONLY))"
    jobs = {"read/write (dd bs=1)": (["dd", "if=/dev/zero", "of=/dev/null", "bs=1", f"count={count}"], 2 * count),
            "openat+close (python)": ([sys.executable, "-c", opens, str(count // 4)], 2 * (count // 4))}

    def timed(argv: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - t

    modes = {"exec hint only": {"open_hints": False}, "exec + open hints": {"open_hints": True}}
    added: dict[tuple[str, str], list[float]] = {(j, m): [] for j in jobs for m in modes}
    for _ in range(rounds):
        for mode, kw in modes.items():
            cap = Capture(lambda ev: None, rescan_interval_s=1e9, **kw)
            cap.start()
            try:
                with_hints = {name: timed(argv) for name, (argv, _n) in jobs.items()}
            finally:
                cap.close()
            for name, (argv, calls) in jobs.items():
                added[(name, mode)].append((with_hints[name] - timed(argv)) / calls * 1e9)
    for (name, mode), vals in added.items():
        print(f"cost to every process, {mode:17}, {name}: median {statistics.median(vals):+5.0f} ns per "
              f"system call ({rounds} rounds)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--rescan", type=float, default=2.0, help="periodic rescan interval, seconds (the agent's)")
    ap.add_argument("--linger", type=float, default=2.5, help="seconds each process stays after its write")
    ap.add_argument("--cost-rounds", type=int, default=3, help="rounds of the system-call cost (0: skip)")
    ap.add_argument("--cost-count", type=int, default=1_000_000, help="bytes dd copies one by one per round")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (eBPF)")
    run(False, a.trials, a.rescan, a.linger)
    run(True, a.trials, a.rescan, a.linger)
    if a.cost_rounds:
        syscall_cost(a.cost_rounds, a.cost_count)


if __name__ == "__main__":
    main()
