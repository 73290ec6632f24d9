"""The one ``clearance`` command and its subcommands answer --help."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

CLEARANCE = Path(sys.executable).with_name("clearance")

SUBCOMMANDS = [
    [], ["agent"], ["mapper"], ["operator"], ["intents"], ["intents", "list"], ["intents", "export"],
    ["intents", "apply"], ["plan"], ["demo"],
]


@pytest.mark.parametrize("words", SUBCOMMANDS, ids=lambda w: " ".join(w) or "clearance")
def test_help(words: list[str]) -> None:
    out = subprocess.run([str(CLEARANCE), *words, "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "usage: clearance" in out.stdout


def test_unknown_subcommand_is_a_clear_error() -> None:
    out = subprocess.run([str(CLEARANCE), "frobnicate"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "invalid choice: 'frobnicate'" in out.stderr


def test_env_equivalent_fills_a_required_flag() -> None:
    from clearance.cli import build_parser

    import os
    os.environ["CLEARANCE_MAPPER"] = "10.0.0.1:9090"
    try:
        args = build_parser().parse_args(["agent"])
    finally:
        del os.environ["CLEARANCE_MAPPER"]
    assert args.mapper == "10.0.0.1:9090"


def test_proto_stubs_are_fresh() -> None:
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([str(root / "scripts" / "gen-proto"), "--check"], capture_output=True, text=True,
                         timeout=120, env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr


def test_env_equivalent_of_a_negative_switch() -> None:
    import os

    from clearance.cli import build_parser

    assert build_parser().parse_args(["agent", "--mapper", "m:1"]).library_open_hints is True
    assert build_parser().parse_args(["agent", "--mapper", "m:1", "--no-library-open-hints"]).library_open_hints is False
    os.environ["CLEARANCE_NO_LIBRARY_OPEN_HINTS"] = "true"
    try:
        assert build_parser().parse_args(["agent", "--mapper", "m:1"]).library_open_hints is False
    finally:
        del os.environ["CLEARANCE_NO_LIBRARY_OPEN_HINTS"]
