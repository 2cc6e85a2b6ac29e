"""checkov policy scan over the rendered chart: zero failed checks.

One scan over the union of the whole values matrix plus the batch Job manifest (which lives
inside a ConfigMap, so checkov would not see it otherwise). Skips are listed, with reasons, in
helm/skserve/.checkov.yaml (chart-wide) and as checkov.io/skipN annotations (per object).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from chart_helpers import CHART, MATRIX, batch_job, render

CONFIG = CHART / ".checkov.yaml"


def test_checkov_skips_are_justified() -> None:
    text = CONFIG.read_text()
    skips = yaml.safe_load(text)["skip-check"]
    assert len(skips) <= 5, "keep the skip list short"
    lines = text.splitlines()
    for check in skips:
        i = next(n for n, line in enumerate(lines) if line.strip() == f"- {check}")
        assert lines[i - 1].strip().startswith("#"), f"{check} has no reason above it"


@pytest.fixture(scope="module")
def checkov_scan(tmp_path_factory: pytest.TempPathFactory, checkov: Path) -> dict:
    """One checkov run over the union of every matrix case (plus the batch Job manifest)."""
    tmp_path = tmp_path_factory.mktemp("rendered")
    seen: set[str] = set()
    n = 0
    annotated_skips = 0
    for p in MATRIX:
        objs = render(*p.values[0])
        if any(o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-batch") for o in objs):
            job = batch_job(objs)
            job["metadata"]["name"] = "batch-job-template"
            objs.append(job)
        for obj in objs:
            text = yaml.safe_dump(obj, sort_keys=True)
            if text in seen:
                continue
            seen.add(text)
            n += 1
            for key, value in (obj["metadata"].get("annotations") or {}).items():
                if key.startswith("checkov.io/skip"):
                    assert re.fullmatch(r"CKV\w+=\S.{10,}", value), f"no reason: {value}"
                    annotated_skips += 1
            (tmp_path / f"{n:04d}-{obj['kind'].lower()}.yaml").write_text(text)
    assert n > 30
    proc = subprocess.run(
        [str(checkov), "--config-file", str(CONFIG), "-d", str(tmp_path), "-o", "json"],
        capture_output=True,
        text=True,
        timeout=240,
    )
    # checkov prints one JSON report (or a list of them, one per framework)
    start = proc.stdout.index("{") if proc.stdout.lstrip()[0] == "{" else proc.stdout.index("[")
    reports = json.loads(proc.stdout[start:])
    reports = reports if isinstance(reports, list) else [reports]
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} ({Path(c['file_path']).name})"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    return {
        "failed": sorted(set(failed)),
        # the config sets quiet: true, so passed and skipped checks are only counted
        "passed": sum(r["summary"]["passed"] for r in reports),
        "skipped": sum(r["summary"]["skipped"] for r in reports),
        "annotated_skips": annotated_skips,
        "returncode": proc.returncode,
        "stderr": proc.stderr,
    }


def test_checkov_zero_failed(checkov_scan: dict) -> None:
    failed = checkov_scan["failed"]
    assert not failed, "checkov failures:\n" + "\n".join(failed)
    assert checkov_scan["passed"] > 100, "checkov ran too few checks: is the framework on?"
    # the only skipped checks are per-object annotated ones (chart-wide skips in the config
    # file are not run at all), and each annotation was honoured
    assert checkov_scan["skipped"] == checkov_scan["annotated_skips"]
    assert checkov_scan["returncode"] == 0, checkov_scan["stderr"][-2000:]
