"""The propagation window: a grant Clearance just created or changed shows Propagating, then Ready on a
later reconcile that writes nothing. Reconciler tests use a settable clock; the kopf test a short window."""
from __future__ import annotations

import datetime as dt
from typing import Any

from clearance.operator.api import parse_client_intents
from clearance.operator.intents.conditions import READY, TargetState
from clearance.operator.intents.propagation import propagating, recorded_changes, stamp
from clearance.operator.intents.reconciler import IntentsReconciler
from test_operator_identity_harness import wait_for
from test_operator_intents import (
    BLOB_READ,
    BLOB_WRITE,
    NS,
    Env,
    custom_target,
    intents_doc,
    run,
    storage,
    workload,
)
from test_operator_intents_e2e import API, Operator, conditions, prepare

WINDOW = 600.0


class Clock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def with_clock(env: Env, clock: Clock) -> IntentsReconciler:
    env.reconciler = IntentsReconciler(env.arm, env.settings, env.identities, env.core, clock=clock)
    return env.reconciler


def kinds(out: Any) -> list[tuple[str, str]]:
    return [(s.type, s.reason) for s in out.states]


def test_new_grants_propagate_then_ready_without_writes(arm_server, kube_server) -> None:
    clock = Clock()

    async def scenario(env: Env) -> None:
        reconciler = with_clock(env, clock)
        principal = await workload(env)
        account = storage(env)
        env.arm_server.add_vault(env.sub, env.rg, "shop-kv")
        container = account + "/blobServices/default/containers/invoices"
        doc = intents_doc([custom_target(container, BLOB_READ),
                           {"azure": {"scope": account, "roles": ["Storage Blob Delegator"]}},
                           {"azure": {"scope": "/providers/Microsoft.KeyVault/vaults/shop-kv",
                                      "keyVaultPolicy": {"secretPermissions": ["get"]}}}])
        intents = parse_client_intents(doc)
        out = await reconciler.reconcile(intents)
        assert kinds(out) == [("Propagating", "RoleAssignmentPropagating")] * 2 + [
            ("Propagating", "AccessPolicyPropagating")]
        assert "up to ~10 minutes" in out.states[0].message
        assert not out.retry and out.recheck_after == WINDOW
        assert len(env.assignments(principal)) == 2 and out.writes == 4  # role, 2 assignments, policy
        assert set(out.record["changedAt"]) == {s.scope.lower() for s in out.states}
        assert set(out.record["changedAt"].values()) == {stamp(clock.now)}

        # inside the window: still Propagating, the re-check is due when the window ends, nothing written
        before = env.writes()
        clock.now += 400
        again = await reconciler.reconcile(intents, out.record)
        assert [s.type for s in again.states] == ["Propagating"] * 3
        assert again.recheck_after == WINDOW - 400 and again.writes == 0 and env.writes() == before

        # a restarted operator (new reconciler, status from the API) keeps the window
        restarted = IntentsReconciler(env.arm, env.settings, env.identities, env.core, clock=clock)
        assert [s.type for s in (await restarted.reconcile(intents, again.record)).states] == ["Propagating"] * 3

        # the re-check after the window: Ready, zero ARM writes
        clock.now += WINDOW - 400
        done = await reconciler.reconcile(intents, again.record)
        assert [s.type for s in done.states] == [READY] * 3 and done.recheck_after is None
        assert done.writes == 0 and env.writes() == before
        assert done.record["changedAt"] == out.record["changedAt"]  # when Clearance changed them, kept

        # permissions changed on one target: only that one propagates again
        clock.now += 10
        doc2 = intents_doc([custom_target(container, BLOB_WRITE)] + doc["spec"]["targets"][1:])
        changed = await reconciler.reconcile(parse_client_intents(doc2), done.record)
        assert [s.type for s in changed.states] == ["Propagating", READY, READY] and changed.writes == 1
        assert changed.record["changedAt"][container.lower()] == stamp(clock.now)

        # a target removed: its change time goes with it
        clock.now += WINDOW
        fewer = await reconciler.reconcile(parse_client_intents(intents_doc(doc2["spec"]["targets"][:1])),
                                           changed.record)
        assert [s.type for s in fewer.states] == [READY]
        assert list(fewer.record["changedAt"]) == [container.lower()]
    run(arm_server, kube_server, scenario, propagation_window=WINDOW)


def test_principal_not_found_then_propagating_then_ready(arm_server, kube_server) -> None:
    clock = Clock()

    async def scenario(env: Env) -> None:
        reconciler = with_clock(env, clock)
        env.arm_server.faults.principal_not_found_seconds = 3600
        principal = await workload(env)
        account = storage(env)
        intents = parse_client_intents(intents_doc([{"azure": {"scope": account, "roles": ["Storage Blob Data Reader"]}}]))
        out = await reconciler.reconcile(intents)
        assert kinds(out) == [("Propagating", "PrincipalNotFound")] and out.retry  # retried with backoff
        assert env.assignments(principal) == [] and "changedAt" not in out.record
        env.arm_server.faults.principal_not_found_seconds = 0
        clock.now += 30
        out = await reconciler.reconcile(intents, out.record)
        assert kinds(out) == [("Propagating", "RoleAssignmentPropagating")] and not out.retry
        assert len(env.assignments(principal)) == 1
        before = env.writes()
        clock.now += WINDOW
        out = await reconciler.reconcile(intents, out.record)
        assert kinds(out) == [("Ready", "Applied")] and env.writes() == before
    run(arm_server, kube_server, scenario, propagation_window=WINDOW)


def test_window_zero_is_ready_at_once(arm_server, kube_server) -> None:
    async def scenario(env: Env) -> None:
        await workload(env)
        account = storage(env)
        out = await env.reconciler.reconcile(parse_client_intents(
            intents_doc([{"azure": {"scope": account, "roles": ["Reader"]}}])))
        assert kinds(out) == [("Ready", "Applied")] and out.recheck_after is None
    run(arm_server, kube_server, scenario, propagation_window=0)


def test_malformed_or_future_change_times_are_not_believed() -> None:
    assert recorded_changes({"changedAt": "yesterday"}) == {}
    assert recorded_changes({"changedAt": {"/S": "not a time", 5: stamp(0), "/T": 7, "/U": stamp(10)}}) == {"/u": 10.0}
    ready = TargetState(0, READY, "Applied", scope="/s")
    assert propagating(ready, changed_at=1000.0, now=5000.0, window=600, policy_only=False) is None
    assert propagating(ready, changed_at=9e9, now=5000.0, window=600, policy_only=False) is None
    state, left = propagating(ready, changed_at=4900.0, now=5000.0, window=600, policy_only=False)  # type: ignore[misc]
    assert (state.type, left) == ("Propagating", 500.0)


def test_kopf_rechecks_when_the_window_ends(arm_server, kube_server, test_pki) -> None:
    window = 4.0
    env = Env(arm_server, kube_server, propagation_window=window)
    principal, account = prepare(env, kube_server)
    op = Operator(env, kube_server, test_pki)
    try:
        kube_server.create(intents_doc([{"azure": {"scope": account, "roles": ["Storage Blob Delegator"]}}]))

        def azure_status() -> dict[str, Any] | None:
            obj = kube_server.get(API, "ClientIntents", NS, "orders-intents") or {}
            return ((obj.get("status") or {}).get("azure") or {}).get("changedAt")
        changed_at = wait_for(azure_status, "change time recorded in status.azure")
        writes = env.writes()
        assert len(env.assignments(principal)) == 1
        # the default resync is 300 s away: Ready comes from the re-check scheduled at the window's end
        wait_for(lambda: [c["type"] for c in conditions(kube_server, "orders-intents")] == ["Ready"], "Ready")
        assert env.writes() == writes
        (ready,) = conditions(kube_server, "orders-intents")
        became_ready = dt.datetime.fromisoformat(ready["lastTransitionTime"]).timestamp()
        (when,) = changed_at.values()
        # never shown Ready before the window ended (transition times are whole seconds)
        assert became_ready >= int(dt.datetime.fromisoformat(when).timestamp() + window)
        status = kube_server.get(API, "ClientIntents", NS, "orders-intents")["status"]
        assert status["upToDate"] is True and status["ready"] == "1/1"
    finally:
        op.stop()


BASE_ARGS = ["operator", "--subscription-id", "s1", "--resource-group", "rg", "--cluster-name", "c1"]


def test_propagation_window_flag_and_env(monkeypatch) -> None:
    import pytest

    from clearance.cli import build_parser
    from clearance.operator.settings import Settings, SettingsError

    assert Settings.from_args(build_parser().parse_args(BASE_ARGS)).propagation_window == 600.0
    args = build_parser().parse_args(BASE_ARGS + ["--propagation-window", "30"])
    assert Settings.from_args(args).propagation_window == 30.0
    monkeypatch.setenv("CLEARANCE_PROPAGATION_WINDOW", "0")
    assert Settings.from_args(build_parser().parse_args(BASE_ARGS)).propagation_window == 0.0
    with pytest.raises(SettingsError, match="--propagation-window"):
        Settings.from_args(build_parser().parse_args(BASE_ARGS + ["--propagation-window", "-5"]))
