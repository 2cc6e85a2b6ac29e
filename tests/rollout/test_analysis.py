"""Analysis verdicts (pure): every kind passes, fails and is inconclusive on the numbers
it should; the histogram maths agrees with known distributions."""

from __future__ import annotations

import math
import random
import re

import pytest

from skserve.errors import InvalidInput
from skserve.rollout import analysis as an
from skserve.rollout.analysis import MetricTemplate


def tpl(kind: str, threshold=None, **kw) -> MetricTemplate:
    return MetricTemplate(kind, kind, threshold, **kw)


def cumulative(values, bounds):
    """Prometheus-style cumulative buckets of `values` over `bounds` (+Inf added)."""
    return [(le, float(sum(v <= le for v in values))) for le in [*bounds, math.inf]]


BOUNDS = [2.0 + 0.5 * i for i in range(13)]  # 2 .. 8 GW


def demand(n, shift=0.0, seed=0, spread=1.0):
    rng = random.Random(seed)
    return [rng.gauss(5.0 + shift, spread) for _ in range(n)]


# --- success rate -------------------------------------------------------------------------

def test_success_rate_pass_fail_and_too_little_traffic():
    t = tpl("success_rate", 0.99, min_samples=50)
    ok = an.measure(t, {"requests": 400.0, "errors": 2.0})
    assert ok.measured == "pass" and ok.value == pytest.approx(0.995)
    bad = an.measure(t, {"requests": 400.0, "errors": 40.0})
    assert bad.measured == "fail" and "90.00%" in bad.detail
    few = an.measure(t, {"requests": 30.0, "errors": 0.0})
    assert few.measured == "inconclusive" and "only 30" in few.detail
    nothing = an.measure(t, {"requests": None, "errors": None})
    assert nothing.measured == "inconclusive"


# --- latency --------------------------------------------------------------------------------

def test_latency_fails_only_when_over_the_limit_and_much_slower_than_stable():
    t = tpl("latency_p95", 100.0, vs_stable=2.0, min_samples=50)
    slow = {"requests": 200.0, "p95": 0.250, "stable_requests": 900.0, "stable_p95": 0.040}
    assert an.measure(t, slow).measured == "fail"
    busy_machine = {"requests": 200.0, "p95": 0.150, "stable_requests": 900.0,
                    "stable_p95": 0.120}  # both slow: the machine, not the model
    r = an.measure(t, busy_machine)
    assert r.measured == "pass" and r.numbers["stable_p95_ms"] == pytest.approx(120)
    fast = {"requests": 200.0, "p95": 0.030, "stable_requests": 900.0, "stable_p95": 0.010}
    assert an.measure(t, fast).measured == "pass"  # 3x slower but under the 100 ms floor
    no_stable = {"requests": 200.0, "p95": 0.150, "stable_requests": 0.0, "stable_p95": None}
    assert an.measure(t, no_stable).measured == "fail"  # absolute limit alone
    assert an.measure(t, {**slow, "requests": 10.0}).measured == "inconclusive"
    assert an.measure(t, {**slow, "p95": None}).measured == "inconclusive"


# --- prediction distribution -----------------------------------------------------------------

def test_quantile_matches_the_sample_quantile():
    values = demand(5000)
    h = an._histogram(cumulative(values, BOUNDS))
    exact = sorted(values)[2500]
    assert an.quantile(h, 0.5) == pytest.approx(exact, abs=0.05)


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift():
    same, bins = an.psi(an._histogram(cumulative(demand(3000, seed=1), BOUNDS)),
                        an._histogram(cumulative(demand(3000, seed=2), BOUNDS)))
    shifted, _ = an.psi(an._histogram(cumulative(demand(3000, seed=1), BOUNDS)),
                        an._histogram(cumulative(demand(3000, 1.5, seed=2), BOUNDS)))
    assert bins == len(BOUNDS) + 1
    assert same < 0.05 and shifted > 1.0


def test_psi_compares_histograms_with_different_buckets():
    """Each model buckets its own training range: a shifted model's buckets are shifted."""
    other = [b + 1.5 for b in BOUNDS]
    same, _ = an.psi(an._histogram(cumulative(demand(3000, seed=1), BOUNDS)),
                     an._histogram(cumulative(demand(3000, seed=2), other)))
    assert same < 0.1


def test_prediction_shift_in_target_units():
    t = tpl("prediction_shift", 0.4, min_samples=100)
    stable = cumulative(demand(2000, seed=1), BOUNDS)
    good = an.measure(t, {"buckets": cumulative(demand(300, 0.1, seed=2), BOUNDS),
                          "stable_buckets": stable})
    assert good.measured == "pass" and abs(good.value) < 0.3
    bad = an.measure(t, {"buckets": cumulative(demand(300, 1.5, seed=2),
                                               [b + 1.5 for b in BOUNDS]),
                         "stable_buckets": stable})
    assert bad.measured == "fail" and bad.value == pytest.approx(1.5, abs=0.25)
    assert "target units" in bad.detail
    few = an.measure(t, {"buckets": cumulative(demand(40), BOUNDS), "stable_buckets": stable})
    assert few.measured == "inconclusive"
    assert an.measure(t, {"buckets": [], "stable_buckets": stable}).measured == "inconclusive"


def test_shift_limit_allows_for_the_sampling_error_of_small_samples():
    """100 predictions of the same model: medians a few tenths apart are noise (seen on the
    cluster, where per-pod medians of one version over 30 s spread by 0.5 GW); a real shift
    of 1 target unit still fails at that size."""
    t = tpl("prediction_shift", 0.2, min_samples=50)
    stable = cumulative(demand(3000, seed=4, spread=1.5), BOUNDS)
    same = [an.measure(t, {"buckets": cumulative(demand(100, seed=s, spread=1.5), BOUNDS),
                           "stable_buckets": stable}) for s in range(40)]
    assert all(r.measured == "pass" for r in same)
    assert max(abs(r.value) for r in same) > 0.2  # the bare threshold would have failed
    assert all(0.2 < r.numbers["sampling_floor"] < 0.6 for r in same)
    moved = [an.measure(t, {"buckets": cumulative(demand(100, 1.0, seed=s, spread=1.5),
                                                  BOUNDS), "stable_buckets": stable})
             for s in range(10)]
    assert all(r.measured == "fail" for r in moved)


def test_psi_limit_allows_for_the_sampling_floor():
    """Small samples of one distribution: raw PSI above 0.25 is noise, not drift."""
    t = tpl("prediction_psi", 0.25, min_samples=50)
    stable = cumulative(demand(150, seed=3), BOUNDS)
    noisy = [an.measure(t, {"buckets": cumulative(demand(60, seed=s), BOUNDS),
                            "stable_buckets": stable}) for s in range(20)]
    assert all(r.measured == "pass" for r in noisy)
    assert all(r.numbers["sampling_floor"] > 0.2 for r in noisy)


def test_psi_template_catches_a_flat_model_with_the_right_median():
    """Nonsense with the right median: a model that always predicts 5.0."""
    t = tpl("prediction_psi", 0.25, min_samples=100)
    flat = an.measure(t, {"buckets": cumulative([5.0] * 500, BOUNDS),
                          "stable_buckets": cumulative(demand(2000), BOUNDS)})
    assert flat.measured == "fail"
    shift = an.measure(tpl("prediction_shift", 0.4, min_samples=100),
                       {"buckets": cumulative([5.0] * 500, BOUNDS),
                        "stable_buckets": cumulative(demand(2000), BOUNDS)})
    assert shift.measured == "pass"  # why PSI is a check of its own


# --- class mix (classifiers) --------------------------------------------------------------

def sample_classes(n, shares, seed=0):
    """Counts per class of `n` draws with the given class shares."""
    rng = random.Random(seed)
    names = list(shares)
    counts = dict.fromkeys(names, 0.0)
    for c in rng.choices(names, weights=list(shares.values()), k=n):
        counts[c] += 1
    return counts


TITANIC = {"died": 0.62, "survived": 0.38}


def test_class_mix_passes_the_same_classifier_and_fails_one_that_says_survived_for_all():
    t = tpl("class_mix", 0.25, min_samples=50)
    stable = sample_classes(600, TITANIC, seed=1)
    same = [an.measure(t, {"classes": sample_classes(60, TITANIC, seed=s),
                           "stable_classes": stable}) for s in range(20)]
    assert all(r.measured == "pass" for r in same), [r.detail for r in same]
    biased = an.measure(t, {"classes": sample_classes(200, {"died": 0.05, "survived": 0.95}),
                            "stable_classes": stable})
    assert biased.measured == "fail" and biased.value > 1.0
    assert re.search(r"survived \d\d% → 9\d%", biased.detail), biased.detail  # for people
    assert biased.numbers["canary_shares"]["survived"] > 0.9


def test_class_mix_counts_a_class_only_one_side_predicts():
    """A canary that invents a class (or loses one) is compared over the union of classes;
    the empty side is smoothed, not a division by zero."""
    t = tpl("class_mix", 0.25, min_samples=50)
    stable = {"a": 300.0, "b": 300.0}
    extra = an.measure(t, {"classes": {"a": 100.0, "b": 100.0, "c": 200.0},
                           "stable_classes": stable})
    assert extra.measured == "fail" and math.isfinite(extra.value)
    assert extra.numbers["stable_shares"]["c"] == 0.0
    lost = an.measure(t, {"classes": {"a": 400.0}, "stable_classes": stable})
    assert lost.measured == "fail"


def test_class_mix_sampling_floor_and_too_little_traffic():
    t = tpl("class_mix", 0.25, min_samples=100)
    few = an.measure(t, {"classes": {"died": 40.0, "survived": 20.0},
                         "stable_classes": {"died": 600.0, "survived": 400.0}})
    assert few.measured == "inconclusive" and "canary 60" in few.detail
    nothing = an.measure(t, {"classes": {}, "stable_classes": {"died": 600.0}})
    assert nothing.measured == "inconclusive"
    three = an.measure(t, {"classes": {"x": 50.0, "y": 50.0, "z": 50.0},
                           "stable_classes": {"x": 100.0, "y": 100.0, "z": 100.0}})
    assert three.numbers["sampling_floor"] == pytest.approx(2 * (1 / 150 + 1 / 300))


def test_psi_of_counts_is_zero_for_equal_shares_and_symmetric_in_scale():
    assert an.psi_counts([10, 20, 30], [100, 200, 300]) == pytest.approx(0.0, abs=0.01)
    assert an.psi_counts([50, 50], [90, 10]) > 0.5


def test_classifiers_get_the_class_mix_check_and_regressors_need_a_shift_limit():
    names = [t.name for t in an.default_templates(None, task="classification")]
    assert "class-mix" in names and "prediction-shift" not in names
    assert "prediction-psi" not in names and "success-rate" in names
    assert "class-mix" not in [t.name for t in an.default_templates(0.5)]
    with pytest.raises(InvalidInput, match="target's units"):
        an.default_templates(None)


def test_class_mix_queries_count_predicted_classes_per_slot():
    q = an.queries(tpl("class_mix", 0.25), 'slot="green"', 'slot="blue"', "30s")
    assert q["classes"] == ('sum by (class) (increase(skserve_predicted_class_total'
                            '{slot="green"}[30s]))')
    assert 'slot="blue"' in q["stable_classes"]


def test_increase_extrapolation_that_breaks_monotonic_buckets_is_repaired():
    h = an._histogram([(1.0, 5.2), (2.0, 4.9), (math.inf, 10.0)])
    assert [c for _, c in h] == [5.2, 5.2, 10.0]


# --- out of range -----------------------------------------------------------------------------

def test_out_of_range_is_judged_against_the_stable_slot():
    t = tpl("out_of_range", 0.05, min_samples=100)
    drifted = {"rows": 500.0, "out_of_range": 100.0, "stable_rows": 2000.0,
               "stable_out_of_range": 40.0}
    r = an.measure(t, drifted)
    assert r.measured == "fail" and r.value == pytest.approx(0.18)
    same = {**drifted, "out_of_range": 12.0}
    assert an.measure(t, same).measured == "pass"
    assert an.measure(t, {**drifted, "rows": 20.0}).measured == "inconclusive"


# --- custom PromQL ---------------------------------------------------------------------------

def test_custom_promql_condition():
    t = MetricTemplate("cpu", "promql", query="sum(rate(x{{{canary}}}[{window}]))",
                       success_condition="< 0.5")
    q = an.queries(t, 'slot="green"', 'slot="blue"', "30s")
    assert q == {"value": 'sum(rate(x{slot="green"}[30s]))'}
    assert an.measure(t, {"value": 0.2}).measured == "pass"
    assert an.measure(t, {"value": 0.7}).measured == "fail"
    assert an.measure(t, {"value": None}).measured == "inconclusive"
    assert an.measure(t, {"value": float("nan")}).measured == "inconclusive"


@pytest.mark.parametrize("doc,match", [
    ({"name": "x", "kind": "magic", "threshold": 1}, "kind must be"),
    ({"name": "x", "kind": "success_rate"}, "needs a threshold"),
    ({"name": "x", "kind": "promql", "query": "up", "success_condition": "about 1"},
     "success_condition"),
    ({"name": "x", "kind": "promql"}, "needs a query"),
    ({"name": "x", "kind": "success_rate", "threshold": 1, "colour": "red"}, "unknown field"),
])
def test_bad_templates_name_what_is_wrong(doc, match):
    with pytest.raises(InvalidInput, match=match):
        MetricTemplate.from_dict(doc)


def test_queries_select_each_slot_over_one_window():
    for t in an.default_templates(0.4, 10):
        q = an.queries(t, 'slot="green"', 'slot="blue"', "42s")
        assert all("[42s]" in promql for promql in q.values())
        assert any('slot="green"' in promql for promql in q.values())
    latency = an.queries(tpl("latency_p95", 100, vs_stable=2), "A", "B", "9s")
    assert 'slot' not in latency["p95"] and "{A," in latency["p95"]
    assert "{B," in latency["stable_p95"]


# --- a run: failure limits, reuse, the verdict --------------------------------------------

def test_judge_applies_failure_limits_and_never_passes_on_inconclusive():
    def result(name, measured):
        return an.CheckResult(name, "k", measured, measured, 1.0, 1.0, 100, name)

    limits = {"latency": 1}
    first = an.judge([result("latency", "fail"), result("success", "pass")], [], limits, {})
    assert first["verdict"] == "inconclusive"  # one slow measurement tolerated
    assert "tolerated" in first["summary"] and first["pending_failure"]
    second = an.judge([result("latency", "fail")], [], limits, {"latency": 1})
    assert second["verdict"] == "fail"
    mixed = an.judge([result("a", "pass"), result("b", "inconclusive")], [], {}, {})
    assert mixed["verdict"] == "inconclusive" and not mixed["pending_failure"]
    assert an.judge([], [], {}, {})["verdict"] == "inconclusive"
    assert an.judge([result("a", "pass")], [], {}, {})["verdict"] == "pass"


def test_due_reuses_checks_measured_within_their_interval():
    fast, slow = MetricTemplate("fast", "success_rate", 0.9, interval_s=5), \
        MetricTemplate("slow", "success_rate", 0.9, interval_s=60)
    history = [{"at": 100.0, "checks": [{"name": "fast", "verdict": "pass"},
                                        {"name": "slow", "verdict": "pass"}]}]
    now_due, reused = an.due([fast, slow], history, 106.0)
    assert [t.name for t in now_due] == ["fast"]
    assert reused == [{"name": "slow", "verdict": "pass", "reused": True}]


def test_smoke_check():
    assert an.smoke_check(20, 0).verdict == "pass"
    failed = an.smoke_check(20, 3, "HTTP 500")
    assert failed.verdict == "fail" and "3 of 20" in failed.detail
    assert an.smoke_check(0, 0).verdict == "inconclusive"
    pre = an.smoke_check(50, 1, "HTTP 500", name="pre-traffic")
    assert (pre.name, pre.kind, pre.verdict) == ("pre-traffic", "smoke", "fail")
    assert pre.detail.startswith("pre-traffic: 1 of 50 requests failed")
