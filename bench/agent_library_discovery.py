"""How soon the agent probes a TLS library file it has never seen, with load hints and without.

Each trial copies the system libssl to a fresh directory (a new inode: nothing has it probed) and
starts a Python process on it (``LD_LIBRARY_PATH``) that imports ssl, makes one TLS write of an HTTP
request at once (over memory BIOs: the probe reads the buffer at entry, no server is needed), then
lingers ``--linger`` seconds so the periodic rescan also has its chance. Libraries of earlier trials
are detached meanwhile, as on a node where containers come and go. The agent's Capture runs in
this process with a polling thread, as ``clearance agent`` does. Prints, per mode, medians and
maxima of: process start -> library attached, first hint -> attached, attached -> the process's
first write (positive: probed in time), and how many first requests were captured.

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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--trials", type=int, default=10)
    ap.add_argument("--rescan", type=float, default=2.0, help="periodic rescan interval, seconds (the agent's)")
    ap.add_argument("--linger", type=float, default=2.5, help="seconds each process stays after its write")
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("needs root (eBPF)")
    run(False, a.trials, a.rescan, a.linger)
    run(True, a.trials, a.rescan, a.linger)


if __name__ == "__main__":
    main()
