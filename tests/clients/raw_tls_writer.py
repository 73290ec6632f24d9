"""Connects over TLS and writes the given pieces as separate SSL_write_ex calls, then reads a bit.

Usage: raw_tls_writer.py HOST PORT CA GO_FILE PIECES_JSON  (pieces are latin-1 strings)
Waits for GO_FILE after ``import ssl`` so the agent can attach first.
"""
from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import time

host, port, ca, go, pieces = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
while not os.path.exists(go):
    time.sleep(0.05)
ctx = ssl.create_default_context(cafile=ca)
with socket.create_connection((host, port)) as raw, ctx.wrap_socket(raw, server_hostname=host) as s:
    for p in pieces:
        s.sendall(p.encode("latin-1"))
        time.sleep(0.01)
    s.settimeout(10)
    print(s.recv(4096).decode("latin-1").split("\r\n", 1)[0])
