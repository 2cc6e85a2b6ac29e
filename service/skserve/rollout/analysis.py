"""Analysis that knows it is judging a model: templates → PromQL, results → verdicts (pure).

A template (in the spirit of Argo Rollouts' AnalysisTemplate) names what to measure, the
success threshold, how many failed measurements a step tolerates (`failure_limit`), how
often to measure (`interval_s`) and how much traffic a measurement needs (`min_samples`).
`queries()` turns it into PromQL over one window for the canary and the stable slot;
`measure()` turns the query results into pass / fail / inconclusive with the numbers behind
it. Too little traffic is inconclusive, never a pass.

Kinds, what each measures and when it fails (the threshold's unit in brackets):

- success_rate: the canary's non-5xx share of /predict and /predict_batch requests;
  fails below the threshold [a share, e.g. 0.99].
- latency_p95: the canary's p95 request latency; fails above the threshold [ms] AND above
  `vs_stable` × the stable slot's p95 (judge the model, not a busy machine). Read from
  BentoML's request-duration histogram, so known to a bucket: the verdict names the bucket
  that holds the true p95 (of the requests counted in the window) beside the interpolated
  estimate, and decides on its upper end against `vs_stable` × the lower end of the
  stable's bucket. So a canary whose p95 is over the limit never passes; one under it fails
  only when the limit falls inside its bucket (or the stable's), i.e. within one bucket
  (two for the ratio). skserve serves with buckets 2**(1/7) apart (< 10.5 %) from 3.125 ms
  to 30 s (`skserve.metrics.DURATION_BUCKETS`), with 50 ms and 100 ms on bounds.
- prediction_shift: how far the canary's median prediction moved from the stable's
  (from `skserve_prediction_value`, the quartiles shown beside it); fails above the
  threshold [target units; the CLI's default is twice the stable model's hold-out RMSE]
  plus twice the sampling error of the two medians (a canary with 100 predictions of the
  very same model lands a few tenths away: seen on the cluster).
- prediction_psi: population stability index of the canary's predictions against the
  stable's; fails above the threshold [dimensionless; 0.25 is the classic "significant"].
- class_mix (classifiers): population stability index of the canary's predicted-class shares
  against the stable's (from `skserve_predicted_class_total`), Jeffreys-smoothed like
  prediction_psi; fails above the threshold plus the sampling floor [dimensionless; 0.25].
  A classifier that answers fast with 200s but says "survived" for everyone fails here.
- out_of_range: the canary's out-of-range input values per row minus the stable's; fails
  above the threshold [values per row, e.g. 0.05].
- promql: `query` (placeholders {canary} {stable} {window}) → one number; fails when
  `success_condition` (e.g. ">= 0.99") is false.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InvalidInput
from .state import FAIL, INCONCLUSIVE, PASS

KINDS = ("success_rate", "latency_p95", "prediction_shift", "prediction_psi", "class_mix",
         "out_of_range", "promql")
# The routes that score rows, as BentoML labels them (the request path): /predict,
# /predict_batch and the Open Inference Protocol's infer (with or without a version).
# k8s/monitoring/prometheus-rules.yaml and the chart's PrometheusRule use the same regex.
ENDPOINTS = 'endpoint=~"/predict|/predict_batch|/v2/models/[^/]+(/versions/[^/]+)?/infer"'
QUANTILES = (0.25, 0.5, 0.75)
# The default p95 floor [ms] under which a canary is never failed for latency, however it
# compares with the stable: below it, a 2x ratio is noise more often than a slower model.
# 50, not 100: since /predict's lean path a 600-tree forest, 4x slower than the live model,
# answers in ~95 ms on the local stack and a 100 ms floor promoted it (BENCHMARKS.md). A
# bound of the serving buckets, so judged exactly: no p95 bucket straddles it.
LATENCY_FLOOR_MS = 50.0
DEFAULT_SELECTOR = 'slot="{slot}"'
_OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
        "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class MetricTemplate:
    """One check. `threshold`'s unit depends on `kind` (see the module table)."""

    name: str
    kind: str
    threshold: float | None = None
    vs_stable: float | None = None
    min_samples: int = 50
    failure_limit: int = 0
    interval_s: float = 10.0
    query: str = ""
    success_condition: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InvalidInput(f"analysis template {self.name!r}: kind must be one of {KINDS}, "
                               f"not {self.kind!r}")
        if self.kind == "promql":
            if not self.query:
                raise InvalidInput(f"analysis template {self.name!r}: promql needs a query")
            parse_condition(self.success_condition, self.name)
        elif self.threshold is None:
            raise InvalidInput(f"analysis template {self.name!r}: {self.kind} needs a threshold")
        if self.min_samples < 0 or self.failure_limit < 0 or self.interval_s <= 0:
            raise InvalidInput(f"analysis template {self.name!r}: min_samples and "
                               "failure_limit must be >= 0, interval_s > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> MetricTemplate:
        unknown = set(doc) - set(cls.__dataclass_fields__)
        if unknown:
            raise InvalidInput(f"analysis template {doc.get('name')!r}: unknown field(s) "
                               f"{sorted(unknown)}")
        return cls(**doc)


def default_templates(shift_threshold: float | None, interval_s: float = 10.0,
                      min_samples: int = 50, task: str = "regression") -> list[MetricTemplate]:
    """The checks every rollout runs unless told otherwise.

    A regressor's predictions are judged by their median shift and PSI, a classifier's
    (`task="classification"`) by its class mix; `shift_threshold` (regressors only) is in
    the target's units (the CLI's default is twice the stable
    model's hold-out RMSE: two sound models of the same data differ by less than their
    errors; a canary whose median moves further predicts something else).
    Distribution checks need four times `min_samples` predictions per slot (PSI over ~12
    bins of n and m predictions has a sampling floor of about 12 × (1/n + 1/m), 0.12 at
    200) and tolerate one failed measurement per step.
    """
    common = {"interval_s": interval_s, "min_samples": min_samples}
    # one failed measurement tolerated per step: sampling noise, re-measured on more data
    distribution = {"interval_s": interval_s, "min_samples": 4 * min_samples,
                    "failure_limit": 1}
    if task == "classification":
        predictions = [MetricTemplate("class-mix", "class_mix", 0.25, **distribution)]
    elif shift_threshold is None:
        raise InvalidInput("a regressor's prediction-shift check needs a threshold in the "
                           "target's units")
    else:
        predictions = [MetricTemplate("prediction-shift", "prediction_shift", shift_threshold,
                                      **distribution),
                       MetricTemplate("prediction-psi", "prediction_psi", 0.25, **distribution)]
    return [
        MetricTemplate("success-rate", "success_rate", 0.99, **common),
        # one slow measurement is tolerated per step: a busy machine is not a slow model
        MetricTemplate("latency-p95", "latency_p95", LATENCY_FLOOR_MS, vs_stable=2.0,
                       failure_limit=1,
                       **common),
        *predictions,
        MetricTemplate("out-of-range", "out_of_range", 0.05, **distribution),
    ]


def parse_condition(text: str, name: str = "") -> tuple[str, float]:
    """'>= 0.99' → ('>=', 0.99); raises InvalidInput naming the template."""
    m = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)\s*(-?[0-9.eE+-]+)\s*", text or "")
    if not m:
        raise InvalidInput(f"analysis template {name!r}: success_condition must look like "
                           f"'>= 0.99', not {text!r}")
    return m.group(1), float(m.group(2))


def window(seconds: float, minimum_s: float) -> str:
    """A PromQL range for the last `seconds`, at least `minimum_s` (rate() and increase()
    need two scrapes in the range: use about three scrape intervals)."""
    return f"{max(math.ceil(seconds), int(minimum_s))}s"


def selector(template: str, slot: str, version: str) -> str:
    return template.format(slot=slot, version=version)


def queries(t: MetricTemplate, canary: str, stable: str, win: str) -> dict[str, str]:
    """PromQL for one template: name → query, over `win` for label matchers `canary` and
    `stable` (e.g. `slot="green"`)."""
    def requests(sel: str, extra: str = "") -> str:
        return f"sum(increase(bentoml_service_request_total{{{sel},{ENDPOINTS}{extra}}}[{win}]))"

    def buckets(sel: str, metric: str = "skserve_prediction_value_bucket") -> str:
        return f"sum by (le) (increase({metric}{{{sel}}}[{win}]))"

    def durations(sel: str) -> str:
        return buckets(f"{sel},{ENDPOINTS}", "bentoml_service_request_duration_seconds_bucket")

    def rows(sel: str) -> str:
        return f"sum(increase(skserve_predictions_total{{{sel}}}[{win}]))"

    if t.kind == "success_rate":
        return {"requests": requests(canary),
                "errors": requests(canary, ',http_response_code=~"5.."')}
    if t.kind == "latency_p95":
        return {"buckets": durations(canary), "stable_buckets": durations(stable)}
    if t.kind in ("prediction_shift", "prediction_psi"):
        return {"buckets": buckets(canary), "stable_buckets": buckets(stable)}
    if t.kind == "class_mix":
        classes = "sum by (class) (increase(skserve_predicted_class_total{{{sel}}}[{win}]))"
        return {"classes": classes.format(sel=canary, win=win),
                "stable_classes": classes.format(sel=stable, win=win)}
    if t.kind == "out_of_range":
        oor = "sum(increase(skserve_feature_out_of_range_total{{{sel}}}[{win}]))"
        return {"rows": rows(canary), "out_of_range": oor.format(sel=canary, win=win),
                "stable_rows": rows(stable),
                "stable_out_of_range": oor.format(sel=stable, win=win)}
    return {"value": t.query.format(canary=canary, stable=stable, window=win)}


@dataclass
class CheckResult:
    """One measurement: `measured` is the raw verdict, `verdict` the one after the
    template's failure limit; `value`/`threshold` in the template's unit; `numbers` the
    raw inputs (requests, quantiles, …) for the status table."""

    name: str
    kind: str
    measured: str
    verdict: str
    value: float | None
    threshold: float | None
    samples: float
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


def _num(result: Any) -> float | None:
    """A scalar query result (None, a number, or NaN) as a float or None."""
    if result is None:
        return None
    value = float(result)
    return None if math.isnan(value) else value


def measure(t: MetricTemplate, results: Mapping[str, Any]) -> CheckResult:
    """The raw verdict of one template from its query results.

    `results` maps the names `queries()` gave to: a float (None when the query returned
    nothing), for `*buckets` a list of (upper bound, cumulative count) pairs, for `*classes`
    a mapping class key → count.
    """
    fn = _MEASURES[t.kind]
    measured, value, samples, detail, numbers = fn(t, results)
    return CheckResult(t.name, t.kind, measured, measured, value, t.threshold, samples, detail,
                       numbers)


def _too_few(t: MetricTemplate, samples: float, what: str) -> tuple:
    return (INCONCLUSIVE, None, samples,
            f"{t.name}: only {samples:.0f} {what} (need {t.min_samples})", {})


def _success_rate(t: MetricTemplate, r: Mapping[str, Any]) -> tuple:
    total, errors = _num(r.get("requests")) or 0.0, _num(r.get("errors")) or 0.0
    if total < max(t.min_samples, 1):
        return _too_few(t, total, "canary requests")
    rate = max(0.0, 1.0 - errors / total)
    ok = rate >= t.threshold
    return (PASS if ok else FAIL, rate, total,
            f"{t.name}: {rate:.2%} non-5xx of {total:.0f} requests "
            f"({'>=' if ok else '<'} {t.threshold:.2%})", {"requests": total, "errors": errors})


def _latency(t: MetricTemplate, r: Mapping[str, Any]) -> tuple:
    canary, stable = _histogram(r.get("buckets")), _histogram(r.get("stable_buckets"))
    total = _total(canary)
    if total < max(t.min_samples, 1):
        return _too_few(t, total, "canary requests")
    p95 = Latency.of(canary, 0.95)
    numbers: dict[str, Any] = {"requests": total, **p95.numbers("p95")}
    # the limit from the stable's bucket: its lower end decides, its upper end says whether
    # a canary over the limit is surely over vs_stable × the stable's true p95
    limit = surely = t.threshold
    stable_text = why = ""
    if t.vs_stable is not None and _total(stable) >= max(t.min_samples, 1):
        base = Latency.of(stable, 0.95)
        numbers.update(base.numbers("stable_p95"), stable_requests=_total(stable))
        limit = max(limit, t.vs_stable * base.low)
        surely = max(surely, t.vs_stable * base.high)
        stable_text = f"; stable {base.text()}"
        why = f" ({t.vs_stable:g} × the stable's lower end)" if limit > t.threshold else ""
    numbers["limit_ms"] = limit
    if p95.high <= limit:
        measured, outcome = PASS, "under it"
    elif p95.low >= surely:
        measured, outcome = FAIL, "over it"
    else:  # the true p95 may be either side of the true limit: never pass what may be over
        measured, outcome = FAIL, "within a bucket of it, failed as it may be over"
    return (measured, p95.decided, total, f"{t.name}: p95 {p95.text()}{stable_text}; limit "
            f"{_ms(limit)} ms{why}: {outcome}", numbers)


def _shift(t: MetricTemplate, r: Mapping[str, Any]) -> tuple:
    canary, stable = _histogram(r.get("buckets")), _histogram(r.get("stable_buckets"))
    n_canary, n_stable = _total(canary), _total(stable)
    samples = min(n_canary, n_stable)
    if samples < max(t.min_samples, 1):
        return _too_few(t, samples, f"predictions per slot (canary {n_canary:.0f}, "
                        f"stable {n_stable:.0f})")
    if t.kind == "prediction_psi":
        value, bins = psi(stable, canary)
        # two samples of one distribution still differ: PSI's expected value for n and m
        # draws over k bins is about (k − 1)(1/n + 1/m); the limit sits that far higher
        floor = (bins - 1) * (1 / n_canary + 1 / n_stable)
        limit = t.threshold + floor
        ok = value <= limit
        return (PASS if ok else FAIL, value, samples,
                f"{t.name}: PSI {value:.3f} ({'<=' if ok else '>'} {t.threshold:g} + sampling "
                f"floor {floor:.3f}) over {n_canary:.0f}/{n_stable:.0f} predictions",
                {"psi": value, "sampling_floor": floor, "bins": bins})
    qc = [quantile(canary, q) for q in QUANTILES]
    qs = [quantile(stable, q) for q in QUANTILES]
    median = QUANTILES.index(0.5)
    value = qc[median] - qs[median]
    # two samples of one model's predictions have different medians too: the limit sits
    # twice the standard error of their difference higher (a median's standard error is
    # about 0.93 x IQR / sqrt(n) for a roughly normal spread)
    floor = 2 * math.hypot(_median_se(qc, n_canary), _median_se(qs, n_stable))
    limit = t.threshold + floor
    ok = abs(value) <= limit
    return (PASS if ok else FAIL, value, samples,
            f"{t.name}: median {qs[median]:.3g} → {qc[median]:.3g} ({value:+.3g}; limit "
            f"±{t.threshold:.3g} + sampling {floor:.2g} target units; quartiles "
            f"{qs[0]:.3g}/{qs[2]:.3g} → {qc[0]:.3g}/{qc[2]:.3g})",
            {"canary_quantiles": qc, "stable_quantiles": qs, "quantiles": list(QUANTILES),
             "sampling_floor": floor})


def _median_se(quartiles: Sequence[float], n: float) -> float:
    """Standard error of a median of `n` draws from a distribution with these quartiles."""
    iqr = quartiles[-1] - quartiles[0]
    if n <= 0 or math.isnan(iqr):
        return 0.0
    return 0.9289 * max(iqr, 0.0) / math.sqrt(n)


def _class_mix(t: MetricTemplate, r: Mapping[str, Any]) -> tuple:
    canary = {str(k): max(0.0, float(v)) for k, v in (r.get("classes") or {}).items()}
    stable = {str(k): max(0.0, float(v)) for k, v in (r.get("stable_classes") or {}).items()}
    n_canary, n_stable = sum(canary.values()), sum(stable.values())
    samples = min(n_canary, n_stable)
    if samples < max(t.min_samples, 1):
        return _too_few(t, samples, f"predictions per slot (canary {n_canary:.0f}, "
                        f"stable {n_stable:.0f})")
    classes = sorted(set(canary) | set(stable))
    value = psi_counts([stable.get(c, 0.0) for c in classes],
                       [canary.get(c, 0.0) for c in classes])
    floor = (len(classes) - 1) * (1 / n_canary + 1 / n_stable)
    limit = t.threshold + floor
    ok = value <= limit
    shares = {c: (stable.get(c, 0.0) / n_stable, canary.get(c, 0.0) / n_canary)
              for c in classes}
    mix = ", ".join(f"{c} {s:.0%} → {a:.0%}" for c, (s, a) in shares.items())
    return (PASS if ok else FAIL, value, samples,
            f"{t.name}: PSI {value:.3f} over classes ({'<=' if ok else '>'} {t.threshold:g} + "
            f"sampling floor {floor:.3f}; {mix})",
            {"psi": value, "sampling_floor": floor,
             "stable_shares": {c: s for c, (s, _) in shares.items()},
             "canary_shares": {c: a for c, (_, a) in shares.items()}})


def _out_of_range(t: MetricTemplate, r: Mapping[str, Any]) -> tuple:
    rows = _num(r.get("rows")) or 0.0
    if rows < max(t.min_samples, 1):
        return _too_few(t, rows, "canary rows")
    rate = (_num(r.get("out_of_range")) or 0.0) / rows
    stable_rows = _num(r.get("stable_rows")) or 0.0
    stable = ((_num(r.get("stable_out_of_range")) or 0.0) / stable_rows
              if stable_rows >= t.min_samples else 0.0)
    value = rate - stable
    ok = value <= t.threshold
    return (PASS if ok else FAIL, value, rows,
            f"{t.name}: {rate:.3f} out-of-range values per row (stable {stable:.3f}; "
            f"excess limit {t.threshold:g})", {"canary_rate": rate, "stable_rate": stable})


def _promql(t: MetricTemplate, r: Mapping[str, Any]) -> tuple:
    value = _num(r.get("value"))
    if value is None:
        return (INCONCLUSIVE, None, 0.0, f"{t.name}: the query returned no data", {})
    op, bound = parse_condition(t.success_condition, t.name)
    ok = _OPS[op](value, bound)
    return (PASS if ok else FAIL, value, 1.0,
            f"{t.name}: {value:.4g} {'meets' if ok else 'breaks'} '{op} {bound:g}'", {})


_MEASURES = {"success_rate": _success_rate, "latency_p95": _latency,
             "prediction_shift": _shift, "prediction_psi": _shift, "class_mix": _class_mix,
             "out_of_range": _out_of_range, "promql": _promql}


# --- histograms (cumulative Prometheus buckets) ---------------------------------------------

Histogram = list[tuple[float, float]]


def _histogram(raw: Any) -> Histogram:
    """Sorted (upper bound, cumulative count) pairs; +Inf last; [] when nothing came back."""
    if not raw:
        return []
    pairs = sorted((float(le), float(count)) for le, count in raw)
    # increase() extrapolates each bucket on its own: keep the counts cumulative.
    out, running = [], 0.0
    for le, count in pairs:
        running = max(running, count)
        out.append((le, running))
    return out


def _total(h: Histogram) -> float:
    return h[-1][1] if h else 0.0


def _cdf(h: Histogram, x: float) -> float:
    """Share of observations <= x, linear inside each bucket; the first bucket's mass sits at
    its upper bound and the +Inf bucket's just above the last finite bound."""
    total = _total(h)
    if total <= 0:
        return 0.0
    prev_le, prev_count = None, 0.0
    for le, count in h:
        if x < le:
            if prev_le is None or math.isinf(le):
                return prev_count / total
            return (prev_count + (count - prev_count) * (x - prev_le) / (le - prev_le)) / total
        prev_le, prev_count = le, count
    return 1.0


def quantile(h: Histogram, q: float) -> float:
    """The q-quantile, interpolated like PromQL's histogram_quantile."""
    total = _total(h)
    if total <= 0:
        return math.nan
    rank = q * total
    prev_le, prev_count = None, 0.0
    for le, count in h:
        if count >= rank:
            if math.isinf(le):
                return prev_le if prev_le is not None else math.nan
            if prev_le is None or count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return prev_le if prev_le is not None else math.nan


def quantile_bucket(h: Histogram, q: float) -> tuple[float, float]:
    """(lower, upper) bound of the bucket holding the q-quantile: the true quantile of the
    counted observations is above the lower and at most the upper (0 below the first bound,
    inf above the last finite one); (nan, nan) for an empty histogram."""
    rank, prev_le = q * _total(h), 0.0
    for le, count in h:
        if count >= rank and count > 0:
            return prev_le, le
        prev_le = le
    return math.nan, math.nan


@dataclass(frozen=True)
class Latency:
    """A latency quantile read from request-duration buckets, in ms: `estimate`
    (interpolated) and the bucket that holds the true one, `low` < true ≤ `high`."""

    estimate: float
    low: float
    high: float

    @classmethod
    def of(cls, h: Histogram, q: float) -> Latency:
        """From buckets in seconds."""
        def ms(seconds: float) -> float:  # 0.06095 s is 60.95 ms, not 60.949999999999996
            return float(f"{seconds * 1000:.12g}")

        low, high = quantile_bucket(h, q)
        return cls(ms(quantile(h, q)), ms(low), ms(high))

    @property
    def decided(self) -> float:
        """What a gate compares with its limit: the upper end (the lower when unbounded)."""
        return self.high if math.isfinite(self.high) else self.low

    def numbers(self, name: str) -> dict[str, float | None]:
        """`name`_ms (the estimate), `name`_low_ms, `name`_high_ms (None when unbounded,
        which JSON cannot say)."""
        return {f"{name}_ms": self.estimate, f"{name}_low_ms": self.low,
                f"{name}_high_ms": self.high if math.isfinite(self.high) else None}

    def text(self) -> str:
        """e.g. '297.2–328.1 ms (≈306)', '≤ 3.125 ms (≈3.125)', '> 30000 ms'."""
        if math.isinf(self.high):
            return f"> {_ms(self.low)} ms"
        span = f"≤ {_ms(self.high)}" if self.low <= 0 else f"{_ms(self.low)}–{_ms(self.high)}"
        return f"{span} ms (≈{_ms(self.estimate)})"


def _ms(x: float) -> str:
    """4 significant digits, as the bucket bounds have (297.2, 1077, 3.125)."""
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.4g}"


def psi(expected: Histogram, actual: Histogram) -> tuple[float, int]:
    """Population stability index of `actual` against `expected` on the union of both
    histograms' bucket bounds (the two slots' models may bucket differently), within the
    range both resolve: below (above) it, each tail is one bin.

    `psi_counts` over those bins; returns (PSI, number of bins).
    """
    finite = [[le for le, _ in h if not math.isinf(le)] for h in (expected, actual)]
    bounds = sorted({le for f in finite for le in f})
    if all(finite):
        lo, hi = max(f[0] for f in finite), min(f[-1] for f in finite)
        if lo < hi:
            bounds = [b for b in bounds if lo <= b <= hi]
    edges = [*bounds, math.inf]
    k = len(edges)

    def counts(h: Histogram) -> list[float]:
        n = _total(h)
        cdf = [_cdf(h, edge) if not math.isinf(edge) else 1.0 for edge in edges]
        return [n * (c - p) for c, p in zip(cdf, [0.0, *cdf[:-1]], strict=True)]

    return psi_counts(counts(expected), counts(actual)), k


def psi_counts(expected: Sequence[float], actual: Sequence[float]) -> float:
    """Population stability index Σ (a − e) · ln(a / e) of two count vectors over the same
    bins, with half a count added to every bin of each side (Jeffreys) so an empty bin of
    a small sample is not read as a huge shift."""
    k = len(expected)

    def shares(counts: Sequence[float]) -> list[float]:
        n = sum(counts)
        return [(c + 0.5) / (n + 0.5 * k) for c in counts]

    return sum((a - e) * math.log(a / e)
               for e, a in zip(shares(expected), shares(actual), strict=True))


# --- one analysis run -------------------------------------------------------------------------

def due(templates: Sequence[MetricTemplate], history: Sequence[Mapping[str, Any]],
        now: float) -> tuple[list[MetricTemplate], list[dict[str, Any]]]:
    """Templates to measure now, and the latest results of the others (measured within
    their interval earlier in this step). `history`: this step's runs, oldest first."""
    latest: dict[str, tuple[float, dict[str, Any]]] = {}
    for run in history:
        for check in run.get("checks", []):
            if not check.get("reused"):
                latest[check["name"]] = (run["at"], check)
    measure_now, reuse = [], []
    for t in templates:
        seen = latest.get(t.name)
        if seen is not None and now - seen[0] < t.interval_s * 0.95:
            reuse.append({**seen[1], "reused": True})
        else:
            measure_now.append(t)
    return measure_now, reuse


def smoke_check(sent: int, failed: int, example: str = "", name: str = "smoke") -> CheckResult:
    """Smoke requests sent straight to the new slot: any failure fails; none sent is
    inconclusive. `name`: "smoke" (a blue-green preview's runs) or "pre-traffic"."""
    if sent <= 0:
        return CheckResult(name, "smoke", INCONCLUSIVE, INCONCLUSIVE, None, 0.0, 0.0,
                           f"{name}: no request was sent")
    verdict = FAIL if failed else PASS
    detail = f"{name}: {failed} of {sent} requests failed" + \
        (f" ({example})" if example else "")
    return CheckResult(name, "smoke", verdict, verdict, float(failed), 0.0, float(sent),
                       detail, {"sent": sent, "failed": failed})


def judge(measured: Sequence[CheckResult], reused: Sequence[Mapping[str, Any]],
          failure_limits: Mapping[str, int],
          failures_so_far: Mapping[str, int]) -> dict[str, Any]:
    """The run's verdict: fail if any check failed more often than its failure limit in this
    step, else inconclusive if any is inconclusive (or failed within its limit), else pass.

    `measured`: checks measured now; `reused`: the latest results of checks not due yet.
    Returns {"verdict", "summary", "checks": [CheckResult as dicts], "pending_failure"}
    (what state.py records); `pending_failure`: inconclusive only because a failure is
    within its limit.
    """
    checks: list[dict[str, Any]] = []
    for c in measured:
        limit, so_far = failure_limits.get(c.name, 0), failures_so_far.get(c.name, 0)
        if c.measured == FAIL and so_far + 1 <= limit:
            c.verdict = INCONCLUSIVE
            c.detail += f" (failure {so_far + 1} of {limit} tolerated)"
        checks.append(asdict(c))
    checks += [dict(r) for r in reused]
    verdicts = {c["verdict"] for c in checks}
    verdict = FAIL if FAIL in verdicts else INCONCLUSIVE if INCONCLUSIVE in verdicts else PASS
    if not checks:
        verdict = INCONCLUSIVE
    shown = [c["detail"] for c in checks if c["verdict"] == verdict] or \
        [c["detail"] for c in checks]
    # a failure within its limit waits for confirmation: not "too little traffic"
    pending = verdict == INCONCLUSIVE and any(c["measured"] == FAIL for c in checks)
    return {"verdict": verdict, "summary": "; ".join(shown), "checks": checks,
            "pending_failure": pending}
