"""The Dockerfiles cannot be built here (no Docker engine); check what can be checked without one:
every COPY source exists, and the image's file layout runs its command."""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
IMAGES = {"nodeagent/Dockerfile": "agent", "mapper/Dockerfile": "mapper", "operator/Dockerfile": "operator"}


def copies(dockerfile: Path) -> list[tuple[str, str]]:
    pairs = []
    for line in dockerfile.read_text().splitlines():
        m = re.match(r"^COPY\s+(?!--from)(\S+)\s+(\S+)\s*$", line)
        if m:
            pairs.append((m.group(1), m.group(2)))
    return pairs


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_image_layout_runs_its_command(dockerfile: str, tmp_path: Path) -> None:
    text = (ROOT / dockerfile).read_text()
    assert re.search(r"^FROM \S+:\S*\d", text, re.M), "base image must be pinned to a version"
    assert "ENTRYPOINT" in text
    image_root = tmp_path / "opt" / "clearance"
    image_root.mkdir(parents=True)
    for src, dst in copies(ROOT / dockerfile):
        source = ROOT / src.rstrip("/")
        assert source.exists(), f"{dockerfile}: COPY source {src} does not exist"
        if dst.startswith("./"):
            target = image_root / source.name
        else:
            target = image_root / dst.rstrip("/")
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target)
    command = IMAGES[dockerfile]
    # The image puts /opt/clearance on sys.path with a .pth file; -S keeps this venv's .pth files out.
    site = subprocess.run([sys.executable, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    code = (f"import site, sys; sys.path[:0] = [{str(image_root)!r}]; site.addsitedir({site!r}); "
            f"sys.path = [p for p in sys.path if not p.startswith({str(ROOT)!r})] ; "
            f"sys.argv = ['clearance', {command!r}, '--help']; "
            "from clearance.cli import main; raise SystemExit(main())")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, cwd=image_root, timeout=60)
    assert out.returncode == 0, out.stderr
    assert f"usage: clearance {command}" in out.stdout


COMPONENT_SOURCES = {
    "nodeagent/Dockerfile": ["nodeagent", "clearance/common", "clearance/cli.py", "proto"],
    "mapper/Dockerfile": ["mapper", "operator/api", "clearance/common", "clearance/cli.py", "proto"],
    "operator/Dockerfile": ["operator", "clearance/common", "clearance/cli.py"],
}


def _third_party_imports(paths: list[str]) -> set[str]:
    import ast

    names: set[str] = set()
    for rel in paths:
        base = ROOT / rel
        for file in [base] if base.is_file() else base.rglob("*.py"):
            for node in ast.walk(ast.parse(file.read_text())):
                if isinstance(node, ast.Import):
                    names |= {a.name.split(".")[0] for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"clearance", "bcc", "__future__"}}


def _closure(requirements: set[str]) -> set[str]:
    import importlib.metadata as md
    import re as _re

    seen: set[str] = set()
    todo = list(requirements)
    while todo:
        name = _re.sub(r"[-_.]+", "-", todo.pop()).lower()
        if name in seen:
            continue
        seen.add(name)
        try:
            reqs = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        todo += [_re.split(r"[ ;<>=!~\[]", r, maxsplit=1)[0] for r in reqs if "extra ==" not in r]
    return seen


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_image_requirements_cover_its_imports_with_the_projects_pins(dockerfile: str) -> None:
    import importlib.metadata as md
    import re as _re

    component = dockerfile.split("/")[0]
    pins = dict(line.strip().split("==") for line in (ROOT / component / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    root_pins = dict(line.strip().split("==") for line in (ROOT / "requirements.txt").read_text().splitlines()
                     if "==" in line and not line.startswith("#"))
    for name, version in pins.items():
        assert root_pins.get(name) == version, f"{component}/requirements.txt pins {name}=={version}, requirements.txt does not"
    available = _closure(set(pins))
    distributions = md.packages_distributions()
    for module in sorted(_third_party_imports(COMPONENT_SOURCES[dockerfile])):
        dists = {_re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(module, [])}
        assert dists & available, f"{dockerfile}: imports {module} ({dists or 'not installed'}) not in {component}/requirements.txt"
