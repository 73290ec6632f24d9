"""HTTPS requests per second from the azure-storage-blob SDK to Azurite, with the agent's capture ÷ without.

One run: Azurite over HTTPS (``--oauth basic``), a client *process* that loops
``get_blob_properties`` on a tiny blob for a fixed number of requests per round, and in this
process the agent's Capture plus its Pipeline (parse, recognise, redact, attribute, dedupe) fed by
a polling thread and drained every half second, as ``clearance agent`` does. Rounds alternate
without / with the probes attached; prints the median requests/s of each and their ratio
(target >= 0.97). ``--no-pipeline`` only counts the events, to separate the probes' and the
capture's cost from the pipeline's.

The client runs on a private copy of libssl (``libssl.so.3 -> clrbench-ssl.so.3``) so that other
agents on the machine (tests) do not attach to it; this Capture attaches to it explicitly.

    .venv/bin/python bench/agent_sdk_throughput.py [--requests N] [--rounds R]
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

PRIVATE_NAME = "clrbench-ssl.so.3"  # not matched by the agent's libssl pattern


# -- the client process ----------------------------------------------------------------------------
def client(url: str, ca: str) -> None:
    """Read ``N`` lines from stdin; answer each with the seconds N get_blob_properties calls took (wall, CPU)."""
    from azure.storage.blob import BlobServiceClient

    from clearance.demo.credential import LocalWorkloadCredential

    svc = BlobServiceClient(url, credential=LocalWorkloadCredential(), connection_verify=ca)
    container = svc.get_container_client("bench")
    if not container.exists():
        container.create_container()
    blob = container.get_blob_client("tiny.txt")
    blob.upload_blob(b"x", overwrite=True)
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        t, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            blob.get_blob_properties()
        print(f"{time.perf_counter() - t:.6f} {time.process_time() - cpu:.6f}", flush=True)


# -- the bench -------------------------------------------------------------------------------------
class Agent:
    """The agent's capture and pipeline in this process: a thread polls, another drains."""

    def __init__(self, endpoint: str, pods_file: Path, *, pipeline: bool = True) -> None:
        from clearance.nodeagent.capture import Capture
        from clearance.nodeagent.pipeline import Attributor, EndpointMatcher, Pipeline
        from clearance.nodeagent.pods import PodsFile

        self.pipeline = Pipeline(EndpointMatcher.from_flags([endpoint]), Attributor(PodsFile(pods_file), "bench"))
        self.events = 0
        self.capture = Capture(self.pipeline.feed if pipeline else self._count, rescan_interval_s=1e9)
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.calls = 0
        self.capture.start()
        self.capture.detach_all()  # only the client's private libssl, below
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _count(self, _event: object) -> None:
        self.events += 1

    def _run(self) -> None:
        next_drain = time.monotonic() + 0.5
        while not self.stopping.is_set():
            with self.lock:
                self.capture.poll(100)
            if time.monotonic() >= next_drain:
                next_drain = time.monotonic() + 0.5
                self.calls += sum(c.count for c in self.pipeline.drain())

    def attach(self, lib) -> None:  # noqa: ANN001
        with self.lock:
            if not self.capture.attach_library(lib):
                raise RuntimeError(f"cannot attach to {lib.pathname}")

    def detach(self) -> None:
        with self.lock:
            self.capture.detach_all()

    def close(self) -> dict[str, object]:
        """Stop; the capture's stats plus ``calls``, the requests the pipeline counted."""
        self.stopping.set()
        self.thread.join()
        self.calls += sum(c.count for c in self.pipeline.drain(final=True))
        st = self.capture.stats()
        self.capture.close()
        return {**st, "calls": self.calls, "events": self.events}


def private_libssl_dir() -> Path:
    """A directory holding a private copy of this Python's libssl under a name agents ignore."""
    (lib,) = {m.split()[-1] for m in Path("/proc/self/maps").read_text().splitlines()
              if m.split()[-1].rsplit("/", 1)[-1].startswith("libssl.so")}
    d = Path(tempfile.mkdtemp(prefix="clrbench-ssl-"))
    shutil.copy(lib, d / PRIVATE_NAME)
    (d / "libssl.so.3").symlink_to(PRIVATE_NAME)
    return d


def client_libssl(pid: int):  # noqa: ANN201
    """The client's private libssl as the agent's discovery describes it."""
    from clearance.nodeagent.capture.libraries import libraries_of

    maps = Path(f"/proc/{pid}/maps").read_text().replace(PRIVATE_NAME, "libssl.so.3")
    (lib,) = [lb for lb in libraries_of(pid, maps) if lb.kind == "libssl"]
    if "clrbench-ssl-" not in lib.pathname:
        raise RuntimeError(f"the client maps {lib.pathname}, not the private copy")
    return lib


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--requests", type=int, default=250, help="requests per round (default 250)")
    ap.add_argument("--rounds", type=int, default=16, help="rounds of each kind (default 16)")
    ap.add_argument("--no-pipeline", action="store_true",
                    help="events only counted, not parsed (separates the capture's cost from the pipeline's)")
    ap.add_argument("--client", nargs=2, metavar=("URL", "CA"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.client:
        client(*args.client)
        return
    if args.requests < 1 or args.rounds < 1:
        ap.error("--requests and --rounds must be positive")
    import ssl  # noqa: F401 - maps libssl, to copy it

    from clearance.demo.azurite import start_azurite
    from clearance.demo.pki import make_pki

    work = Path(tempfile.mkdtemp(prefix="clrbench-sdk-"))
    libdir = private_libssl_dir()
    az = start_azurite(make_pki(work / "pki"), work / "azurite", host_style=False)
    proc = agent = None
    try:
        pods = work / "pods.yaml"
        pods.write_text("pods: []\n")
        agent = Agent(f"blob={az.endpoint_template('blob')}", pods, pipeline=not args.no_pipeline)
        env = dict(os.environ, LD_LIBRARY_PATH=str(libdir))
        proc = subprocess.Popen([sys.executable, __file__, "--client", az.blob_url(), str(az.ca_cert)], env=env,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert proc.stdin and proc.stdout
        if proc.stdout.readline().strip() != "ready":
            raise RuntimeError("the client did not start")
        lib = client_libssl(proc.pid)

        def run_round() -> tuple[float, float]:
            """(requests/s, client CPU µs per request) of one round."""
            proc.stdin.write(f"{args.requests}\n")
            proc.stdin.flush()
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError("the client exited")
            wall, cpu = (float(x) for x in line.split())
            return args.requests / wall, cpu / args.requests * 1e6

        run_round()  # warm-up
        rounds: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
        agent_cpu_s = {False: 0.0, True: 0.0}
        for r in range(2 * args.rounds):
            on = r % 4 in (1, 2)  # off on on off off on on off ...: each kind as often first as second
            if on:
                agent.attach(lib)
            t0 = time.process_time()
            try:
                rounds[on].append(run_round())
            finally:
                agent_cpu_s[on] += time.process_time() - t0
                if on:
                    agent.detach()
        time.sleep(0.3)  # let the poll thread take the last events
        st = agent.close()
        agent = None
    finally:
        if agent is not None:
            agent.close()
        if proc is not None:
            proc.kill()
            proc.wait()
        az.stop()
        shutil.rmtree(libdir, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    without, with_agent = [x[0] for x in rounds[False]], [x[0] for x in rounds[True]]
    m_without, m_with = statistics.median(without), statistics.median(with_agent)
    pairs = [w / o for w, o in zip(with_agent, without)]
    cpu_without = statistics.median(x[1] for x in rounds[False])
    cpu_with = statistics.median(x[1] for x in rounds[True])
    print(f"{args.rounds} rounds of {args.requests} get_blob_properties each way; "
          f"load average {os.getloadavg()[0]:.2f}")
    print("without agent req/s:", " ".join(f"{x:.0f}" for x in without))
    print("with agent    req/s:", " ".join(f"{x:.0f}" for x in with_agent))
    print(f"median without {m_without:.0f} req/s, with {m_with:.0f} req/s; ratio {m_with / m_without:.3f} "
          f"(target >= 0.97); median of paired rounds' ratios {statistics.median(pairs):.3f}")
    print(f"client CPU per request: {cpu_without:.0f} µs without, {cpu_with:.0f} µs with "
          f"({cpu_with - cpu_without:+.0f} µs: the probes' traps and programs)")
    n = args.rounds * args.requests
    print(f"agent (this process: capture poll + pipeline) CPU per request: {agent_cpu_s[True] / n * 1e6:.0f} µs "
          f"attached, {agent_cpu_s[False] / n * 1e6:.0f} µs detached (idle polling)")
    counted = f"events counted {st['events']}" if args.no_pipeline else f"requests the pipeline counted {st['calls']}"
    print(f"agent: transport={st['transport']} captured={st['captured']} lost={st['lost']}; {counted} "
          f"(requests made with it attached: {args.rounds * args.requests})")

if __name__ == "__main__":
    main()
