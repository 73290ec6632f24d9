"""Per-call cost the capture probes add to SSL_write_ex, measured in one run.

A client and a server SSLObject talk through memory BIOs in this process (no sockets, no other
process), so a loop of small ``SSLObject.write`` calls is a tight loop of SSL_write_ex. Prints the
median µs/call without the agent, with it for non-HTTP payloads (probe fires, kernel filter drops),
and with it for Azure-looking requests (captured and delivered). Run as root.
"""
from __future__ import annotations

import ssl
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from beds.certs import make_pki  # noqa: E402

from clearance.nodeagent.capture import Capture  # noqa: E402

BATCH, BATCHES, REPEATS = 2000, 10, 5
AZURE = b"GET /c/b?restype=container HTTP/1.1\r\nHost: acct.blob.core.windows.net\r\nx-ms-version: 2021-08-06\r\n\r\n"
OTHER = b"\x17\x03\x03" + b"x" * (len(AZURE) - 3)


def pair(pki) -> tuple[ssl.SSLObject, ssl.MemoryBIO]:  # noqa: ANN001
    sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    sctx.load_cert_chain(pki.cert, pki.key)
    cctx = ssl.create_default_context(cafile=str(pki.ca_cert))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = cctx.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = sctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        for obj in (client, server):
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
        s_in.write(c_out.read())
        c_in.write(s_out.read())
    client.do_handshake()
    return client, c_out


def per_call_us(client: ssl.SSLObject, out: ssl.MemoryBIO, payload: bytes, cap: Capture | None) -> float:
    samples = []
    for _ in range(REPEATS):
        total = 0.0
        for _ in range(BATCHES):
            t = time.perf_counter()
            for _ in range(BATCH):
                client.write(payload)
            total += time.perf_counter() - t
            out.read()
            if cap:
                cap.poll(0)
        samples.append(total / (BATCH * BATCHES) * 1e6)
    return statistics.median(samples)


def main() -> None:
    pki = make_pki(Path(tempfile.mkdtemp(prefix="bench-pki-")))
    client, out = pair(pki)
    delivered = [0]
    per_call_us(client, out, OTHER, None)  # warm-up
    base_other = per_call_us(client, out, OTHER, None)
    base_azure = per_call_us(client, out, AZURE, None)
    cap = Capture(lambda ev: delivered.__setitem__(0, delivered[0] + 1), attach_self=True)
    cap.start()
    try:
        per_call_us(client, out, OTHER, cap)  # warm-up
        on_other = per_call_us(client, out, OTHER, cap)
        before = delivered[0]
        on_azure = per_call_us(client, out, AZURE, cap)
        got = delivered[0] - before
        st = cap.stats()
    finally:
        cap.close()
    n = BATCH * BATCHES * REPEATS
    print(f"transport={st['transport']} libraries={st['attached']} lost={st['lost']}")
    print(f"non-Azure payload: {base_other:.2f} µs/call without agent, {on_other:.2f} with; "
          f"probe cost {on_other - base_other:.2f} µs (target <= 2)")
    print(f"Azure request:     {base_azure:.2f} µs/call without agent, {on_azure:.2f} with; "
          f"probe cost {on_azure - base_azure:.2f} µs (target <= 6); captured {got}/{n}")


if __name__ == "__main__":
    main()
