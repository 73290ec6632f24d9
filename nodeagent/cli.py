"""Subcommand ``agent``."""
from __future__ import annotations

import argparse

from clearance.common.flags import add_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "agent",
        help="run the node agent (eBPF capture of Azure REST calls; root)",
        description="Captures the Azure REST calls that processes on this node make, through uprobes "
        "on their TLS library, and reports them (redacted, attributed to pods) to the mapper.",
    )
    add_flag(p, "--mapper", required=True, metavar="HOST:PORT", help="the mapper's gRPC address")
    add_flag(p, "--mapper-ca", metavar="FILE",
             help="PEM CA that signed the mapper's certificate: report over TLS (without it: plaintext)")
    add_flag(p, "--mapper-server-name", metavar="NAME",
             help="name the mapper's certificate must carry (default: the host part of --mapper)")
    add_flag(p, "--pods-file", metavar="FILE", help="pods from YAML instead of the Kubernetes API")
    add_flag(p, "--endpoint", action="append", default=[], metavar="SERVICE=TEMPLATE",
             help="a custom endpoint, e.g. blob=https://{account}.blob.localhost:10000 (repeatable)")
    add_flag(p, "--metrics-port", type=int, default=9464, help="Prometheus metrics port (0: off)")
    add_flag(p, "--token-file", metavar="FILE", help="the token that authenticates this agent to the mapper")
    add_flag(p, "--node-name", metavar="NAME", help="this node's name (default: the hostname)")
    add_flag(p, "--no-library-open-hints", dest="library_open_hints", action="store_false", default=True,
             help="do not watch opens of libssl files (saves ~0.2 µs per system call node-wide; new TLS "
                  "libraries are then found by the 2 s rescan, and a short-lived process's first calls may be missed)")
    add_flag(p, "--buffer-size", type=int, default=10000, help="distinct calls kept while the mapper is unreachable")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clearance.nodeagent.main import run_agent

    return run_agent(args)
