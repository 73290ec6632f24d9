"""README.md stays true: its commands exist with the flags it shows, its helm values are the
chart's, and the result it promises for the demo is the one the demo test asserts."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import helm_python as helm
import pytest
import yaml

from clearance.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def shell_lines() -> list[str]:
    """Every command line in the README's sh code blocks, continuation lines joined."""
    lines: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", README, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [ln.split("  #")[0].strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return lines


def clearance_commands() -> list[list[str]]:
    commands = []
    for line in shell_lines() + re.findall(r"`(clearance [^`]+)`", README):
        for part in re.split(r"\s*(?:&&|\||;)\s*", line):
            if part.startswith("clearance "):
                words = shlex.split(part, comments=True)[1:]
                # placeholders like [-n NS | -A] in usage lines are documentation, not commands
                if any(w.startswith("[") or w.startswith("<") or "|" in w for w in words):
                    continue
                commands.append(words)
    return commands


def test_readme_has_the_two_commands_and_ci_runs_the_test_one() -> None:
    assert "make demo" in README and "make test" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^exec make test$", ci, re.M)


@pytest.mark.parametrize("words", clearance_commands(), ids=lambda w: " ".join(w))
def test_every_clearance_command_parses(words: list[str]) -> None:
    args = build_parser().parse_args(words)
    assert callable(args.func)


def test_there_are_clearance_commands_to_check() -> None:
    assert len(clearance_commands()) >= 6


def test_helm_install_values_are_the_charts() -> None:
    install = next(ln for ln in shell_lines() if ln.startswith("helm install"))
    words = shlex.split(install)
    sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
    values: dict = {}
    for s in sets:
        key, _, _ = s.partition("=")
        node = values
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        # placeholders and shell substitutions become valid example values
        node[leaf] = {"subscriptionID": "6b1c3e4a-0d2f-4c8e-9a1b-2c3d4e5f6a7b",
                      "userAssignedIdentityID": "0e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"}.get(leaf, "example")
    assert {"azure", "image"} <= set(values)
    with helm.Chart.load(ROOT / "charts" / "clearance") as chart:
        chart.validate_schema(values)
    assert "charts/clearance" in words and "-n" in words


def test_the_demo_result_in_the_readme_is_the_demos() -> None:
    block = re.search(r"```yaml\n(apiVersion: clearance.dev/v1.*?)```", README, re.S)
    assert block, "the README shows the demo's ClientIntents"
    doc = yaml.safe_load(block.group(1))
    scope = "/providers/Microsoft.Storage/storageAccounts/ottrazuredemo/blobServices/default/containers/"
    blob = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs/"
    assert doc["spec"]["targets"] == [
        {"azure": {"scope": scope + "downloads", "dataActions": [blob + "read"]}},
        {"azure": {"scope": scope + "uploads", "dataActions": [blob + "write"]}},
    ]
