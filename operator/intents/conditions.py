"""Status conditions: one per target, of type Ready, Propagating or Failed."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

READY, PROPAGATING, FAILED = "Ready", "Propagating", "Failed"


@dataclass
class TargetState:
    """What happened to one target in one reconcile."""

    index: int
    type: str
    reason: str
    message: str = ""
    scope: str = ""
    transient: bool = False  # worth a retry soon


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def conditions(states: list[TargetState], generation: int | None, previous: list[Any] | None) -> list[dict[str, Any]]:
    """Conditions for ``states``, keeping lastTransitionTime when a target's type and reason held."""
    before = {(c.get("target"), c.get("type"), c.get("reason")): c.get("lastTransitionTime")
              for c in previous or [] if isinstance(c, dict)}
    out = []
    for s in sorted(states, key=lambda s: s.index):
        cond: dict[str, Any] = {"type": s.type, "status": "True", "target": s.index, "reason": s.reason,
                                "message": s.message[:1000]}
        if s.scope:
            cond["scope"] = s.scope
        if generation is not None:
            cond["observedGeneration"] = generation
        cond["lastTransitionTime"] = before.get((s.index, s.type, s.reason)) or now()
        out.append(cond)
    return out


def summary(states: list[TargetState]) -> str:
    """``ready/total`` over the Azure targets (unsupported kinds are not counted)."""
    azure = [s for s in states if s.reason != "UnsupportedTarget"]
    return f"{sum(s.type == READY for s in azure)}/{len(azure)}"
