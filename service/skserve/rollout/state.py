"""The canary / blue-green state machine: pure, no I/O, no clock of its own.

`next_action(spec, state, now, verdict, command)` returns a `Transition`: the one action the
controller must carry out now and the state to persist once it has. Every action is
idempotent (set these weights, deploy this version in this slot, scale that slot down), so a
controller killed between doing an action and writing the state simply does it again when
it restarts from the last persisted state. Times are seconds since the epoch (floats).

Canary: deploy the new version in the idle slot, run the pre-traffic check (`pre_traffic`
smoke requests straight to the new slot, before any user request reaches it: one failure
rolls back), then for each step set its weight, wait its
pause while analysis runs every `interval_s` (a failed run rolls back at once; the step
advances only when a run at or after the end of its pause passed), then promote (new slot 100 %),
keep the old slot running `keep_old_s` for an instant undo, scale it down. Blue-green is the
same machine with one preview step at weight 0 whose analysis first sends smoke requests to
the preview, and a switch as promotion. The pre-traffic check runs before either: a version
that fails on valid rows is rolled back before any user sees it (Argo Rollouts'
prePromotionAnalysis and Flagger's pre-rollout checks are this step).

Inconclusive (too little traffic) is never a pass: once a step's pause is over, more than
`max_inconclusive` inconclusive runs in a row roll back (fail safe).
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInput

CANARY, BLUE_GREEN = "canary", "blueGreen"
STRATEGIES = (CANARY, BLUE_GREEN)

# Phases. Active: PENDING, PROGRESSING, PROMOTED, ENDING; terminal: the rest.
PENDING = "Pending"          # nothing done yet
PROGRESSING = "Progressing"  # stepping through weights (canary) or previewing (blue-green)
PROMOTED = "Promoted"        # new slot takes all traffic; old slot kept for an instant undo
ENDING = "Ending"            # carrying out `todo` (rollback or clean-up), then `ending`
SUCCEEDED = "Succeeded"      # promoted and the old slot scaled down
FAILED = "Failed"            # analysis failed (or stayed inconclusive): rolled back
ABORTED = "Aborted"          # an operator aborted: rolled back, counts as a failure
UNDONE = "Undone"            # an operator undid it: the previous version serves again
TERMINAL = (SUCCEEDED, FAILED, ABORTED, UNDONE)
FAILURES = (FAILED, ABORTED)

PASS, FAIL, INCONCLUSIVE = "pass", "fail", "inconclusive"
COMMANDS = ("promote", "abort", "undo")


@dataclass(frozen=True)
class Step:
    """One canary step: `weight` percent to the new slot for at least `pause_s` seconds.

    `analysis`: run the analysis during the step (the step advances only on a pass);
    `smoke`: requests the analysis first sends straight to the new slot (blue-green preview).
    """

    weight: int
    pause_s: float
    analysis: bool = True
    smoke: int = 0


@dataclass(frozen=True)
class RolloutSpec:
    """What a rollout does: from `stable_version` in `stable_slot` to `canary_version` in
    `canary_slot`, through `steps`, then promotion and `keep_old_s` of instant undo.

    `interval_s`: seconds between analysis runs; `max_inconclusive`: inconclusive runs after
    a step's pause tolerated before rolling back; `analysis`: the analysis templates as
    plain data (see analysis.py), opaque here; `pre_traffic`: smoke requests sent straight
    to the new slot once it is deployed, before its first step (any failed one, or none
    sent, rolls back; 0: no pre-traffic check).
    """

    release: str
    strategy: str
    stable_slot: str
    stable_version: str
    canary_slot: str
    canary_version: str
    steps: tuple[Step, ...]
    interval_s: float = 10.0
    max_inconclusive: int = 3
    keep_old_s: float = 300.0
    analysis: tuple[dict[str, Any], ...] = ()
    pre_traffic: int = 0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidInput(f"strategy must be one of {STRATEGIES}, not {self.strategy!r}")
        if self.stable_slot == self.canary_slot:
            raise InvalidInput(f"the new version needs the idle slot, not the live one "
                               f"({self.stable_slot!r})")
        if not self.steps:
            raise InvalidInput("a rollout needs at least one step")
        for i, step in enumerate(self.steps):
            if not 0 <= step.weight < 100:
                raise InvalidInput(f"step {i + 1}: weight must be 0..99 (100 is the promotion),"
                                   f" not {step.weight}")
            if step.pause_s < 0 or step.smoke < 0:
                raise InvalidInput(f"step {i + 1}: pause and smoke must not be negative")
        if self.interval_s <= 0:
            raise InvalidInput("the analysis interval must be positive")
        if self.max_inconclusive < 0 or self.keep_old_s < 0 or self.pre_traffic < 0:
            raise InvalidInput("max_inconclusive, keep_old_s and pre_traffic must not be "
                               "negative")

    def weights(self, canary_weight: int) -> dict[str, int]:
        return {self.stable_slot: 100 - canary_weight, self.canary_slot: canary_weight}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RolloutSpec:
        doc = dict(doc)
        doc["steps"] = tuple(Step(**s) for s in doc["steps"])
        doc["analysis"] = tuple(doc.get("analysis") or ())
        return cls(**doc)


def canary_steps(weights: list[int], pause_s: float, analysis: bool = True) -> tuple[Step, ...]:
    """Steps from a weight list such as [10, 25, 50, 100]; a final 100 is the promotion."""
    if weights and weights[-1] == 100:
        weights = weights[:-1]
    if any(b <= a for a, b in itertools.pairwise(weights)):
        raise InvalidInput(f"canary weights must increase: {weights}")
    return tuple(Step(w, pause_s, analysis) for w in weights)


def blue_green_steps(preview_s: float, smoke: int, analysis: bool = True) -> tuple[Step, ...]:
    """The blue-green preview: weight 0, `smoke` requests to the preview per analysis run."""
    return (Step(0, preview_s, analysis, smoke),)


@dataclass
class RolloutState:
    """What the controller persists between actions (JSON-ready)."""

    phase: str = PENDING
    step: int = 0
    step_started_at: float | None = None  # when the current step's weights were set
    last_analysis_at: float | None = None
    step_passed: bool = False             # the latest run in this step passed
    pre_traffic: str = ""                 # the pre-traffic check: "", "running" or "pass"
    inconclusive: int = 0                 # inconclusive runs in a row after the pause
    weights: dict[str, int] = field(default_factory=dict)  # what the router was last told
    analyses: list[dict[str, Any]] = field(default_factory=list)  # every run, with numbers
    todo: list[dict[str, Any]] = field(default_factory=list)      # remaining ending actions
    ending: str | None = None             # the phase once `todo` is done
    started_at: float | None = None
    promoted_at: float | None = None
    finished_at: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RolloutState:
        return cls(**copy.deepcopy(doc))

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL

    @property
    def failed(self) -> bool:
        return self.phase in FAILURES


# --- actions: what the controller does; each idempotent -------------------------------------

@dataclass(frozen=True)
class Deploy:
    """Run `version` in `slot` and wait until it is ready (at weight 0)."""

    slot: str
    version: str
    kind: str = "deploy"


@dataclass(frozen=True)
class SetWeights:
    """Tell the router to split traffic so (percent per slot, summing to 100)."""

    weights: dict[str, int]
    kind: str = "set_weights"


@dataclass(frozen=True)
class Wait:
    """Nothing to do before `until`."""

    until: float
    kind: str = "wait"


@dataclass(frozen=True)
class Analyse:
    """Judge the canary against the stable slot over [since, now] (first sending `smoke`
    requests straight to the canary); feed the result back as `verdict`."""

    step: int
    since: float
    smoke: int = 0
    kind: str = "analyse"


@dataclass(frozen=True)
class PreTraffic:
    """Send `requests` smoke requests to `slot` alone (no user traffic reaches it yet) and
    feed the result back as `verdict`."""

    slot: str
    requests: int
    kind: str = "pre_traffic"


@dataclass(frozen=True)
class ScaleDown:
    """Stop serving from `slot` (it is at weight 0 by now)."""

    slot: str
    kind: str = "scale_down"


@dataclass(frozen=True)
class Finalize:
    """Leave the router in its resting state with all traffic on `active`."""

    active: str
    kind: str = "finalize"


@dataclass(frozen=True)
class Done:
    """The rollout is over in `phase`; nothing more to do."""

    phase: str
    kind: str = "done"


Action = Deploy | SetWeights | Wait | Analyse | PreTraffic | ScaleDown | Finalize | Done
_ACTIONS = {c.kind: c for c in (Deploy, SetWeights, Wait, Analyse, PreTraffic, ScaleDown,
                                Finalize, Done)}


def action_to_dict(action: Action) -> dict[str, Any]:
    return asdict(action)


def action_from_dict(doc: dict[str, Any]) -> Action:
    fields = {k: v for k, v in doc.items() if k != "kind"}
    return _ACTIONS[doc["kind"]](**fields)


@dataclass(frozen=True)
class Transition:
    """The action to carry out now, the state to persist after it, and an event for it
    (`reason` CamelCase as Kubernetes Events have; `warning` for failures)."""

    action: Action
    state: RolloutState
    reason: str
    message: str
    warning: bool = False


# --- the machine -----------------------------------------------------------------------------

def next_action(spec: RolloutSpec, state: RolloutState, now: float,
                verdict: dict[str, Any] | None = None,
                command: str | None = None) -> Transition:
    """The next action from the persisted `state`.

    `verdict`: the result of the `Analyse` (or `PreTraffic`) the previous transition asked for:
    {"verdict": pass|fail|inconclusive, "checks": [...numbers...], "summary": str,
    "pending_failure": bool (inconclusive only because a failure awaits confirmation: not
    counted as too little traffic)}.
    `command`: an operator's promote | abort | undo, applied before anything else.
    Never mutates `state`.
    """
    s = RolloutState.from_dict(state.to_dict())
    if s.started_at is None:
        s.started_at = now
    if command is not None:
        return _command(spec, s, now, command)
    if verdict is not None and s.phase == PROGRESSING:
        early = _record(spec, s, now, verdict)
        if early is not None:
            return early
    if s.todo:
        return _pop_todo(s, now)
    if s.phase == PENDING:
        s.phase = PROGRESSING
        s.message = f"deploying {spec.canary_version} in slot {spec.canary_slot}"
        return Transition(Deploy(spec.canary_slot, spec.canary_version), s, "Deploying",
                          s.message)
    if s.phase == PROGRESSING:
        return _progress(spec, s, now)
    if s.phase == PROMOTED:
        until = (s.promoted_at or now) + spec.keep_old_s
        if now < until:
            return Transition(Wait(until), s, "KeepingOldSlot",
                              f"slot {spec.stable_slot} kept {spec.keep_old_s:g}s for an "
                              "instant undo")
        return _end(spec, s, now, SUCCEEDED, [ScaleDown(spec.stable_slot),
                                              Finalize(spec.canary_slot)],
                    f"promoted {spec.canary_version}; scaling down slot {spec.stable_slot}")
    return Transition(Done(s.phase), s, s.phase, s.message or s.phase, s.failed)


def _record(spec: RolloutSpec, s: RolloutState, now: float,
            verdict: dict[str, Any]) -> Transition | None:
    """Add an analysis run to the history; a fail (or too many inconclusive) rolls back."""
    if s.pre_traffic == "running":
        return _record_pre_traffic(spec, s, now, verdict)
    step = spec.steps[s.step] if s.step < len(spec.steps) else None
    pause_over = step is not None and s.step_started_at is not None and \
        now >= s.step_started_at + step.pause_s
    result = verdict.get("verdict")
    if result not in (PASS, FAIL, INCONCLUSIVE):
        raise InvalidInput(f"verdict must be pass, fail or inconclusive, not {result!r}")
    s.analyses.append({"step": s.step, "at": now, **copy.deepcopy(verdict)})  # verdict's
    # own "at" (when it was measured) wins
    summary = verdict.get("summary", "")
    if result == FAIL:
        return _rollback(spec, s, now, FAILED, f"analysis failed at step {s.step + 1}: "
                         f"{summary}")
    if result == INCONCLUSIVE:
        s.step_passed = False
        if pause_over and not verdict.get("pending_failure"):
            s.inconclusive += 1
            if s.inconclusive > spec.max_inconclusive:
                return _rollback(spec, s, now, FAILED,
                                 f"analysis inconclusive {s.inconclusive} times in a row at "
                                 f"step {s.step + 1} (too little traffic?): {summary}")
        return None
    s.step_passed, s.inconclusive = True, 0
    return None


PRE_TRAFFIC_STEP = -1  # the step number of the pre-traffic check's run in `analyses`


def _record_pre_traffic(spec: RolloutSpec, s: RolloutState, now: float,
                        verdict: dict[str, Any]) -> Transition | None:
    """The pre-traffic check's verdict: only a pass lets the first step's weights be set
    (inconclusive, e.g. no request could be sent, is never a pass)."""
    s.analyses.append({"step": PRE_TRAFFIC_STEP, "at": now, **copy.deepcopy(verdict)})
    if verdict.get("verdict") == PASS:
        s.pre_traffic = PASS
        return None
    s.pre_traffic = ""
    return _rollback(spec, s, now, FAILED, f"pre-traffic check {verdict.get('verdict')}, "
                     f"before any user traffic: {verdict.get('summary', '')}")


def _progress(spec: RolloutSpec, s: RolloutState, now: float) -> Transition:
    if spec.pre_traffic and s.pre_traffic != PASS and s.step == 0 and \
            s.step_started_at is None:
        s.pre_traffic = "running"
        s.message = (f"pre-traffic check: {spec.pre_traffic} smoke requests to slot "
                     f"{spec.canary_slot} alone")
        return Transition(PreTraffic(spec.canary_slot, spec.pre_traffic), s, "PreTraffic",
                          s.message)
    if s.step >= len(spec.steps):
        return _promote(spec, s, now, "all steps passed")
    step = spec.steps[s.step]
    if s.step_started_at is None:
        s.step_started_at, s.last_analysis_at = now, None
        s.step_passed, s.inconclusive = False, 0
        s.weights = spec.weights(step.weight)
        s.message = (f"step {s.step + 1}/{len(spec.steps)}: {step.weight}% to "
                     f"{spec.canary_version}")
        return Transition(SetWeights(s.weights), s, "StepStarted", s.message)
    pause_end = s.step_started_at + step.pause_s
    if not step.analysis:
        if now >= pause_end:
            return _advance(spec, s, now)
        return Transition(Wait(pause_end), s, "Paused", f"step {s.step + 1} paused")
    judged_whole = (s.last_analysis_at or 0.0) >= pause_end  # the latest run saw it all
    if now >= pause_end and s.step_passed and judged_whole:
        return _advance(spec, s, now)
    due = (s.last_analysis_at or s.step_started_at) + spec.interval_s
    if now >= due or (now >= pause_end and not judged_whole):
        s.last_analysis_at = now
        return Transition(Analyse(s.step, s.step_started_at, step.smoke), s, "Analysing",
                          f"step {s.step + 1}: analysing since the step started")
    until = min(due, pause_end) if pause_end > now else due
    return Transition(Wait(until), s, "Paused", f"step {s.step + 1}: analysing every "
                      f"{spec.interval_s:g}s for {step.pause_s:g}s")


def _advance(spec: RolloutSpec, s: RolloutState, now: float) -> Transition:
    s.step += 1
    s.step_started_at = None
    return _progress(spec, s, now)


def _promote(spec: RolloutSpec, s: RolloutState, now: float, why: str) -> Transition:
    s.phase, s.promoted_at = PROMOTED, now
    s.step = len(spec.steps)
    s.weights = spec.weights(100)
    s.message = f"promoted {spec.canary_version} ({why}); slot {spec.stable_slot} kept " \
                f"{spec.keep_old_s:g}s for undo"
    return Transition(SetWeights(s.weights), s, "Promoted", s.message)


def _rollback(spec: RolloutSpec, s: RolloutState, now: float, ending: str,
              why: str) -> Transition:
    return _end(spec, s, now, ending, _rollback_actions(spec), why, warning=True)


def _end(spec: RolloutSpec, s: RolloutState, now: float, ending: str, todo: list[Action],
         why: str, warning: bool = False) -> Transition:
    s.phase, s.ending, s.message = ENDING, ending, why
    s.todo = [action_to_dict(a) for a in todo]
    t = _pop_todo(s, now)
    reason = {FAILED: "RollingBack", ABORTED: "Aborting", UNDONE: "Undoing"}.get(ending,
                                                                               "Finishing")
    return Transition(t.action, t.state, reason, why, warning)


def _pop_todo(s: RolloutState, now: float) -> Transition:
    action = action_from_dict(s.todo.pop(0))
    if isinstance(action, SetWeights):
        s.weights = dict(action.weights)
    if not s.todo:
        s.phase, s.finished_at = s.ending or s.phase, now
    return Transition(action, s, _ENDING_REASONS.get(action.kind, "Ending"), describe(action),
                      s.ending in FAILURES)


_ENDING_REASONS = {"set_weights": "WeightsSet", "scale_down": "ScaledDown",
                   "finalize": "Finalized", "deploy": "Deploying"}


def describe(action: Action) -> str:
    """One line for an event: what the action does."""
    if isinstance(action, SetWeights):
        return "weights " + ", ".join(f"{s} {w}%" for s, w in action.weights.items())
    if isinstance(action, Deploy):
        return f"deploy {action.version} in slot {action.slot}"
    if isinstance(action, ScaleDown):
        return f"scale slot {action.slot} down"
    if isinstance(action, Finalize):
        return f"router at rest: all traffic to slot {action.active}"
    return action.kind


def _command(spec: RolloutSpec, s: RolloutState, now: float, command: str) -> Transition:
    if command not in COMMANDS:
        raise InvalidInput(f"command must be one of {COMMANDS}, not {command!r}")
    phase = s.phase
    if command == "promote":
        if phase in (PENDING, PROGRESSING):
            if phase == PENDING:  # deploy first, then promote straight away
                s.step = len(spec.steps)
                return next_action(spec, s, now)
            return _promote(spec, s, now, "promoted by an operator")
        if phase == PROMOTED:
            s.promoted_at = now - spec.keep_old_s
            return next_action(spec, s, now)
    elif command == "abort":
        if phase in (PENDING, PROGRESSING, PROMOTED):
            return _rollback(spec, s, now, ABORTED, f"aborted by an operator in {phase}")
    elif phase in (PENDING, PROGRESSING, PROMOTED):
        return _rollback(spec, s, now, UNDONE, f"undone by an operator in {phase}")
    elif phase == SUCCEEDED:
        todo = [Deploy(spec.stable_slot, spec.stable_version), *_rollback_actions(spec)]
        return _end(spec, s, now, UNDONE, todo,
                    f"undone by an operator: {spec.stable_version} back in slot "
                    f"{spec.stable_slot}")
    return Transition(Wait(now), s, "CommandIgnored",
                      f"{command} ignored: the rollout is {phase}", True)


def _rollback_actions(spec: RolloutSpec) -> list[Action]:
    return [SetWeights(spec.weights(0)), ScaleDown(spec.canary_slot), Finalize(spec.stable_slot)]


def check_failures(state: RolloutState, step: int) -> dict[str, int]:
    """Failed measurements per check in `step` so far (for each template's failure limit)."""
    counts: dict[str, int] = {}
    for run in state.analyses:
        if run.get("step") != step:
            continue
        for check in run.get("checks", []):
            if check.get("measured") == FAIL:
                counts[check["name"]] = counts.get(check["name"], 0) + 1
    return counts
