"""Subcommand ``demo``."""
from __future__ import annotations

import argparse

from clearance.common.flags import add_flag


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the tutorial on this machine: Azurite, mapper, eBPF agent, a client pod",
        description="Runs the Azure IAM tutorial locally (root and eBPF required): Azurite as the "
        "storage account, the mapper, the node agent, and the tutorial's client as a pod; shows "
        "the discovered intents, the exported ClientIntents and the plan.",
    )
    add_flag(p, "--duration", type=float, default=90.0,
             help="at most this many seconds to wait for every expected permission")
    add_flag(p, "--workdir", default=None, help="where to keep state (default: a temporary folder)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from clearance.demo.run import run_demo

    return run_demo(args)
