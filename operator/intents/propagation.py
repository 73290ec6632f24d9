"""The window after Clearance changes a grant, during which Azure may still deny the calls it allows.

Azure RBAC (and Key Vault access policies) can take up to ~10 minutes to apply everywhere. A target
whose grants Clearance created or changed less than ``window`` seconds ago shows ``Propagating``;
the change time of each scope is kept in ``status.azure.changedAt`` so restarts keep the window.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from clearance.operator.intents.conditions import PROPAGATING, TargetState

ROLE_REASON = "RoleAssignmentPropagating"
POLICY_REASON = "AccessPolicyPropagating"


def stamp(epoch: float) -> str:
    """UTC ISO 8601 with milliseconds, as kept in status."""
    when = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse(text: object) -> float | None:
    """Epoch seconds of a ``stamp``; None when the status holds something else."""
    if not isinstance(text, str):
        return None
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


def recorded_changes(recorded: Mapping[str, object]) -> dict[str, float]:
    """``status.azure.changedAt`` as {lowercase scope: epoch seconds}, skipping malformed entries."""
    raw = recorded.get("changedAt")
    out: dict[str, float] = {}
    if isinstance(raw, Mapping):
        for scope, text in raw.items():
            when = parse(text)
            if isinstance(scope, str) and when is not None:
                out[scope.lower()] = when
    return out


def propagating(state: TargetState, changed_at: float, now: float, window: float,
                policy_only: bool) -> tuple[TargetState, float] | None:
    """The Propagating state for a Ready ``state`` still inside the window, with the seconds left."""
    left = changed_at + window - now
    if left <= 0 or changed_at > now + 60:  # a change stamped in the future is not believed
        return None
    what = "Key Vault access policy" if policy_only else "Azure RBAC"
    message = (f"{what} may take up to ~10 minutes to apply; Clearance changed this grant at {stamp(changed_at)} "
               f"and shows it Ready from {stamp(changed_at + window)}")
    return TargetState(state.index, PROPAGATING, POLICY_REASON if policy_only else ROLE_REASON, message,
                       scope=state.scope), left
