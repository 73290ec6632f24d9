"""Write the generated CRDs into the Helm chart: ``.venv/bin/python -m clearance.operator.api.crdgen [--check]``.

``crds/`` holds Clearance's own CRD (always installed); ``otterize/`` holds Otterize's ClientIntents
CRD shape, installed only with ``otterizeCompat`` and ``otterizeCRD`` (clusters without Otterize).
"""
from __future__ import annotations

import sys
from pathlib import Path

from clearance.operator.api.model import GROUP, OTTERIZE_GROUP, PLURAL
from clearance.operator.api.schema import crd_yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "clearance"
CHART_CRDS = CHART / "crds"
CRD_FILE = f"{PLURAL}.{GROUP}.yaml"
OTTERIZE_FILE = CHART / "otterize" / f"{PLURAL}.{OTTERIZE_GROUP}.yaml"


def outputs(directory: Path = CHART_CRDS) -> dict[Path, str]:
    """Each generated file and its content."""
    return {directory / CRD_FILE: crd_yaml(otterize=False), OTTERIZE_FILE: crd_yaml(otterize=True)}


def write(directory: Path = CHART_CRDS) -> Path:
    """Write the CRDs; returns the clearance.dev one."""
    for path, text in outputs(directory).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory / CRD_FILE


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args == ["--check"]:
        stale = [p for p, text in outputs().items() if not p.is_file() or p.read_text() != text]
        for path in stale:
            print(f"{path} is out of date; regenerate it", file=sys.stderr)
        return 1 if stale else 0
    print(write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
