"""Analysis verdicts (pure): every kind passes, fails and is inconclusive on the numbers
it should; the histogram maths agrees with known distributions."""

from __future__ import annotations

import math
import random
import re

import pytest

from skserve.errors import InvalidInput
from skserve.metrics import DURATION_BUCKETS, DURATION_ERROR
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

# BentoML's default request-duration buckets, what skserve served with before its own
OLD_DURATION_BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
                       180]


def spread_ms(low, high, n=1000):
    """`n` latencies evenly from `low` to `high` ms: a server answering in that range."""
    return [low + (high - low) * i / (n - 1) for i in range(n)]


def exact_p95(values):
    """The nearest-rank p95: the smallest value with at least 95 % at or below it."""
    return sorted(values)[math.ceil(0.95 * len(values)) - 1]


def durations(values_ms, bounds=DURATION_BUCKETS):
    """What the latency queries return for these latencies: cumulative request-duration
    buckets in seconds, as Prometheus sums them by `le`."""
    return cumulative([v / 1000 for v in values_ms], bounds)


def latency(threshold, canary_ms, stable_ms=(), bounds=DURATION_BUCKETS, **kw):
    t = tpl("latency_p95", threshold, vs_stable=kw.pop("vs_stable", 2.0), min_samples=50, **kw)
    return an.measure(t, {"buckets": durations(canary_ms, bounds),
                          "stable_buckets": durations(stable_ms, bounds) if stable_ms else []})


# (latencies, the bucket of skserve's that holds their p95 [ms], BentoML's default one and
# what histogram_quantile made of it): the cases of issue 9, item 6
CASES = [((1002, 1049), (975.2, 1077), (1000, 2500), 2425),
         ((51, 60), (55.2, 60.95), (50, 100), 97.5),
         ((260, 300), (297.2, 328.1), (250, 500), 487.5)]


@pytest.mark.parametrize("spread,bucket,old_bucket,old_estimate", CASES)
def test_latency_names_the_bucket_that_holds_the_true_p95(spread, bucket, old_bucket,
                                                          old_estimate):
    values = spread_ms(*spread)
    truth = exact_p95(values)
    r = latency(1e6, values)
    n = r.numbers
    assert (n["p95_low_ms"], n["p95_high_ms"]) == bucket
    assert n["p95_low_ms"] < truth <= n["p95_high_ms"]
    assert n["p95_high_ms"] / n["p95_low_ms"] <= 1 + DURATION_ERROR
    assert abs(n["p95_ms"] - truth) / truth < DURATION_ERROR  # the interpolated estimate
    assert r.value == n["p95_high_ms"]  # what the gate decided on
    assert f"p95 {bucket[0]:g}–{bucket[1]:g} ms (≈" in r.detail
    # BentoML's default buckets: the same maths, a bucket 2-2.5x wide around the truth
    old = latency(1e6, values, bounds=OLD_DURATION_BOUNDS).numbers
    assert (old["p95_low_ms"], old["p95_high_ms"]) == pytest.approx(old_bucket)
    assert old["p95_ms"] == pytest.approx(old_estimate)


def test_latency_verdicts_on_thresholds_between_the_old_bounds():
    """A server answering in 260-300 ms (p95 298) fails a 250 ms limit and passes 350 ms;
    one answering in 1002-1049 ms fails 1000 ms; limits inside the p95's bucket fail, as the
    p95 may be over them, and say so."""
    slow, slower, fast = spread_ms(260, 300), spread_ms(1002, 1049), spread_ms(51, 60)
    over = latency(250, slow)
    assert over.measured == "fail" and over.detail.endswith("limit 250 ms: over it")
    assert latency(350, slow).measured == "pass"
    assert latency(330, slow).measured == "pass"  # 328.1 is the bucket's upper end
    assert latency(1000, slower).measured == "fail"
    assert latency(62, fast).measured == "pass"
    inside = latency(60, fast)  # the true 59.55 is under, but the bucket reaches 60.95
    assert inside.measured == "fail"
    assert inside.detail.endswith("limit 60 ms: within a bucket of it, failed as it may be over")
    assert latency(50, fast).detail.endswith("over it")  # 50 ms is a bound: exact


def test_latency_limit_from_the_stable_slot_uses_its_bucket():
    """vs_stable: the limit is the ratio times the lower end of the stable's bucket, so a
    canary over the ratio never passes; one surely over it says so."""
    stable = spread_ms(36, 44)  # p95 43.6, in 41.02-45.29 ms
    busy = latency(50, spread_ms(60, 72), stable)  # p95 71.4, at most 74.3 < 2 x 41.02
    assert busy.measured == "pass"
    n = busy.numbers
    assert n["stable_p95_low_ms"] < exact_p95(stable) <= n["stable_p95_high_ms"]
    assert n["limit_ms"] == pytest.approx(2 * n["stable_p95_low_ms"])
    assert "stable 41.02–45.29 ms" in busy.detail
    assert "limit 82.04 ms (2 × the stable's lower end)" in busy.detail
    slow = latency(50, spread_ms(95, 110), stable)  # p95 109, at least 100 > 2 x 45.29
    assert slow.measured == "fail" and slow.detail.endswith("over it")
    near = latency(50, spread_ms(75, 85.5), stable)  # 82.03-90.57: may be under 2 x 43.6
    assert near.measured == "fail" and "within a bucket of it" in near.detail
    fast = latency(50, spread_ms(20, 30), spread_ms(5, 10))  # 3x slower, under the floor
    assert fast.measured == "pass" and fast.numbers["limit_ms"] == 50
    alone = latency(50, spread_ms(95, 110))  # no stable traffic: the absolute limit alone
    assert alone.measured == "fail" and "stable_p95_ms" not in alone.numbers


def test_latency_beyond_the_last_bucket_and_too_little_traffic():
    timeouts = latency(50, [31000.0] * 100)
    assert timeouts.measured == "fail" and "p95 > 30000 ms" in timeouts.detail
    assert timeouts.numbers["p95_high_ms"] is None and timeouts.value == 30000
    few = latency(50, spread_ms(1, 2, n=10))
    assert few.measured == "inconclusive" and "only 10" in few.detail
    assert latency(50, []).measured == "inconclusive"
    quick = latency(50, spread_ms(1, 2))
    assert quick.measured == "pass" and "p95 ≤ 3.125 ms" in quick.detail


def test_quantile_bucket_holds_the_true_quantile_of_any_sample():
    """The stated error: over skserve's range the true p95 lies in the reported bucket, at
    most DURATION_ERROR wide, and the estimate is within it."""
    rng = random.Random(5)
    for _ in range(200):
        values = [rng.lognormvariate(rng.uniform(-4, 2), rng.uniform(0.05, 1.5)) * 1000
                  for _ in range(rng.randint(50, 800))]
        truth = exact_p95(values)
        h = an._histogram(durations(values))
        low, high = (x * 1000 for x in an.quantile_bucket(h, 0.95))
        assert low < truth <= high
        if DURATION_BUCKETS[0] * 1000 <= low and high <= DURATION_BUCKETS[-1] * 1000:
            assert high / low <= 1 + DURATION_ERROR
            assert abs(an.quantile(h, 0.95) * 1000 - truth) < DURATION_ERROR * truth


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
    assert 'slot' not in latency["buckets"] and "{A," in latency["buckets"]
    assert "{B," in latency["stable_buckets"]
    assert all(q.startswith("sum by (le) (increase(bentoml_service_request_duration_seconds_"
                            "bucket{") for q in latency.values())


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
