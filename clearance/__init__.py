"""Clearance: least-privilege Azure permissions for AKS workloads, discovered with eBPF.

The components live in top-level folders (``nodeagent/``, ``mapper/``, ``operator/``) and the
wire contracts in ``proto/clearance/v1``; they are imported as ``clearance.nodeagent``,
``clearance.mapper``, ``clearance.operator`` and ``clearance.v1``. In an installed wheel the
build maps them into this package; in a source checkout this ``__path__`` extension does.
The component folders have no ``__init__.py`` on purpose: with the checkout on ``sys.path`` a
regular package named ``operator`` would shadow the standard library's module, while a namespace
directory never does.
"""
from __future__ import annotations

from pathlib import Path

__version__ = "0.1.0"

_root = Path(__file__).resolve().parent.parent
if any((_root / name).is_dir() for name in ("nodeagent", "mapper", "operator")):
    __path__.append(str(_root))  # type: ignore[name-defined]
if (_root / "proto" / "clearance" / "v1").is_dir():
    __path__.append(str(_root / "proto" / "clearance"))  # type: ignore[name-defined]
