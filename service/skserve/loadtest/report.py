"""Reports people look at: PNG plots and a short Markdown summary of a load test.

Inputs are the files a run leaves in its report folder — Locust's `locust_stats_history.csv`,
skserve's `versions.json` and, when a Deployment was watched, `replicas.csv` — so a report
can be re-rendered from an old folder (`skserve loadtest --render DIR`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .slo import Slo, Verdict
from .versions import VersionRecorder

PLOTS = ("latency.png", "throughput.png", "versions.png", "replicas.png")


def _num(value: str) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_history(path: Path, name: str = "Aggregated") -> list[dict[str, float | None]]:
    """Rows of Locust's stats history for one name: t, users, rps, fps, p50, p95, p99."""
    if not path.exists():
        return []
    out = []
    with open(path, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["Name"] != name:
                continue
            out.append({"t": float(row["Timestamp"]), "users": _num(row["User Count"]),
                        "rps": _num(row["Requests/s"]), "fps": _num(row["Failures/s"]),
                        "p50": _num(row["50%"]), "p95": _num(row["95%"]),
                        "p99": _num(row["99%"])})
    return out


def read_replicas(path: Path) -> list[dict[str, float]]:
    """`replicas.csv` (t, desired, ready) written by the replica watcher."""
    if not path.exists():
        return []
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _rel(ts: Sequence[float], t0: float) -> list[float]:
    return [t - t0 for t in ts]


def _users_axis(ax: Any, history: list[dict[str, float | None]], t0: float) -> None:
    twin = ax.twinx()
    twin.step(_rel([h["t"] for h in history], t0), [h["users"] or 0 for h in history],  # type: ignore[misc]
              where="post", color="0.6", lw=1, ls=":", label="users")
    twin.set_ylabel("users", color="0.45")
    twin.set_ylim(bottom=0)
    twin.tick_params(axis="y", colors="0.45")


def _series(history: list[dict[str, float | None]],
            recorder: VersionRecorder) -> tuple[list[dict[str, float | None]], str]:
    """Per-second rows (t, rps, fps, p50, p95, p99) and a note on their window.

    skserve's own per-second timeline is preferred: Locust's history averages rps and
    percentiles over 10 s, which flattens a spike. Locust's is the fallback (e.g. a
    custom locustfile that records no versions)."""
    overall = recorder.overall(window_s=3)
    if overall:
        return ([{"t": r["t"], "rps": r["requests"], "fps": r["failures"], "p50": r["p50"],
                  "p95": r["p95"], "p99": r["p99"]} for r in overall],
                "per second; percentiles over 3 s")
    return history, "Locust's 10 s window"


def _time_axes(ax: Any, ylabel: str, title: str, history: list[dict[str, float | None]],
               t0: float) -> None:
    """Labels, grid, the user count on a second axis and the legend of a time-series plot."""
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if history:
        _users_axis(ax, history, t0)
    ax.legend(loc="upper left", fontsize=8)


def _slo_line(ax: Any, limit: float | None, name: str, color: str, peak: float) -> float:
    """Draw the SLO as a dashed line, or, when it is far above the data, as a legend entry
    only (an axis stretched to a distant SLO flattens the curves people came to read).
    Returns the height the y axis needs for it."""
    if limit is None:
        return 0.0
    if peak and limit > 3 * peak:
        ax.plot([], [], color=color, ls="--", lw=1, label=f"{name} {limit:g} ms (off scale)")
        return peak * 1.25
    ax.axhline(limit, color=color, ls="--", lw=1, alpha=0.8, label=name)
    return limit * 1.1


def plot_latency(series: list[dict[str, float | None]], history: list[dict[str, float | None]],
                 slo: Slo, out: Path, t0: float, window: str) -> Path | None:
    """p50/p95/p99 over time with the SLO lines and the user count."""
    rows = [h for h in series if h["p50"] is not None and (h["p50"] or 0) > 0]
    if not rows:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 4.2), dpi=110)
    ts = _rel([h["t"] for h in rows], t0)  # type: ignore[misc]
    for key, color in (("p50", "tab:green"), ("p95", "tab:orange"), ("p99", "tab:red")):
        ax.plot(ts, [h[key] for h in rows], color=color, lw=1.6, label=key)
    peak = max((h["p99"] or 0) for h in rows)
    top = max([peak * 1.1] + [_slo_line(ax, limit, name, color, peak)
                              for limit, name, color in ((slo.p95_ms, "p95 SLO", "tab:orange"),
                                                         (slo.p99_ms, "p99 SLO", "tab:red"))])
    ax.set_ylim(0, top)
    _time_axes(ax, "response time, ms",
               f"Response time percentiles, all requests ({window})", history, t0)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_throughput(series: list[dict[str, float | None]],
                    history: list[dict[str, float | None]], out: Path, t0: float,
                    failures_by_error: Sequence[Mapping[str, Any]] = (),
                    window: str = "") -> Path | None:
    """Requests/s and failures/s over time, and the failures by error message."""
    if not series:
        return None
    plt = _plt()
    ratios = [3, 2] if failures_by_error else [6, 1]
    fig, (ax, fx) = plt.subplots(2, 1, figsize=(9, 5.6 if failures_by_error else 4.6),
                                 dpi=110, gridspec_kw={"height_ratios": ratios})
    ts = _rel([h["t"] for h in series], t0)  # type: ignore[misc]
    ax.plot(ts, [h["rps"] or 0 for h in series], color="tab:blue", lw=1.6,
            label="requests/s")
    ax.plot(ts, [h["fps"] or 0 for h in series], color="tab:red", lw=1.4, label="failures/s")
    _time_axes(ax, "per second", f"Throughput and failures over time ({window.split(';')[0]})",
               history, t0)
    if failures_by_error:
        top = sorted(failures_by_error, key=lambda f: -f["occurrences"])[:6]
        labels = [f"{f['name']}: {str(f['error'])[:60]}" for f in top]
        fx.barh(range(len(top)), [f["occurrences"] for f in top], color="tab:red")
        fx.set_yticks(range(len(top)), labels, fontsize=7)
        fx.invert_yaxis()
        fx.set_xlabel("occurrences")
        fx.set_title("Failures by error")
    else:
        fx.axis("off")
        fx.text(0.5, 0.5, "no failures", ha="center", va="center", fontsize=12,
                color="tab:green")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_versions(recorder: VersionRecorder, slo: Slo, out: Path, t0: float) -> Path | None:
    """Per model version: p95 over time (5 s window), and p50/p95/p99 with the error ratio."""
    summary = recorder.summary()
    if not summary:
        return None
    plt = _plt()
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=110,
                                 gridspec_kw={"width_ratios": [3, 2]})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    series = recorder.series(0.95, 5)
    for i, (version, points) in enumerate(series.items()):
        if points:
            ax.plot([p[0] - t0 for p in points], [p[1] for p in points],
                    color=colors[i % len(colors)], lw=1.6, label=f"{version} p95")
    peak = max((p[1] for points in series.values() for p in points),
               default=0)
    ax.set_ylim(0, max(peak * 1.1, _slo_line(ax, slo.p95_ms, "p95 SLO", "k", peak)) or None)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("p95 response time, ms")
    ax.set_title("p95 by x-model-version (5 s window)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    versions = list(summary)
    width = 0.25
    for j, (key, color) in enumerate((("p50_ms", "tab:green"), ("p95_ms", "tab:orange"),
                                      ("p99_ms", "tab:red"))):
        xs = [i + (j - 1) * width for i in range(len(versions))]
        bx.bar(xs, [summary[v][key] or 0 for v in versions], width, color=color,
               label=key.replace("_ms", ""))
    top = max((summary[v]["p99_ms"] or 0) for v in versions) or 1
    for i, v in enumerate(versions):
        s = summary[v]
        bx.text(i, top * 1.04, f"{s['requests']} req\n{s['error_ratio']:.2%} err",
                ha="center", va="bottom", fontsize=8)
    bx.set_ylim(0, top * 1.3)
    bx.set_xticks(range(len(versions)), versions, fontsize=8)
    bx.set_ylabel("ms")
    bx.set_title("Per version, whole run")
    bx.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_replicas(replicas: list[dict[str, float]], history: list[dict[str, float | None]],
                  out: Path, t0: float, deployment: str = "") -> Path | None:
    """Desired and ready replicas of the watched Deployment, with the user count."""
    if not replicas:
        return None
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=110)
    ts = [r["t"] - t0 for r in replicas]
    ax.step(ts, [r["desired"] for r in replicas], where="post", color="tab:purple", lw=1.6,
            label="desired")
    ax.step(ts, [r["ready"] for r in replicas], where="post", color="tab:green", lw=1.6,
            ls="--", label="ready")
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("replicas")
    ax.set_ylim(0, max(max(r["desired"] for r in replicas),
                       max(r["ready"] for r in replicas)) + 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Replicas of {deployment}" if deployment else "Replicas")
    ax.grid(alpha=0.3)
    if history:
        _users_axis(ax, history, t0)
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    return out


def load_recorder(path: Path) -> VersionRecorder:
    recorder = VersionRecorder()
    if path.exists():
        recorder.merge(json.loads(path.read_text()).get("payload", {}))
    return recorder


def render_plots(report_dir: Path, slo: Slo, failures_by_error: Sequence[Mapping[str, Any]] = (),
                 deployment: str = "") -> list[Path]:
    """Write every plot the folder's data allows; the paths written."""
    history = read_history(report_dir / "locust_stats_history.csv")
    recorder = load_recorder(report_dir / "versions.json")
    replicas = read_replicas(report_dir / "replicas.csv")
    starts = [h["t"] for h in history[:1]] + [r["t"] for r in replicas[:1]]
    starts += [sec for sec, _v in list(recorder.timeline)[:1]]
    t0 = min(starts) if starts else 0.0  # type: ignore[type-var]
    series, window = _series(history, recorder)
    written = [
        plot_latency(series, history, slo, report_dir / "latency.png", t0,  # type: ignore[arg-type]
                     window),
        plot_throughput(series, history, report_dir / "throughput.png", t0,  # type: ignore[arg-type]
                        failures_by_error, window),
        plot_versions(recorder, slo, report_dir / "versions.png", t0),  # type: ignore[arg-type]
        plot_replicas(replicas, history, report_dir / "replicas.png", t0,  # type: ignore[arg-type]
                      deployment),
    ]
    return [p for p in written if p is not None]


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def summary_markdown(*, host: str, config: Mapping[str, Any], result: Mapping[str, Any],
                     verdicts: Sequence[Verdict], versions: Mapping[str, Mapping[str, Any]],
                     endpoints: Mapping[str, Mapping[str, Any]],
                     failures: Sequence[Mapping[str, Any]], loadgen_cpu: Mapping[str, float],
                     plots: Sequence[Path], saturated: bool) -> str:
    """The short Markdown summary: verdict first, then the numbers, then the pictures."""
    ok = all(v.ok for v in verdicts)
    state = "no SLO set" if not verdicts else ("PASS" if ok else "FAIL")
    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    lines = [f"# Load test of {host}: {state}", "",
             f"{when}; " + ", ".join(f"{k} {v}" for k, v in config.items()), "",
             f"**{result['requests']} requests, {result['failures']} failed "
             f"({result['failure_ratio']:.2%}), {result['rps']:.1f} req/s; "
             f"p50 {_ms(result['p50_ms'])} ms, p95 {_ms(result['p95_ms'])} ms, "
             f"p99 {_ms(result['p99_ms'])} ms.**", ""]
    if verdicts:
        lines += ["## SLO", "", "| check | scope | threshold | observed | verdict |",
                  "| --- | --- | --- | --- | --- |"]
        for v in verdicts:
            unit = "" if v.name in ("failure_ratio", "requests") else " ms"
            obs = "n/a" if v.observed is None else f"{v.observed:.4g}{unit}"
            lines.append(f"| {v.name} | {v.scope} | {v.threshold:g}{unit} | {obs} | "
                         f"{'ok' if v.ok else '**broken**'} |")
        lines.append("")
    if versions:
        lines += ["## Per model version (`x-model-version`)", "",
                  "| version | requests | error ratio | p50 ms | p95 ms | p99 ms |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name, s in versions.items():
            lines.append(f"| {name} | {s['requests']} | {s['error_ratio']:.2%} | "
                         f"{_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} | {_ms(s['p99_ms'])} |")
        lines.append("")
    if endpoints:
        lines += ["## Endpoints", "", "| endpoint | requests | failures | req/s | p50 ms | "
                  "p95 ms | p99 ms |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for name, s in endpoints.items():
            lines.append(f"| {name} | {s['requests']} | {s['failures']} | {s['rps']:.1f} | "
                         f"{_ms(s['p50_ms'])} | {_ms(s['p95_ms'])} | {_ms(s['p99_ms'])} |")
        lines.append("")
    if failures:
        lines += ["## Failures", "", "| endpoint | error | count |", "| --- | --- | --- |"]
        for f in sorted(failures, key=lambda f: -f["occurrences"])[:10]:
            error = str(f["error"]).replace("|", "\\|")[:120]
            lines.append(f"| {f['name']} | {error} | {f['occurrences']} |")
        lines.append("")
    lines += ["## Load generator", ""]
    lines.append(", ".join(f"{k} {v:.0%} of a core" for k, v in loadgen_cpu.items()) + ".")
    if saturated:
        lines.append("**A Locust process was at ≥ 90 % of a core: the load generator may have "
                     "limited the rate. Run again with more `--workers`.**")
    lines += ["", "## Plots", ""]
    lines += [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", "Locust's own report: [locust.html](locust.html); raw numbers: "
              "`locust_stats.csv`, `locust_stats_history.csv`, `locust_failures.csv`, "
              "`versions.json`.", ""]
    return "\n".join(lines)
