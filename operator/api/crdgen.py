"""Write the generated CRD YAML into the Helm chart: ``.venv/bin/python -m clearance.operator.api.crdgen``."""
from __future__ import annotations

import sys
from pathlib import Path

from clearance.operator.api.model import GROUP, PLURAL
from clearance.operator.api.schema import crd_yaml

CHART_CRDS = Path(__file__).resolve().parents[2] / "charts" / "clearance" / "crds"
CRD_FILE = f"{PLURAL}.{GROUP}.yaml"


def write(directory: Path = CHART_CRDS) -> Path:
    """Write the clearance.dev CRD into ``directory``; returns the file written."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / CRD_FILE
    path.write_text(crd_yaml(otterize=False))
    return path


def main(argv: list[str] | None = None) -> int:
    args = argv if argv is not None else sys.argv[1:]
    if args == ["--check"]:
        path = CHART_CRDS / CRD_FILE
        if not path.is_file() or path.read_text() != crd_yaml(otterize=False):
            print(f"{path} is out of date; regenerate it", file=sys.stderr)
            return 1
        return 0
    print(write())
    return 0


if __name__ == "__main__":
    sys.exit(main())
