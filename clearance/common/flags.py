"""Command-line flags with ``CLEARANCE_*`` environment equivalents."""
from __future__ import annotations

import argparse
import os
from typing import Any


def env_name(flag: str) -> str:
    """``--mapper-addr`` -> ``CLEARANCE_MAPPER_ADDR``."""
    return "CLEARANCE_" + flag.lstrip("-").replace("-", "_").upper()


def add_flag(parser: argparse.ArgumentParser, flag: str, *, env: bool = True, **kwargs: Any) -> argparse.Action:
    """Add ``flag`` whose default comes from its ``CLEARANCE_*`` variable when that is set.

    Repeatable flags (``action="append"``) read a comma-separated list from the variable.
    Boolean switches (``store_true``/``store_false``) take 1/true/yes/on to mean "the switch is given".
    """
    if env:
        name = env_name(flag)
        raw = os.environ.get(name)
        help_text = kwargs.get("help", "")
        kwargs["help"] = f"{help_text} [env {name}]".strip()
        if raw is not None:
            action = kwargs.get("action")
            if action in ("store_true", "store_false"):
                truthy = raw.strip().lower() in {"1", "true", "yes", "on"}
                kwargs["default"] = truthy if action == "store_true" else not truthy
            elif action == "append":
                kwargs["default"] = [item.strip() for item in raw.split(",") if item.strip()]
            else:
                convert = kwargs.get("type", str)
                try:
                    kwargs["default"] = convert(raw)
                except (TypeError, ValueError) as exc:
                    raise SystemExit(f"error: {name}={raw!r} is not valid for {flag}: {exc}") from None
            kwargs.pop("required", None)
    return parser.add_argument(flag, **kwargs)
