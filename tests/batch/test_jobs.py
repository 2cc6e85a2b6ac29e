"""Job building and queue decisions, as pure functions, from the chart's real template."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from skserve.batch.jobs import (
    INVOKED_LABEL,
    InvokeOptions,
    JobSummary,
    build_job,
    load_template,
    new_name,
    plan_invocation,
    summarize,
    to_start,
)
from tests.chart.chart_helpers import required_tool

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def chart_config_map() -> str:
    """The batch ConfigMap as `helm template` renders it from helm/skserve."""
    helm = required_tool("helm")
    return subprocess.run(
        [str(helm), "template", "r1", str(REPO / "helm" / "skserve"), "-n", "skserve",
         "--show-only", "templates/batch-configmap.yaml"],
        check=True, capture_output=True, text=True, timeout=60).stdout


def test_job_from_the_chart_template(chart_config_map: str) -> None:
    template, max_jobs = load_template(chart_config_map)
    assert max_jobs == 2
    name = new_name(template, NOW, "ab12")
    assert name == "r1-skserve-batch-0301120000-ab12"
    options = InvokeOptions(input="sales/*.parquet", instance_count=3, mini_batch_size=500,
                            model="demand:v2", id_column="id", error_threshold=5)
    job = build_job(template, options, name=name, suspend=True, invoked_at=NOW)
    assert "generateName" not in job["metadata"] and job["metadata"]["name"] == name
    assert job["metadata"]["labels"]["skserve.io/batch"] == "true"
    assert job["metadata"]["labels"][INVOKED_LABEL] == str(int(NOW.timestamp() * 1000))
    spec = job["spec"]
    assert spec["suspend"] is True
    assert spec["completions"] == spec["parallelism"] == 3
    assert spec["completionMode"] == "Indexed"
    assert spec["maxFailedIndexes"] <= 3
    (container,) = [c for c in spec["template"]["spec"]["containers"] if c["name"] == "batch"]
    args = container["args"]
    assert args[:2] == ["batch", "run"]
    assert args[args.index("--input") + 1] == "/data/input/sales/*.parquet"
    assert args[args.index("--output") + 1] == f"/data/output/{name}"
    assert args[args.index("--instance-count") + 1] == "3"
    assert args[args.index("--id-column") + 1] == "id"
    assert {"name": "SKSERVE_MODEL", "value": "demand:v2"} in container["env"]
    # the template itself is left alone, so one template serves many invocations
    assert "name" not in template["metadata"] and template["spec"]["completions"] == 2
    # and the result is still valid YAML a client would send
    assert yaml.safe_load(yaml.safe_dump(job)) == job


def _template() -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "x-batch-"},
            "spec": {"maxFailedIndexes": 5, "template": {"spec": {"containers": [
                {"name": "batch", "args": ["batch", "run"], "env": [
                    {"name": "SKSERVE_MODEL", "value": "demand:old"}]}]}}}}


def test_build_job_rejects_paths_off_the_volume_and_a_template_without_batch() -> None:
    with pytest.raises(ValueError, match="batch volume"):
        build_job(_template(), InvokeOptions(input="/etc/passwd"), name="n", suspend=False,
                  invoked_at=NOW)
    with pytest.raises(ValueError, match=r"\.\."):
        build_job(_template(), InvokeOptions(input="../secret"), name="n", suspend=False,
                  invoked_at=NOW)
    bad = _template()
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "other"
    with pytest.raises(ValueError, match="batch"):
        build_job(bad, InvokeOptions(input="a.csv"), name="n", suspend=False, invoked_at=NOW)
    job = build_job(_template(), InvokeOptions(input="/data/in/a.csv", model="demand:new"),
                    name="n", suspend=False, invoked_at=NOW)
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert [e["value"] for e in env if e["name"] == "SKSERVE_MODEL"] == ["demand:new"]
    assert job["spec"]["maxFailedIndexes"] == 1


def test_names_stay_within_63_characters() -> None:
    template = {"metadata": {"generateName": "a" * 42 + "-batch-"}}
    assert len(new_name(template, NOW, "zz99")) <= 63


def _job(name: str, invoked: int, suspend: bool, condition: str | None = None) -> dict:
    status = {"conditions": [{"type": condition, "status": "True"}]} if condition else {}
    return {"metadata": {"name": name, "labels": {INVOKED_LABEL: str(invoked)}},
            "spec": {"suspend": suspend, "completions": 2}, "status": status}


def test_summaries_read_state_from_suspend_and_conditions() -> None:
    assert summarize(_job("a", 1, True)).state == "Queued"
    assert summarize(_job("a", 1, False)).state == "Running"
    assert summarize(_job("a", 1, False, "Complete")).state == "Succeeded"
    assert summarize(_job("a", 1, False, "Failed")).state == "Failed"
    # a Job suspended after it failed is finished, not queued
    assert summarize(_job("a", 1, True, "Failed")).finished
    hand_made = {"metadata": {"name": "h", "creationTimestamp": "2026-03-01T12:00:00Z"},
                 "spec": {}, "status": {}}
    assert int(summarize(hand_made).invoked_at) == int(NOW.timestamp() * 1000)


def _s(name: str, invoked: int, state: str) -> JobSummary:
    return JobSummary(name, str(invoked).zfill(15), state == "Queued", state)


def test_queue_starts_oldest_first_up_to_the_max() -> None:
    jobs = [_s("new", 30, "Queued"), _s("old", 10, "Queued"), _s("mid", 20, "Queued"),
            _s("run", 5, "Running"), _s("done", 1, "Succeeded"), _s("bad", 2, "Failed")]
    assert to_start(jobs, 1) == []  # one is running: no slot
    assert to_start(jobs, 2) == ["old"]
    assert to_start(jobs, 3) == ["old", "mid"]
    assert to_start(jobs, 10) == ["old", "mid", "new"]
    # finished Jobs hold no slot; ties in time go by name, so every loop agrees
    assert to_start([_s("b", 7, "Queued"), _s("a", 7, "Queued")], 1) == ["a"]
    # more running than the max (max lowered): start nothing, stop nothing
    assert to_start([_s("r1", 1, "Running"), _s("r2", 2, "Running"), _s("q", 3, "Queued")],
                    1) == []


def test_invocation_waits_behind_older_queued_jobs() -> None:
    template = _template()
    name, start = plan_invocation(template, [], 1, now=NOW, random="aaaa")
    assert start and name.startswith("x-batch-")
    _, start = plan_invocation(template, [_s("r", 1, "Running")], 1, now=NOW)
    assert not start
    # a free slot but an older Job already waiting: that one goes first
    _, start = plan_invocation(template, [_s("q", 1, "Queued")], 1, now=NOW)
    assert not start
    _, start = plan_invocation(template, [_s("q", 1, "Queued")], 2, now=NOW)
    assert start


def test_invoke_keeps_the_template_model_unless_told(monkeypatch):
    """The Job's image holds its own model: `invoke` must not impose the host's default."""
    from skserve.cli import build_parser

    monkeypatch.setenv("SKSERVE_MODEL", "host:model")
    args = build_parser().parse_args(["batch", "invoke", "--input", "a.csv"])
    assert args.model is None
    args = build_parser().parse_args(["batch", "run", "--input", "a.csv", "--output", "o"])
    assert args.model == "host:model"
