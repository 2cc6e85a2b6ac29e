"""The Locust side: a FastHttpUser posting sampled rows, per-version recording, SLO exit code.

Importing this module registers skserve's command-line options and event listeners with
Locust; a locustfile only needs `from skserve.loadtest.users import SkserveUser` (and the
shape). Every request's latency, as Locust measured it, goes into skserve's bounded-error
histograms (`latency.py`), which the SLO gates use instead of Locust's rounded percentiles.
In distributed mode each worker samples its own rows and ships its histograms to the
master with every stats report.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, constant, events, task
from locust.env import Environment
from locust.exception import StopUser
from locust.runners import MasterRunner, WorkerRunner

from .latency import ERROR_BOUND
from .sampling import RowPool, parse_mix, rows_from_file
from .schedules import SHAPES
from .slo import Slo, broken, evaluate
from .versions import VersionRecorder

log = logging.getLogger("skserve.loadtest")
RECORDER = VersionRecorder()
USERS: list[tuple[float, int]] = []  # (epoch s, running users) at each change
_state: dict[str, Any] = {"pool": None, "mix": {"predict": 1.0, "predict_batch": 0.0}}


@events.init_command_line_parser.add_listener
def _add_options(parser: Any) -> None:
    group = parser.add_argument_group("skserve")
    group.add_argument("--skserve-shape", choices=SHAPES, default="steady",
                       help="load shape (users = -u at the peak, duration = -t)")
    group.add_argument("--skserve-steps", type=int, default=4, help="stairs of the step shape")
    group.add_argument("--skserve-mix", default="predict=1",
                       help="endpoint weights, e.g. predict=0.8,predict_batch=0.2")
    group.add_argument("--skserve-batch-rows", type=int, default=16,
                       help="rows per /predict_batch request")
    group.add_argument("--skserve-sample-file", default="",
                       help="CSV/Parquet of rows to send instead of sampling the schema")
    group.add_argument("--skserve-seed", type=int, default=0, help="row sampling seed")
    group.add_argument("--skserve-think-ms", type=float, default=0.0,
                       help="mean wait between a user's requests (0: closed loop)")
    group.add_argument("--skserve-versions-out", default="",
                       help="write the percentiles and latency histograms (JSON) here "
                       "at the end")
    group.add_argument("--skserve-slo-p95-ms", type=float, default=None,
                       help="exit 3 if the run's p95 (skserve's histogram, not Locust's "
                       "rounded one) exceeds this")
    group.add_argument("--skserve-slo-p99-ms", type=float, default=None,
                       help="exit 3 if the run's p99 exceeds this")
    group.add_argument("--skserve-slo-max-failure-ratio", type=float, default=None,
                       help="exit 3 if failures/requests exceeds this")


def fetch_metadata(host: str, timeout: float = 10.0) -> dict[str, Any]:
    """The target's `GET /metadata` (features with dtype/min/max/categories)."""
    with urllib.request.urlopen(host.rstrip("/") + "/metadata", timeout=timeout) as resp:
        return json.loads(resp.read())


def build_pool(host: str, options: Any, worker_index: int = 0) -> RowPool:
    """Rows from `--skserve-sample-file` if given, else sampled from the target's schema.
    Each worker gets its own seed so workers do not send identical sequences."""
    seed = int(getattr(options, "skserve_seed", 0) or 0) + 7919 * worker_index
    sample_file = getattr(options, "skserve_sample_file", "") or ""
    if sample_file:
        features = None
        try:
            features = [f["name"] for f in fetch_metadata(host)["features"]]
        except OSError as exc:  # the file alone is enough; the check is a courtesy
            log.warning("could not read %s/metadata to check the sample file: %s", host, exc)
        return RowPool.from_rows(rows_from_file(Path(sample_file), features), seed)
    return RowPool.from_schema(fetch_metadata(host)["features"], seed)


@events.test_start.add_listener
def _on_test_start(environment: Environment, **_: Any) -> None:
    if not isinstance(environment.runner, WorkerRunner):
        import gevent

        gevent.spawn(_sample_users, environment)
    if isinstance(environment.runner, MasterRunner):
        return
    options = environment.parsed_options
    _state["mix"] = parse_mix(getattr(options, "skserve_mix", "predict=1") or "predict=1")
    _state["batch_rows"] = max(1, int(getattr(options, "skserve_batch_rows", 16) or 16))
    index = getattr(environment.runner, "worker_index", 0) or 0
    try:
        _state["pool"] = build_pool(environment.host or "", options, int(index))
    except (OSError, ValueError, KeyError) as exc:
        # Without rows every task would raise in a tight loop: stop the run instead.
        log.error("skserve: cannot get request rows from %s/metadata or the sample file: "
                  "%s; stopping", environment.host, exc)
        environment.process_exit_code = 2
        import gevent

        assert environment.runner is not None
        gevent.spawn_later(0.1, environment.runner.quit)


def _sample_users(environment: Environment, interval_s: float = 0.2) -> None:
    """Every change of the running user count, with its time: the report's users curve.
    (Locust's stats history samples the count once a second, up to a second late.)"""
    import gevent

    runner = environment.runner
    while runner is not None:
        count = runner.user_count
        if not USERS or USERS[-1][1] != count:
            USERS.append((time.time(), count))
        gevent.sleep(interval_s)


@events.request.add_listener
def _on_request(name: str, response_time: float, response: Any = None, exception: Any = None,
                start_time: float | None = None, **_: Any) -> None:
    version = None
    if response is not None:
        try:
            version = response.headers.get("x-model-version")
        except AttributeError:  # a connection error leaves no headers
            version = None
    RECORDER.add(version, float(response_time), exception is None,
                 start_time if start_time is not None else time.time(), name)


@events.report_to_master.add_listener
def _on_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    data["skserve_versions"] = RECORDER.drain()


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_: Any) -> None:
    RECORDER.merge(data.get("skserve_versions") or {})


def write_versions(path: Path) -> None:
    """Exact-within-a-stated-bound percentiles (overall, per version, per endpoint), how
    they were computed, and the histograms and timeline behind them, as JSON (read back by
    the harness and the report)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"method": ERROR_BOUND, "overall": RECORDER.overall_summary(),
           "summary": RECORDER.summary(), "endpoints": RECORDER.endpoint_summary(),
           "users": [*USERS, (time.time(), USERS[-1][1] if USERS else 0)],
           "payload": RECORDER.to_payload()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


def final_stats(environment: Environment) -> dict[str, Any]:
    """Locust's totals once every user has stopped: {name: requests, failures, rps, p50/
    p95/p99/avg ms}, "Aggregated" for the whole run. Locust's stats CSV is written once a
    second and can miss the last in-flight requests; this cannot. Its percentiles are
    Locust's, rounded to 2 significant digits; the gate uses `write_versions`' instead."""
    out: dict[str, Any] = {}
    entries = [*environment.stats.entries.values(), environment.stats.total]
    for entry in entries:
        name = "Aggregated" if entry is environment.stats.total else entry.name
        n = entry.num_requests
        out[name] = {"type": "" if name == "Aggregated" else entry.method, "requests": n,
                     "failures": entry.num_failures, "rps": entry.total_rps,
                     "avg_ms": entry.avg_response_time if n else None,
                     "p50_ms": entry.get_response_time_percentile(0.5) if n else None,
                     "p95_ms": entry.get_response_time_percentile(0.95) if n else None,
                     "p99_ms": entry.get_response_time_percentile(0.99) if n else None,
                     "max_ms": entry.max_response_time if n else None}
    return out


@events.init.add_listener
def _on_init(environment: Environment, **_: Any) -> None:
    _state["environment"] = environment


@events.quit.add_listener
def _on_quit(exit_code: int, **_: Any) -> None:
    """After the runner has quit (users stopped, workers' last reports in): final files."""
    environment: Environment | None = _state.get("environment")
    if environment is None or isinstance(environment.runner, WorkerRunner):
        return
    out = getattr(environment.parsed_options, "skserve_versions_out", "") or ""
    if out:
        write_versions(Path(out))
        final = Path(out).with_name("locust_final.json")
        final.write_text(json.dumps(final_stats(environment)))


@events.quitting.add_listener
def _on_quitting(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    options = environment.parsed_options
    if options is None:
        return
    slo = Slo(getattr(options, "skserve_slo_p95_ms", None),
              getattr(options, "skserve_slo_p99_ms", None),
              getattr(options, "skserve_slo_max_failure_ratio", None))
    total = environment.stats.total
    exact = RECORDER.overall_summary() or {}
    verdicts = evaluate(slo, requests=total.num_requests, failures=total.num_failures,
                        p95_ms=exact.get("p95_ms"), p99_ms=exact.get("p99_ms"))
    for verdict in broken(verdicts):
        log.error("SLO %s", verdict)
    if broken(verdicts):
        environment.process_exit_code = 3


class SkserveUser(FastHttpUser):
    """Posts sampled rows to /predict and /predict_batch in the configured mix."""

    def wait_time(self) -> float:  # type: ignore[override]
        think = getattr(self.environment.parsed_options, "skserve_think_ms", 0.0) or 0.0
        if think <= 0:
            return constant(0)(self)
        return between(0, 2 * think / 1000)(self)

    @task
    def call(self) -> None:
        pool: RowPool | None = _state["pool"]
        if pool is None:  # no rows could be had (logged at test start): stop quietly
            raise StopUser()
        if pool.rng.random() < _state["mix"]["predict"]:
            self.client.post("/predict", data=pool.body(),
                             headers={"content-type": "application/json"})
        else:
            self.client.post("/predict_batch", data=pool.batch_body(_state["batch_rows"]),
                             headers={"content-type": "application/json"})
