"""Reports people look at: PNG plots and a short Markdown summary of a load test.

Inputs are the files a run leaves in its report folder — Locust's `locust_stats_history.csv`,
skserve's `versions.json` and, when a Deployment was watched, `replicas.csv` — so the plots
can be drawn again from a folder (`render_plots(folder, slo)`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from .slo import Slo, Verdict
from .versions import VersionRecorder

PLOTS = ("latency.png", "throughput.png", "versions.png", "replicas.png")
# Versions get colours the percentiles (green, orange, red) and failures (red) do not use.
VERSION_COLORS = ("tab:blue", "tab:purple", "tab:brown", "tab:cyan", "tab:olive", "tab:pink")


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


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _series(history: list[dict[str, float | None]],
            recorder: VersionRecorder) -> tuple[list[dict[str, float | None]], str]:
    """Per-second rows (t, rps, fps, p50, p95, p99) and a note on their window.

    skserve's own per-second timeline is preferred: Locust's history averages rps and
    percentiles over 10 s, which flattens a spike, and rounds response times. Locust's is
    the fallback (e.g. a custom locustfile that records no histograms)."""
    overall = recorder.overall(window_s=3)
    if overall:  # a second's numbers drawn in its middle, between the user counts around it
        return ([{"t": r["t"] + 0.5, "rps": r["requests"], "fps": r["failures"],  # type: ignore[operator]
                  "p50": r["p50"], "p95": r["p95"], "p99": r["p99"]} for r in overall],
                "per second; percentiles over 3 s")
    return history, "Locust's 10 s window"


def _figure(ncols: int = 1, nrows: int = 1, **kw: Any) -> tuple[Any, Any]:
    """A figure laid out by matplotlib's constrained layout, so legends placed outside
    the axes get their own room instead of covering data."""
    return _plt().subplots(nrows, ncols, dpi=110, layout="constrained", **kw)


def _save(fig: Any, out: Path) -> Path:
    fig.savefig(out)
    _plt().close(fig)
    return out


def _users_axis(ax: Any, users: Sequence[tuple[float, float]], t0: float) -> Any:
    """The user count, (epoch s, users) at each change, as a light grey area on a
    right-hand axis, behind the data."""
    if not users:
        return None
    twin = ax.twinx()
    counts = [n for _t, n in users]
    twin.fill_between([t - t0 for t, _n in users], counts, step="post", color="0.5",
                      alpha=0.15, lw=0, label="users (right axis)")
    twin.set_ylim(0, max(counts) * 1.15 or 1)
    twin.set_ylabel("users", color="0.4")
    twin.tick_params(axis="y", colors="0.4")
    twin.yaxis.get_major_locator().set_params(integer=True)
    ax.set_zorder(twin.get_zorder() + 1)  # the data in front of the area
    ax.patch.set_visible(False)
    return twin


def _legend_below(ax: Any, *more: Any) -> None:
    """One legend row under the axes (outside the data), with the entries of `more` axes."""
    handles, labels = ax.get_legend_handles_labels()
    for other in more:
        if other is not None:
            h, lab = other.get_legend_handles_labels()
            handles, labels = handles + h, labels + lab
    if handles:
        ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16),
                  ncol=min(len(handles), 6), fontsize=8, frameon=False)


def _time_axes(ax: Any, ylabel: str, title: str, users: Sequence[tuple[float, float]],
               t0: float, ts: Sequence[float]) -> None:
    """Labels, grid, the user count on a second axis and the legend of a time-series plot
    whose data spans `ts` (the x axis ends there: not over Locust's start-up or a
    distributed run's final drain, when no requests ran)."""
    ax.set_xlim(min(ts) - 0.5, max(ts) + 0.5)
    ax.set_xlabel("seconds since start")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax, _users_axis(ax, users, t0))


def _slo_line(ax: Any, limit: float | None, name: str, color: str, peak: float) -> float | None:
    """Draw the SLO as a dashed line, or, when it is far above the data, as a legend entry
    only (an axis stretched to a distant SLO flattens the curves people came to read).
    Returns the limit when it is drawn on the axis, else None."""
    if limit is None:
        return None
    if peak and limit > 3 * peak:
        ax.plot([], [], color=color, ls="--", lw=1, label=f"{name} {limit:g} ms (off scale)")
        return None
    ax.axhline(limit, color=color, ls="--", lw=1.2, alpha=0.9, label=f"{name} {limit:g} ms")
    return limit


def _fit_y(ax: Any, values: Sequence[float]) -> None:
    """From 0, unless every value is in the top half of the range: then zoom in, so a p95
    at 1048 ms shows clearly above a 1000 ms SLO instead of on top of it."""
    lo, hi = min(values), max(values)
    if lo > 0.5 * hi:
        pad = max((hi - lo) * 0.25, hi * 0.01)
        ax.set_ylim(lo - pad, hi + pad)
    else:
        ax.set_ylim(0, hi * 1.1 or 1)


def _gate_numbers(run: Mapping[str, Any] | None) -> str:
    if not run or run.get("p95_ms") is None:
        return ""
    return (f"\nwhole run (the SLO gate's numbers): p50 {_ms(run['p50_ms'])}, "
            f"p95 {_ms(run['p95_ms'])}, p99 {_ms(run['p99_ms'])} ms")


def plot_latency(series: list[dict[str, float | None]], users: Sequence[tuple[float, float]],
                 slo: Slo, out: Path, t0: float, window: str,
                 run: Mapping[str, Any] | None = None) -> Path | None:
    """p50/p95/p99 over time with the SLO lines, the user count and, in the title, the
    whole run's percentiles (`run`: p50_ms/p95_ms/p99_ms, the numbers the gate used)."""
    rows = [h for h in series if h["p50"] is not None and (h["p50"] or 0) > 0]
    if not rows:
        return None
    fig, ax = _figure(figsize=(9, 4.6))
    ts = _rel([h["t"] for h in rows], t0)  # type: ignore[misc]
    for key, color, lw in (("p50", "tab:green", 1.2), ("p95", "tab:orange", 2.0),
                           ("p99", "tab:red", 1.2)):
        ax.plot(ts, [h[key] for h in rows], color=color, lw=lw, label=key)
    values = [float(h[k]) for h in rows for k in ("p50", "p95", "p99")  # type: ignore[arg-type]
              if h[k] is not None]
    peak = max(values)
    drawn = [_slo_line(ax, limit, name, color, peak)
             for limit, name, color in ((slo.p95_ms, "p95 SLO", "tab:orange"),
                                        (slo.p99_ms, "p99 SLO", "tab:red"))]
    _fit_y(ax, values + [d for d in drawn if d is not None])
    _time_axes(ax, "response time, ms", f"Response time, all requests ({window})"
               + _gate_numbers(run), users, t0, ts)
    return _save(fig, out)


def plot_throughput(series: list[dict[str, float | None]],
                    users: Sequence[tuple[float, float]], out: Path, t0: float,
                    failures_by_error: Sequence[Mapping[str, Any]] = (),
                    window: str = "") -> Path | None:
    """Requests/s over time; failures/s on the same axes and the failures by error
    message in a panel below, only when there were failures."""
    if not any(h["rps"] for h in series):
        return None
    failed = bool(failures_by_error) or any(h["fps"] for h in series)
    top = sorted(failures_by_error, key=lambda f: -f["occurrences"])[:6]
    if top:
        fig, (ax, fx) = _figure(nrows=2, figsize=(9, 5.2 + 0.25 * len(top)),
                                gridspec_kw={"height_ratios": [3, 0.8 + 0.3 * len(top)]})
    else:
        fig, ax = _figure(figsize=(9, 4.2))
    ts = _rel([h["t"] for h in series], t0)  # type: ignore[misc]
    ax.plot(ts, [h["rps"] or 0 for h in series], color="tab:blue", lw=1.6,
            label="requests/s")
    if failed:
        fps = [h["fps"] or 0 for h in series]
        ax.fill_between(ts, fps, color="tab:red", alpha=0.35, lw=0)
        ax.plot(ts, fps, color="tab:red", lw=1.2, label="failures/s")
    ax.set_ylim(bottom=0)
    total = sum(f["occurrences"] for f in failures_by_error)
    state = f"{total} failures" if total else ("failures" if failed else "no failures")
    _time_axes(ax, "per second", f"Throughput ({window.split(';')[0]}): {state}", users, t0,
               ts)
    if top:  # labels above the bars, not as tick labels that would squeeze the axes above
        ys = range(len(top) - 1, -1, -1)  # the most frequent error on top
        bars = fx.barh(ys, [f["occurrences"] for f in top], color="tab:red", height=0.3,
                       align="edge")
        fx.bar_label(bars, padding=3, fontsize=8)
        for y, f in zip(ys, top, strict=True):
            fx.annotate(f"{f['name']}: {str(f['error'])[:110]}", (0, y + 0.36), xytext=(3, 0),
                        textcoords="offset points", fontsize=8, va="bottom")
        fx.set_ylim(-0.15, len(top))
        fx.set_yticks([])
        fx.set_xlim(0, max(f["occurrences"] for f in top) * 1.12)
        fx.set_xlabel("occurrences")
        fx.set_title("Failures by error", fontsize=10)
    return _save(fig, out)


def plot_versions(recorder: VersionRecorder, slo: Slo, out: Path, t0: float) -> Path | None:
    """Per model version: p95 over time (5 s window), and the whole run's p50/p95/p99 (the
    numbers a per-version gate uses) with requests and error ratio under each version.
    Only for two versions or more: with one, latency.png already shows all of it."""
    summary = recorder.summary()
    if len(summary) < 2:
        return None
    fig, (ax, bx) = _figure(ncols=2, figsize=(11, 4.6), gridspec_kw={"width_ratios": [3, 2]})
    series = recorder.series(0.95, 5)
    for i, (version, points) in enumerate(series.items()):
        if points:
            ax.plot([p[0] + 0.5 - t0 for p in points], [p[1] for p in points],
                    color=VERSION_COLORS[i % len(VERSION_COLORS)], lw=1.6, label=version)
    values = [p[1] for points in series.values() for p in points]
    drawn = _slo_line(ax, slo.p95_ms, "p95 SLO", "k", max(values, default=0))
    if values:
        _fit_y(ax, values + ([drawn] if drawn is not None else []))
    ax.set_xlabel("seconds since start")
    ax.set_ylabel("p95 response time, ms")
    ax.set_title("p95 by x-model-version (5 s window)", fontsize=10)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    versions = list(summary)
    width = 0.26
    for j, (key, color) in enumerate((("p50_ms", "tab:green"), ("p95_ms", "tab:orange"),
                                      ("p99_ms", "tab:red"))):
        xs = [i + (j - 1) * width for i in range(len(versions))]
        bars = bx.bar(xs, [summary[v][key] or 0 for v in versions], width, color=color,
                      label=key.replace("_ms", ""))
        bx.bar_label(bars, fmt="%.4g", padding=2, fontsize=7)
    top = max((summary[v]["p99_ms"] or 0) for v in versions) or 1
    bx.set_ylim(0, top * 1.15)
    bx.set_xticks(range(len(versions)),
                  [f"{v}\n{summary[v]['requests']} req, {summary[v]['error_ratio']:.2%} err"
                   for v in versions], fontsize=8)
    bx.set_ylabel("ms")
    bx.set_title("Per version, whole run", fontsize=10)
    _legend_below(bx)
    return _save(fig, out)


def plot_replicas(replicas: list[dict[str, float]], users: Sequence[tuple[float, float]],
                  out: Path, t0: float, deployment: str = "") -> Path | None:
    """Desired and ready replicas of the watched Deployment, with the user count."""
    if not replicas:
        return None
    fig, ax = _figure(figsize=(9, 4.0))
    ts = [r["t"] - t0 for r in replicas]
    ax.step(ts, [r["desired"] for r in replicas], where="post", color="tab:purple", lw=1.6,
            label="desired")
    ax.step(ts, [r["ready"] for r in replicas], where="post", color="tab:green", lw=1.6,
            ls="--", label="ready")
    ax.set_ylim(0, max(max(r["desired"] for r in replicas),
                       max(r["ready"] for r in replicas)) + 1)
    ax.yaxis.get_major_locator().set_params(integer=True)
    _time_axes(ax, "replicas", f"Replicas of {deployment}" if deployment else "Replicas",
               users, t0, ts)
    return _save(fig, out)


def read_versions(path: Path) -> tuple[VersionRecorder, list[tuple[float, float]]]:
    """`versions.json`: the histograms and timeline, and the user count at each change
    ([] when absent, e.g. from a custom locustfile)."""
    doc = json.loads(path.read_text()) if path.exists() else {}
    recorder = VersionRecorder()
    recorder.merge(doc.get("payload", {}))
    return recorder, [(float(t), float(n)) for t, n in doc.get("users") or []]


def render_plots(report_dir: Path, slo: Slo, failures_by_error: Sequence[Mapping[str, Any]] = (),
                 deployment: str = "") -> list[Path]:
    """Write every plot the folder's data allows; the paths written."""
    history = read_history(report_dir / "locust_stats_history.csv")
    recorder, users = read_versions(report_dir / "versions.json")
    users = users or [(h["t"], h["users"] or 0) for h in history]  # type: ignore[misc]
    replicas = read_replicas(report_dir / "replicas.csv")
    starts = [users[0][0]] if users else []
    starts += [r["t"] for r in replicas[:1]]
    if recorder.timeline:
        starts.append(min(sec for sec, _v in recorder.timeline))
    t0 = min(starts) if starts else 0.0
    series, window = _series(history, recorder)
    written = [
        plot_latency(series, users, slo, report_dir / "latency.png", t0, window,
                     recorder.overall_summary()),
        plot_throughput(series, users, report_dir / "throughput.png", t0, failures_by_error,
                        window),
        plot_versions(recorder, slo, report_dir / "versions.png", t0),
        plot_replicas(replicas, users, report_dir / "replicas.png", t0, deployment),
    ]
    return [p for p in written if p is not None]


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
    method = result.get("percentile_method")
    if method:
        rounded = result.get("locust_rounded") or {}
        lines += [f"Percentiles here (and the gates' numbers): {method}."
                  + (f" Locust's own report rounds response times to 2 significant digits "
                     f"(its p50/p95/p99: {_ms(rounded.get('p50_ms'))} / "
                     f"{_ms(rounded.get('p95_ms'))} / {_ms(rounded.get('p99_ms'))} ms)."
                     if rounded.get("p95_ms") is not None else ""), ""]
    if verdicts:
        lines += ["## SLO", "", "| check | scope | threshold | observed | verdict |",
                  "| --- | --- | --- | --- | --- |"]
        for v in verdicts:
            unit = "" if v.name in ("failure_ratio", "requests") else " ms"
            obs = "n/a" if v.observed is None else f"{v.observed:g}{unit}"
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
    lines += ["", "Locust's own report (its rounded percentiles): [locust.html](locust.html); "
              "raw numbers: `locust_stats.csv`, `locust_stats_history.csv`, "
              "`locust_failures.csv`; the latency histograms: `versions.json`.", ""]
    return "\n".join(lines)


def write_html(path: Path, markdown: str) -> Path:
    """`summary.md` as a standalone HTML page (the PNGs beside it shown inline). Raw HTML in
    the Markdown (e.g. in a server's error message) is escaped, not rendered."""
    from markdown_it import MarkdownIt

    body = MarkdownIt("commonmark", {"html": False}).enable("table").render(markdown)
    title = markdown.splitlines()[0].lstrip("# ") if markdown else "Load test"
    page = (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title>\n<style>{_CSS}</style></head>\n"
            f"<body>\n{body}</body></html>\n")
    path.write_text(page)
    return path


_CSS = ("body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;"
        "color:#222}table{border-collapse:collapse;margin:.5rem 0}th,td{border:1px solid #ccc;"
        "padding:.25rem .6rem;text-align:right}th:first-child,td:first-child{text-align:left}"
        "img{max-width:100%;display:block;margin:1rem 0}code{background:#f3f3f3}")
