"""The one ``clearance`` command: each component registers its own subcommands."""
from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from clearance import __version__


COMPONENTS = ("nodeagent", "mapper", "operator", "demo")


def build_parser() -> argparse.ArgumentParser:
    """The full command tree; importing it loads no component's heavy dependencies."""
    parser = argparse.ArgumentParser(
        prog="clearance",
        description="Find the Azure permissions your AKS workloads really use, and grant exactly those.",
    )
    parser.add_argument("--version", action="version", version=f"clearance {__version__}")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for component in COMPONENTS:
        try:
            module = importlib.import_module(f"clearance.{component}.cli")
        except ModuleNotFoundError as exc:
            # A container image ships only its own component.
            if exc.name not in {f"clearance.{component}", f"clearance.{component}.cli"}:
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from clearance.common import logs

    logs.setup(args.log_level)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
