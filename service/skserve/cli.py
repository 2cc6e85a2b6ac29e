"""`skserve`: one command for training, serving, batch scoring and load testing.

Human summaries go to stderr; listings (`skserve models`) and `--json` output go to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from . import __version__, recycling
from .console import print_table, say, set_thread_env, stderr_console
from .errors import InvalidInput, ModelNotFound, SkserveError
from .extras import SERVE, require
from .importguard import PYARROW_ENV


def cmd_train(args: argparse.Namespace) -> int:
    require("skserve train", *SERVE)
    from . import store
    from .data import load_file, load_reference
    from .train import detect_task, model_labels, model_metadata

    if args.data is None and args.target is not None:
        raise InvalidInput("--target needs --data FILE")
    if args.data is not None and args.target is None:
        raise InvalidInput("--data needs --target COLUMN (the column to predict)")
    if args.data:
        dataset = load_file(args.data, args.target, args.time_column, args.name)
    else:
        dataset = load_reference(args.task or "regression")
        say(f"data: {dataset.name} ({dataset.source}, {len(dataset.frame)} rows; "
            "--data FILE to train on your own)")
    task, why = detect_task(dataset.frame[dataset.target])
    if args.task:
        task, why = args.task, "--task"
    say(f"task: {task} ({why})")
    name = args.name or dataset.name
    store.check_tag(name, args.version)
    if args.if_missing and store.has_model(name):
        say(f"model {name!r} is already in the store; not training (drop --if-missing to retrain)")
        return 0
    selection = _search_with_progress(dataset, task, args)
    _print_leaderboard(selection)
    metadata = model_metadata(selection, dataset, args.seed)
    labels = model_labels(dataset.name, selection.winner.model, task)
    info = store.save(name, selection.pipeline, metadata, labels, version=args.version)
    if args.leaderboard:
        args.leaderboard.parent.mkdir(parents=True, exist_ok=True)
        board = {"model": info.tag, "task": task, "ranked_by": metadata["ranked_by"],
                 "leaderboard": [e.to_dict() for e in selection.leaderboard]}
        args.leaderboard.write_text(json.dumps(board, indent=2) + "\n")
    say(f"saved {info.tag} ({selection.winner.model}, {_headline(selection.winner.metrics)})")
    if args.json:
        print(json.dumps({"model": info.tag, "task": task, "metrics": metadata["metrics"],
                          "family": selection.winner.model}))
    return 0


def _headline(metrics: dict) -> str:
    """The hold-out numbers a person looks at first."""
    if "rmse" in metrics:
        return f"hold-out RMSE {metrics['rmse']:.4f}, R² {metrics['r2']:.3f}"
    auc = metrics.get("roc_auc")
    return (f"hold-out log loss {metrics['log_loss']:.4f}, accuracy {metrics['accuracy']:.3f}"
            + ("" if auc is None else f", ROC AUC {auc:.3f}"))


def _search_with_progress(dataset, task: str, args: argparse.Namespace):
    from .train import candidates, select_model

    total = sum(1 for _ in candidates(args.seed, args.n_iter, args.wide, task)) + 1  # + refit
    with search_progress(total, sys.stderr) as step:
        return select_model(dataset, task=task, seed=args.seed, n_iter=args.n_iter,
                            wide=args.wide, holdout_weeks=args.holdout_weeks, on_step=step)


@contextmanager
def search_progress(total: int, stream: TextIO) -> Iterator[Callable[[str], None]]:
    """Yield the `on_step` callback of the model search (called as each of `total` steps
    starts). On a terminal: a rich progress bar. Anywhere else (a log, a pipe, CI): one plain
    line per step with the seconds since the search started, so a log shows it moving."""
    start = time.monotonic()
    if stream.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        with Progress(TextColumn("{task.description}"), BarColumn(),
                      TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(),
                      console=Console(file=stream), transient=True) as progress:
            task = progress.add_task("searching", total=total, completed=-1)
            yield lambda label: progress.update(task, advance=1, description=label[:70])
        return
    started = 0

    def step(label: str) -> None:
        nonlocal started
        started += 1
        print(f"search {started}/{total} at {time.monotonic() - start:.1f} s: {label}",
              file=stream, flush=True)

    yield step
    print(f"search done: {started} steps in {time.monotonic() - start:.1f} s", file=stream,
          flush=True)


def _print_leaderboard(selection) -> None:
    from rich.table import Table

    objective = selection.objective
    table = Table(title=f"leaderboard ({selection.split} hold-out: {selection.holdout_rows} "
                  f"rows; ranked by {objective.rank_label}, lower is better)")
    columns = objective.columns
    headers = ["model", *(c.header for c in columns), "fit s", "µs/row",
               f"CV {objective.rank_label}"]
    for header in headers:
        table.add_column(header, justify="left" if header == "model" else "right")
    for e in selection.leaderboard:
        cells = [_cell(e.metrics.get(c.key), c.fmt) for c in columns]
        table.add_row(e.model + (" ★" if e is selection.winner else ""), *cells,
                      f"{e.fit_s:.2f}", f"{e.predict_us_per_row:.1f}",
                      _cell(e.metrics.get(objective.cv_key), ".4f"))
    stderr_console().print(table)


def _cell(value: float | None, fmt: str) -> str:
    return "" if value is None else format(value, fmt)


def cmd_import(args: argparse.Namespace) -> int:
    require("skserve import", *SERVE)
    from . import store
    from .importer import import_model

    store.check_tag(args.name, args.version)
    imported = import_model(args.path, sample_path=args.sample, target=args.target,
                            time_column=args.time_column, task=args.task, trust=args.trust,
                            trust_pickle=args.trust_pickle, warn=say)
    meta = imported.metadata
    source = meta["source"]
    schema = meta["schema"]
    say(f"loaded {args.path} ({source['format']}, sha256 {source['sha256'][:12]}, scikit-learn "
        f"{source['sklearn_version']}): a {meta['family']}, task {meta['task']}"
        + (f", classes {meta['classes']}" if meta.get("classes") else ""))
    say(f"schema from {source['schema_from']}: {len(schema['features'])} features "
        f"({', '.join(f['name'] + ':' + f['dtype'] for f in schema['features'])})")
    closed = [f"{f['name']} ({len(f['categories'])})" for f in schema["features"]
              if f["dtype"] == "int" and f.get("categories")]
    if closed:
        say(f"  integer features taken as closed sets (any other value is refused; "
            f"docs/models.md): {', '.join(closed)}")
    for note in imported.notes:
        say(f"  {note}")
    info = store.save(args.name, imported.estimator, meta, imported.labels,
                      version=args.version)
    say(f"saved {info.tag}; serve it: skserve serve --model {info.tag}")
    if args.json:
        print(json.dumps({"model": info.tag, "task": meta["task"],
                          "classes": meta.get("classes"), "source": source}))
    return 0


def serve_env(args: argparse.Namespace) -> dict[str, str]:
    """The environment `bentoml serve` runs in: threads, telemetry, model and workers."""
    env = set_thread_env(dict(os.environ))
    env.setdefault("BENTOML_DO_NOT_TRACK", "true")
    # BentoML wipes $BENTOML_HOME/prometheus_multiproc_dir when a server starts, so two
    # servers sharing a home clobber each other's metrics: each port gets a home of its own,
    # and the models stay where they are.
    home = Path(env.get("BENTOML_HOME") or Path.home() / "bentoml")
    env.setdefault("SKSERVE_MODEL_STORE", str(home / "models"))
    env["BENTOML_HOME"] = str(home / "serve" / f"port-{args.port}")
    env["SKSERVE_MODEL"] = args.model
    env["SKSERVE_WORKERS"] = str(args.workers)
    env["SKSERVE_MAX_BATCH_ROWS"] = str(args.max_batch_rows)
    if args.max_body_bytes is not None:
        env["SKSERVE_MAX_BODY_BYTES"] = str(args.max_body_bytes)
    env[recycling.AGE_ENV] = f"{args.max_connection_age:g}"
    env[recycling.REQUESTS_ENV] = str(args.max_connection_requests)
    env["SKSERVE_ACCESS_LOG"] = "1" if args.access_log else ""
    env[PYARROW_ENV] = "1" if args.pyarrow else ""
    env["SKSERVE_LOG_FORMAT"] = args.log_format
    env["SKSERVE_LOG_LEVEL"] = args.log_level
    return env


def check_port_free(host: str, port: int) -> None:
    """Refuse a taken port in one line, before BentoML's supervisor fails on it with a
    traceback. Bound with SO_REUSEADDR as the server binds, so a socket in TIME_WAIT from
    the last run does not count; a server that takes the port in between still fails."""
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise InvalidInput(f"--host {host} --port {port}: cannot listen there "
                               f"({exc.strerror}); another server may hold it: stop it or "
                               "pick another --port") from None


def cmd_serve(args: argparse.Namespace) -> int:
    require("skserve serve", *SERVE)
    from . import logs, store
    from .edge import default_max_body_bytes
    from .schema import example_row

    if args.max_body_bytes is not None and args.max_body_bytes < 1:
        raise InvalidInput(f"--max-body-bytes {args.max_body_bytes}: must be at least 1")
    for flag, value in (("--max-connection-age", args.max_connection_age),
                        ("--max-connection-requests", args.max_connection_requests)):
        if not value >= 0:
            raise InvalidInput(f"{flag} {value}: must be 0 (unbounded) or more")
    env = serve_env(args)
    logs.resolve(env)  # a bad SKSERVE_LOG_FORMAT/LEVEL fails here, not in every worker
    os.environ.update({k: env[k] for k in ("SKSERVE_MODEL_STORE",) if k in env})
    try:
        info = store.get_info(args.model)
    except ModelNotFound as exc:
        raise ModelNotFound(f"{exc}; train one first: skserve train") from None
    env["SKSERVE_MODEL"] = info.tag
    check_port_free(args.host, args.port)
    url = f"http://{'127.0.0.1' if args.host == '0.0.0.0' else args.host}:{args.port}"
    body = args.max_body_bytes or default_max_body_bytes(info.schema, args.max_batch_rows)
    example = info.metadata.get("input_example") or example_row(info.schema)
    bounds = [f"{args.max_connection_age:g} s" if args.max_connection_age else "",
              f"{args.max_connection_requests} requests" if args.max_connection_requests else ""]
    life = " or ".join(b for b in bounds if b) or "never"
    say(f"serving {info.tag} with {args.workers} worker(s) on {url} (bodies up to {body:,} "
        f"bytes, lists up to {args.max_batch_rows} rows, connections closed after {life})\n"
        f"  try: curl -s -X POST {url}/predict -H 'content-type: application/json' "
        f"-d '{json.dumps(example)}'")
    argv = [sys.executable, "-m", "bentoml", "serve", "skserve.service:SKServe",
            "--host", args.host, "--port", str(args.port)]
    os.execvpe(argv[0], argv, env)  # bentoml gets SIGTERM directly and drains in-flight work


def cmd_models(args: argparse.Namespace) -> int:
    require("skserve models", *SERVE)
    import bentoml

    from . import store

    store.use_store_from_env()
    rows = []
    for model in bentoml.models.list():
        meta = model.info.metadata
        metrics = meta.get("metrics") or {}
        task = meta.get("task", "regression")
        main = "rmse" if task == "regression" else "log_loss"
        origin = (meta.get("source") or {}).get("format", "trained")
        rows.append({"model": str(model.tag), "task": task, "family": meta.get("family"),
                     "metric": main, "value": metrics.get(main), "origin": origin,
                     "rmse": metrics.get("rmse"), "trained_at": meta.get("trained_at"),
                     "created": meta.get("imported_at") or meta.get("trained_at")})
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        say("no models in the store; train one (skserve train) or import one (skserve import)")
        return 0
    print_table(("MODEL", "TASK", "FAMILY", "METRIC", "ORIGIN", "CREATED"),
                [(r["model"], r["task"], r["family"] or "-",
                  f"{r['metric']}={_round(r['value'])}" if r["value"] is not None else "-",
                  r["origin"], r["created"] or "-")
                 for r in sorted(rows, key=lambda r: r["model"])])
    return 0


def _round(value: float | None) -> str:
    """A metric to 4 significant digits (0.2583, 12.35, 1235): more than a hold-out score
    can tell apart, and short enough to scan down a column."""
    return "-" if value is None else f"{value:.4g}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skserve",
        description="Train, serve, batch-score and load-test scikit-learn models.")
    parser.add_argument("--version", action="version", version=f"skserve {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser(
        "train", help="train on real data and save the best model to the model store",
        description="Search several model families with cross-validation, rank them on a "
        "hold-out against naive baselines, and save the best to BentoML's model store with "
        "its feature schema and metrics. Regression: ridge, random forest, histogram "
        "gradient boosting, ranked by RMSE on a chronological hold-out. Classification: "
        "logistic regression, random forest, histogram gradient boosting (class weights "
        "searched), ranked by log loss on a stratified hold-out (chronological with "
        "--time-column). The task follows the target (text, boolean or an integer with at "
        "most 10 levels: classification) unless --task says. Without --data it trains on "
        "half-hourly electricity demand for Victoria, 2014 (fpp2/elecdemand), or with "
        "--task classification on the Titanic passengers (vcdExtra/Titanicp).")
    train.add_argument("--data", type=Path, help="a CSV or Parquet file to train on")
    train.add_argument("--target", help="the column to predict (with --data)")
    train.add_argument("--task", choices=("regression", "classification"),
                       help="what to learn (default: decided from the target column)")
    train.add_argument("--time-column", help="a timestamp column: calendar features and a "
                       "chronological split (with --data)")
    train.add_argument("--name", help="model name in the store (default: the data's name)")
    train.add_argument("--version", help="model version (default: generated by BentoML)")
    train.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
    train.add_argument("--n-iter", type=int, default=3,
                       help="parameter sets tried per family (default 3)")
    train.add_argument("--wide", action="store_true",
                       help="a wider search: more families and candidates (several minutes)")
    train.add_argument("--holdout-weeks", type=float, default=4,
                       help="weeks at the end of the data held out for ranking, with a time "
                       "column (default 4)")
    train.add_argument("--leaderboard", type=Path, default=Path("reports/leaderboard.json"),
                       help="where to write the leaderboard JSON")
    train.add_argument("--if-missing", action="store_true",
                       help="do nothing if a model of that name is already stored")
    train.add_argument("--json", action="store_true", help="print the result as JSON")
    train.set_defaults(func=cmd_train)

    imp = sub.add_parser(
        "import", help="store an existing scikit-learn model (skops, joblib, pickle, MLflow)",
        description="Store a model trained elsewhere with the metadata `skserve train` writes, "
        "so it serves, batch-scores and deploys like a trained one. PATH is a .skops file "
        "(loaded with skops' trusted-type check), a .joblib or .pkl file (only with "
        "--trust-pickle: unpickling runs code), or an MLflow model folder with the sklearn "
        "flavor (needs the 'mlflow' extra). The input schema comes from the MLflow "
        "signature, else --sample, else the model's feature_names_in_; the model must "
        "predict on the sample (or the input example, or a row built from the schema) or "
        "nothing is stored.")
    imp.add_argument("path", type=Path, help="the model file or MLflow model folder")
    imp.add_argument("--name", required=True, help="model name in the store")
    imp.add_argument("--version", help="model version (default: generated by BentoML)")
    imp.add_argument("--sample", type=Path,
                     help="a CSV or Parquet file of real input rows: types, ranges, "
                     "categories and missing values are taken from it, and the model must "
                     "predict on every row")
    imp.add_argument("--target", help="the target column's name (default: the MLflow "
                     "signature's output name, else 'prediction'); if the sample has it, "
                     "metrics are computed on the sample")
    imp.add_argument("--time-column", help="a timestamp column of the sample to parse")
    imp.add_argument("--task", choices=("regression", "classification"),
                     help="override the task scikit-learn reports (is_classifier)")
    imp.add_argument("--trust", action="append", default=[], metavar="TYPE",
                     help="a type the skops file names that skops does not trust by "
                     "default, e.g. numpy.dtype (repeatable; check each one)")
    imp.add_argument("--trust-pickle", action="store_true",
                     help="load joblib/pickle files (also inside MLflow folders): this runs "
                     "any code the file names, so only for files you trust")
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    imp.set_defaults(func=cmd_import)

    serve = sub.add_parser(
        "serve", help="serve a stored model over HTTP with BentoML",
        description="Run `bentoml serve` for one stored model version: POST /predict, "
        "POST /predict_batch, the Open Inference Protocol (V2) under /v2, GET /metadata, /livez, "
        "/readyz, /metrics, /docs.json.")
    serve.add_argument("--model", default=os.environ.get("SKSERVE_MODEL", "demand:latest"),
                       help="model tag name:version (env SKSERVE_MODEL; default demand:latest)")
    serve.add_argument("--host", default=os.environ.get("SKSERVE_HOST", "127.0.0.1"),
                       help="address to bind (env SKSERVE_HOST; default 127.0.0.1)")
    # String defaults from the environment go through `type` like typed values: a bad one
    # is a usage error naming the option, not a traceback.
    serve.add_argument("--port", type=int, default=os.environ.get("SKSERVE_PORT", "3000"),
                       help="port (env SKSERVE_PORT; default 3000)")
    serve.add_argument("--workers", type=int,
                       default=os.environ.get("SKSERVE_WORKERS", "2"),
                       help="worker processes (env SKSERVE_WORKERS; default 2)")
    serve.add_argument("--max-batch-rows", type=int,
                       default=os.environ.get("SKSERVE_MAX_BATCH_ROWS", "1000"),
                       help="largest list /predict_batch accepts (env SKSERVE_MAX_BATCH_ROWS; "
                       "default 1000)")
    serve.add_argument("--max-body-bytes", type=int,
                       default=os.environ.get("SKSERVE_MAX_BODY_BYTES") or None,
                       help="largest request body in bytes; a larger one is answered 413 "
                       "before it is read (env SKSERVE_MAX_BODY_BYTES; default: what "
                       "--max-batch-rows rows of the model's features can need, pretty-printed,"
                       " plus 64 KiB: about 310 KB for the demand model)")
    serve.add_argument("--max-connection-age", type=float, metavar="SECONDS",
                       default=os.environ.get(recycling.AGE_ENV) or
                       str(recycling.DEFAULT_MAX_AGE_S),
                       help="answer `Connection: close` once a keep-alive connection is this "
                       "old (±10 %% per connection), so clients reconnect and replicas added "
                       "behind a Service get their share of the load; 0 = never (env "
                       f"{recycling.AGE_ENV}; default {recycling.DEFAULT_MAX_AGE_S:g})")
    serve.add_argument("--max-connection-requests", type=int, metavar="N",
                       default=os.environ.get(recycling.REQUESTS_ENV) or
                       str(recycling.DEFAULT_MAX_REQUESTS),
                       help="the same after N requests on one connection; 0 = no limit (env "
                       f"{recycling.REQUESTS_ENV}; default {recycling.DEFAULT_MAX_REQUESTS})")
    serve.add_argument("--access-log", action="store_true",
                       help="log every request (costs about 1.5 ms CPU per request)")
    serve.add_argument("--pyarrow", action="store_true",
                       default=os.environ.get(PYARROW_ENV) == "1",
                       help="let pandas import pyarrow in the workers, for a model whose "
                       "pickle needs it (default: kept out, which saves each worker about 60 "
                       f"MB; batch scoring is not affected; env {PYARROW_ENV}=1)")
    serve.add_argument("--log-format", choices=("auto", "json", "text"),
                       default=os.environ.get("SKSERVE_LOG_FORMAT", "auto"),
                       help="json: one JSON object per line (for log pipelines); text: "
                       "readable; auto: text on a terminal, json otherwise (env "
                       "SKSERVE_LOG_FORMAT; default auto)")
    serve.add_argument("--log-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"),
                       type=str.upper, default=os.environ.get("SKSERVE_LOG_LEVEL", "INFO"),
                       help="level of skserve's and BentoML's logs; a client error (4xx) is "
                       "one INFO line (env SKSERVE_LOG_LEVEL; default INFO)")
    serve.set_defaults(func=cmd_serve)

    models = sub.add_parser("models", help="list the models in the store with their task, "
                            "family, main hold-out metric and origin",
                            description="The models in the local store ($SKSERVE_MODEL_STORE, "
                            "else $BENTOML_HOME/models): what `skserve serve`, `batch run` "
                            "and `make image` accept as NAME:VERSION. METRIC is rmse for "
                            "regressors and log loss for classifiers, on the hold-out for "
                            "trained models and on the labelled --sample for imported ones "
                            "('-' without one); ORIGIN is `trained` or the imported format.")
    models.add_argument("--json", action="store_true", help="print as JSON")
    models.set_defaults(func=cmd_models)

    for register in _registrars():
        register(sub)
    return parser


def _registrars():
    """Subcommands that live in their own modules."""
    from .batch.cli import register as register_batch
    from .loadtest.cli import register as register_loadtest
    from .rollout.cli import register as register_rollout

    return [register_loadtest, register_batch, register_rollout]


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SkserveError as exc:
        say(f"skserve {args.command}: error: {exc}")
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
