"""The rollout state machine, pure: every path, every command, and resuming from any
persisted state (a controller killed between an action and its write does it again)."""

from __future__ import annotations

import itertools
import json

import pytest

from skserve.errors import InvalidInput
from skserve.rollout import state as sm
from skserve.rollout.state import (
    Analyse,
    Deploy,
    Done,
    Finalize,
    PreTraffic,
    RolloutSpec,
    RolloutState,
    ScaleDown,
    SetWeights,
    Wait,
    next_action,
)

PASS = {"verdict": "pass", "summary": "ok", "checks": []}
FAIL = {"verdict": "fail", "summary": "success-rate: 40% non-5xx",
        "checks": [{"name": "success-rate", "measured": "fail", "verdict": "fail"}]}
INCONCLUSIVE = {"verdict": "inconclusive", "summary": "only 3 requests", "checks": []}


def canary(**kw) -> RolloutSpec:
    doc = {"release": "demo", "strategy": sm.CANARY, "stable_slot": "blue",
           "stable_version": "demand:v1", "canary_slot": "green",
           "canary_version": "demand:v2", "steps": sm.canary_steps([10, 25, 50, 100], 30),
           "interval_s": 10, "max_inconclusive": 2, "keep_old_s": 60}
    return RolloutSpec(**{**doc, **kw})


def blue_green(**kw) -> RolloutSpec:
    return canary(strategy=sm.BLUE_GREEN, steps=sm.blue_green_steps(20, smoke=15), **kw)


def drive(spec, verdicts, st=None, now=0.0, commands=None, roundtrip=False, limit=200,
          pre_traffic=PASS):
    """Run the machine like the controller does: carry out each action (time passes to the
    end of a Wait), answer each Analyse with the next verdict (the last one repeats) and
    each PreTraffic with `pre_traffic`. Returns the actions and the final state."""
    st = st or RolloutState()
    commands = dict(commands or {})
    actions, verdict, i = [], None, 0
    for turn in range(limit):
        t = next_action(spec, st, now, verdict, commands.pop(turn, None))
        verdict = None
        actions.append(t.action)
        st = t.state
        if roundtrip:  # what the store would give back
            st = RolloutState.from_dict(json.loads(json.dumps(st.to_dict())))
        if isinstance(t.action, Done):
            return actions, st
        if isinstance(t.action, Analyse):
            verdict = verdicts[min(i, len(verdicts) - 1)]
            i += 1
        if isinstance(t.action, PreTraffic):
            verdict = pre_traffic
        if isinstance(t.action, Wait):
            now = max(now + 0.001, t.action.until)
        else:
            now += 0.5
    raise AssertionError(f"no end after {limit} turns: {actions[-5:]}")


def kinds(actions):
    return [a.kind for a in actions]


def weight_changes(actions):
    return [a.weights["green"] for a in actions if isinstance(a, SetWeights)]


def test_a_passing_canary_walks_every_step_then_promotes_and_scales_the_old_slot_down():
    actions, st = drive(canary(), [PASS])
    assert st.phase == sm.SUCCEEDED and not st.failed
    assert isinstance(actions[0], Deploy) and actions[0] == Deploy("green", "demand:v2")
    assert weight_changes(actions) == [10, 25, 50, 100]
    assert actions[-3:] == [ScaleDown("blue"), Finalize("green"), Done(sm.SUCCEEDED)]
    assert st.weights == {"blue": 0, "green": 100}
    # every step was analysed at least once before it advanced
    assert {a["step"] for a in st.analyses} == {0, 1, 2}


def test_each_step_lasts_its_pause_and_analyses_every_interval():
    spec = canary()
    actions, st = drive(spec, [PASS])
    analyses = [a for a in actions if isinstance(a, Analyse)]
    per_step = {s: sum(1 for a in analyses if a.step == s) for s in range(3)}
    assert per_step == {0: 3, 1: 3, 2: 3}  # 30 s pause / 10 s interval
    times = [a["at"] for a in st.analyses if a["step"] == 0]
    assert all(b - a >= spec.interval_s for a, b in itertools.pairwise(times))


def test_a_failed_analysis_rolls_back_at_once():
    actions, st = drive(canary(), [PASS, FAIL])
    assert st.phase == sm.FAILED and st.failed
    assert weight_changes(actions) == [10, 0]  # never went past step 1
    assert actions[-4:] == [SetWeights({"blue": 100, "green": 0}), ScaleDown("green"),
                            Finalize("blue"), Done(sm.FAILED)]
    assert "success-rate" in st.message
    assert st.analyses[-1]["verdict"] == "fail" and st.analyses[-1]["summary"] == FAIL[
        "summary"]


def test_inconclusive_during_the_pause_is_not_counted_but_never_passes():
    # inconclusive all the pause, then passes: the step waits for the pass
    _actions, st = drive(canary(), [INCONCLUSIVE, INCONCLUSIVE, INCONCLUSIVE, PASS])
    assert st.phase == sm.SUCCEEDED
    assert st.analyses[0]["verdict"] == "inconclusive"


def test_too_many_inconclusive_after_the_pause_fails_safe():
    actions, st = drive(canary(max_inconclusive=2), [INCONCLUSIVE])
    assert st.phase == sm.FAILED
    assert "inconclusive 3 times" in st.message
    assert weight_changes(actions) == [10, 0]


def test_a_failure_awaiting_confirmation_is_not_counted_as_too_little_traffic():
    pending = {**INCONCLUSIVE, "pending_failure": True}
    _, st = drive(canary(max_inconclusive=0), [PASS, PASS, PASS, pending, pending, pending,
                                               PASS])
    assert st.phase == sm.SUCCEEDED
    _, st = drive(canary(max_inconclusive=0), [PASS, PASS, PASS, INCONCLUSIVE])
    assert st.phase == sm.FAILED


def test_steps_without_analysis_advance_on_time_alone():
    spec = canary(steps=sm.canary_steps([20, 60], 5, analysis=False))
    actions, st = drive(spec, [FAIL])
    assert st.phase == sm.SUCCEEDED and not any(isinstance(a, Analyse) for a in actions)
    assert weight_changes(actions) == [20, 60, 100]


def test_blue_green_previews_with_smoke_then_switches_in_one_step():
    actions, st = drive(blue_green(), [PASS])
    analyses = [a for a in actions if isinstance(a, Analyse)]
    assert analyses and all(a.smoke == 15 for a in analyses)
    assert weight_changes(actions) == [0, 100]  # preview at 0, then the switch
    assert st.phase == sm.SUCCEEDED


def test_blue_green_failing_preview_never_takes_traffic():
    actions, st = drive(blue_green(), [FAIL])
    assert st.phase == sm.FAILED and max(weight_changes(actions)) == 0


def test_the_pre_traffic_check_runs_after_the_deploy_before_any_user_traffic():
    actions, st = drive(canary(pre_traffic=30), [PASS])
    assert kinds(actions)[:3] == ["deploy", "pre_traffic", "set_weights"]
    assert actions[1] == PreTraffic("green", 30)
    assert weight_changes(actions) == [10, 25, 50, 100] and st.phase == sm.SUCCEEDED
    assert st.analyses[0]["step"] == sm.PRE_TRAFFIC_STEP and st.pre_traffic == "pass"
    assert not any(isinstance(a, PreTraffic) for a in drive(canary(), [PASS])[0])  # off


@pytest.mark.parametrize("verdict", [FAIL, INCONCLUSIVE])
def test_a_pre_traffic_check_that_does_not_pass_rolls_back_before_any_weight(verdict):
    """A fail, and an inconclusive one (no smoke request could be sent): never a pass."""
    for spec in (canary(pre_traffic=30), blue_green(pre_traffic=30)):
        actions, st = drive(spec, [PASS], pre_traffic=verdict)
        assert st.phase == sm.FAILED
        assert weight_changes(actions) == [0]  # only the rollback's: never any traffic
        assert not any(isinstance(a, Analyse) for a in actions)
        assert st.message.startswith(f"pre-traffic check {verdict['verdict']}")
        assert [a["step"] for a in st.analyses] == [sm.PRE_TRAFFIC_STEP]


def test_a_lost_pre_traffic_verdict_is_asked_for_again():
    spec = canary(pre_traffic=10)
    t = next_action(spec, RolloutState(), 0.0)  # deploy
    t = next_action(spec, t.state, 1.0)
    assert isinstance(t.action, PreTraffic) and t.state.pre_traffic == "running"
    # killed after the check, before its verdict was fed back: the check runs again
    again = next_action(spec, RolloutState.from_dict(t.state.to_dict()), 2.0)
    assert again.action == t.action
    # an operator's promote skips it, like the steps
    promoted = next_action(spec, t.state, 2.0, command="promote")
    assert isinstance(promoted.action, SetWeights) and promoted.action.weights["green"] == 100


def test_keep_old_slot_delays_the_scale_down():
    spec = canary(keep_old_s=120)
    actions, st = drive(spec, [PASS])
    promoted = next(i for i, a in enumerate(actions) if isinstance(a, SetWeights)
                    and a.weights["green"] == 100)
    wait = actions[promoted + 1]
    assert isinstance(wait, Wait) and wait.until == pytest.approx(st.promoted_at + 120)
    assert st.finished_at >= st.promoted_at + 120


@pytest.mark.parametrize("turn", [0, 1, 2, 5, 9])
def test_promote_skips_the_remaining_steps(turn):
    actions, st = drive(canary(), [PASS], commands={turn: "promote"})
    assert st.phase == sm.SUCCEEDED
    assert weight_changes(actions)[-1] == 100
    assert len(weight_changes(actions)) <= 3
    assert Deploy("green", "demand:v2") in actions  # promote before deploy still deploys


def test_promote_while_keeping_the_old_slot_scales_it_down_now():
    spec = canary(keep_old_s=3600)
    _, st = drive(spec, [PASS], limit=200, commands={})  # runs to the end past the wait
    # replay: stop right after promotion and promote again
    st2 = RolloutState()
    now = 0.0
    for _ in range(100):
        t = next_action(spec, st2, now, PASS if st2.phase == sm.PROGRESSING else None)
        st2, now = t.state, now + 40
        if st2.phase == sm.PROMOTED:
            break
    t = next_action(spec, st2, now + 1, command="promote")
    assert t.action == ScaleDown("blue")
    assert st.phase == sm.SUCCEEDED


@pytest.mark.parametrize("turn", [0, 3, 8])
def test_abort_rolls_back_and_counts_as_a_failure(turn):
    actions, st = drive(canary(), [PASS], commands={turn: "abort"})
    assert st.phase == sm.ABORTED and st.failed
    assert st.weights == {"blue": 100, "green": 0}
    assert ScaleDown("green") in actions and Finalize("blue") in actions


def test_undo_after_success_redeploys_the_old_version_and_switches_back():
    spec = canary(keep_old_s=0)
    _, done = drive(spec, [PASS])
    actions, st = drive(spec, [PASS], st=done, now=10_000, commands={0: "undo"})
    assert st.phase == sm.UNDONE and not st.failed
    assert actions[:4] == [Deploy("blue", "demand:v1"), SetWeights({"blue": 100, "green": 0}),
                           ScaleDown("green"), Finalize("blue")]


def test_undo_while_the_old_slot_is_kept_is_one_weight_change():
    spec = canary(keep_old_s=3600)
    st, now = RolloutState(), 0.0
    while st.phase != sm.PROMOTED:
        t = next_action(spec, st, now, PASS if st.phase == sm.PROGRESSING else None)
        st, now = t.state, now + 11
    t = next_action(spec, st, now, command="undo")
    assert t.action == SetWeights({"blue": 100, "green": 0}) and t.warning


def test_commands_on_a_finished_rollout_are_ignored_with_a_reason():
    _, st = drive(canary(), [FAIL])
    for command in ("promote", "abort", "undo"):
        t = next_action(canary(), st, 10_000, command=command)
        assert t.reason == "CommandIgnored" and t.state.phase == sm.FAILED
        assert sm.FAILED in t.message


def test_a_terminal_state_only_says_done():
    _, st = drive(canary(), [PASS])
    t = next_action(canary(), st, 1e6)
    assert t.action == Done(sm.SUCCEEDED) and t.state.to_dict() == st.to_dict()


def test_next_action_never_mutates_its_input():
    st = RolloutState()
    before = st.to_dict()
    next_action(canary(), st, 0.0)
    assert st.to_dict() == before


@pytest.mark.parametrize("spec_fn,verdicts,cmds", [
    (canary, [PASS], {}),
    (canary, [PASS, PASS, INCONCLUSIVE, FAIL], {}),
    (canary, [INCONCLUSIVE], {}),
    (blue_green, [PASS], {}),
    (canary, [PASS], {6: "abort"}),
    (canary, [PASS], {4: "promote"}),
    (lambda: canary(pre_traffic=20), [PASS, FAIL], {}),
    (lambda: blue_green(pre_traffic=20), [PASS], {}),
])
def test_resuming_from_every_persisted_state_ends_the_same(spec_fn, verdicts, cmds):
    """Persist (JSON) after every transition and restart from it: the same end. And a
    controller killed after acting but before writing repeats the same action."""
    spec = spec_fn()
    ref_actions, ref = drive(spec, verdicts, commands=cmds)
    _, round_tripped = drive(spec, verdicts, commands=cmds, roundtrip=True)
    assert round_tripped.to_dict() == ref.to_dict()
    # replay turn by turn; at each persisted state, a "killed" controller decides again
    st, now, verdict, i = RolloutState(), 0.0, None, 0
    for turn, expected in enumerate(ref_actions):
        persisted = RolloutState.from_dict(json.loads(json.dumps(st.to_dict())))
        t = next_action(spec, persisted, now, verdict, cmds.get(turn))
        again = next_action(spec, persisted, now, verdict, cmds.get(turn))
        assert t.action == again.action == expected  # the redo is the same action
        st, verdict = t.state, None
        if isinstance(t.action, Analyse):
            verdict = verdicts[min(i, len(verdicts) - 1)]
            i += 1
        if isinstance(t.action, PreTraffic):
            verdict = PASS
        now = max(now + 0.001, t.action.until) if isinstance(t.action, Wait) else now + 0.5
    assert st.to_dict() == ref.to_dict()


def test_a_lost_verdict_is_asked_for_again():
    """Killed after analysing but before the verdict was written: the machine analyses
    again after the interval instead of advancing."""
    spec = canary()
    st, now = RolloutState(), 0.0
    while True:
        t = next_action(spec, st, now)
        st = t.state
        if isinstance(t.action, Analyse):
            break
        now = t.action.until if isinstance(t.action, Wait) else now + 0.5
    # the verdict is lost; time passes beyond the pause
    later = next_action(spec, st, now + 100)
    assert isinstance(later.action, Analyse) and later.state.step == 0


def test_spec_validation_names_the_problem():
    with pytest.raises(InvalidInput, match="strategy"):
        canary(strategy="linear")
    with pytest.raises(InvalidInput, match="idle slot"):
        canary(canary_slot="blue")
    with pytest.raises(InvalidInput, match="step 2: weight"):
        canary(steps=(sm.Step(10, 1), sm.Step(120, 1)))
    with pytest.raises(InvalidInput, match="must increase"):
        sm.canary_steps([50, 25], 1)
    with pytest.raises(InvalidInput, match="verdict must be"):
        st = RolloutState(phase=sm.PROGRESSING, step_started_at=0.0)
        next_action(canary(), st, 1.0, {"verdict": "maybe"})
    with pytest.raises(InvalidInput, match="pre_traffic must not be negative"):
        canary(pre_traffic=-1)
    with pytest.raises(InvalidInput, match="command must be"):
        next_action(canary(), RolloutState(), 0.0, command="pause")


def test_spec_round_trips_through_json():
    spec = blue_green(analysis=({"name": "x", "kind": "success_rate", "threshold": 0.9},))
    assert RolloutSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec


def test_check_failures_counts_measured_failures_per_step():
    st = RolloutState(analyses=[
        {"step": 0, "checks": [{"name": "latency", "measured": "fail"}]},
        {"step": 0, "checks": [{"name": "latency", "measured": "fail"},
                               {"name": "success", "measured": "pass"}]},
        {"step": 1, "checks": [{"name": "latency", "measured": "fail"}]}])
    assert sm.check_failures(st, 0) == {"latency": 2}
    assert sm.check_failures(st, 1) == {"latency": 1}


def test_status_shows_the_pre_traffic_check_as_its_own_row_with_its_verdict():
    from skserve.rollout import status

    spec = canary(pre_traffic=40)
    _, st = drive(spec, [PASS], pre_traffic=FAIL)
    doc = {"release": "demo", "spec": spec.to_dict(), "state": st.to_dict(), "events": []}
    rows = [line.split() for line in status.plain(doc).splitlines() if line.startswith("   ")]
    assert rows[0] == ["0", "pre-traffic", "(0%)", "40", "requests", "[fail]"]
    assert rows[1] == ["1", "10%", "30s", "not", "reached"]
    # without the check: no such row
    doc["spec"] = canary().to_dict()
    assert "pre-traffic (0%)" not in status.plain(doc)


def test_a_controller_that_finds_the_rollout_over_ends_without_an_event(tmp_path):
    """A standby that saw the rollout running takes the lease after the acting controller
    ended it: it must not log the ending again (it wrote a second "Failed" event). The
    router, slots and Prometheus are None: the controller must not touch them."""
    from skserve.rollout.controller import Controller
    from skserve.rollout.store import LocalStore

    store = LocalStore(tmp_path)
    spec = canary()
    ended = RolloutState(phase=sm.FAILED, message="analysis failed at step 1")
    store.write("demo", {"spec": spec.to_dict(), "state": ended.to_dict(), "command": None},
                None)
    final = Controller("demo", store, router=None, slots=None, metrics=None).run()
    assert final.phase == sm.FAILED
    assert store.events("demo") == []
    assert store.lease_holder("demo") is None  # released on the way out
