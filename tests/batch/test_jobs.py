"""Job building and queue decisions, as pure functions, from the chart's real template."""

from __future__ import annotations

import json
import os
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
    max_job_name,
    new_name,
    plan_invocation,
    summarize,
    to_start,
)
from skserve.cli import main as cli_main
from tests.chart.chart_helpers import required_tool
from tests.conftest import SKSERVE

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


@pytest.mark.parametrize("instances", [1, 2, 10, 11, 1000, 100_000])
def test_names_leave_room_for_the_pod_index_and_suffix(instances: int) -> None:
    """An Indexed Job's last pod hostname `<job>-<index>` must be a DNS label (the API server
    refuses the Job otherwise) and its pod name `<hostname>-<5 random>` must fit whole."""
    template = {"metadata": {"generateName": "a" * 53 + "-skserve-batch-"}}
    name = new_name(template, NOW, "zz99", instances)
    assert name == name.lower() and name.endswith("-0301120000-zz99")
    assert len(f"{name}-{instances - 1}") <= 63
    assert len(f"{name}-{instances - 1}-abcde") == max_job_name(instances) + len(
        f"-{instances - 1}-abcde") <= 63
    assert name.startswith("a" * 30) and "--" not in name


def test_a_short_prefix_is_kept_whole() -> None:
    template = {"metadata": {"generateName": "r1-skserve-batch-"}}
    assert new_name(template, NOW, "zz99", 100_000) == "r1-skserve-batch-0301120000-zz99"


def test_the_issue_case_a_32_character_release() -> None:
    """Before: a 32-character release gave a 62-character Job, so pod `<job>-1` had 64."""
    template = {"metadata": {"generateName": "r" * 32 + "-skserve-batch-"}}
    name = new_name(template, NOW, "zz99", 2)
    assert len(name + "-1") <= 63 and len(name + "-1-abcde") <= 63


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


# ---------------------------------------------------------------- the CLI


def _cli(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`skserve batch ...` with no way to reach a cluster: no kubeconfig, not in a pod."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(HOME=str(tmp_path), KUBECONFIG=str(tmp_path / "no-kubeconfig"))
    return subprocess.run([SKSERVE, "batch", *args], capture_output=True, text=True, env=env,
                          timeout=60)


def test_dry_run_with_a_template_prints_the_job_without_a_cluster(chart_config_map: str,
                                                                 tmp_path: Path) -> None:
    template = tmp_path / "batch.yaml"
    template.write_text(chart_config_map)
    args = ["invoke", "--dry-run", "--template", str(template), "--input", "sales/*.csv",
            "--instance-count", "3", "--model", "demand:v2"]
    out = _cli(*args, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    job = yaml.safe_load(out.stdout)
    assert job["kind"] == "Job" and job["metadata"]["name"].startswith("r1-skserve-batch-")
    assert job["spec"]["completions"] == 3 and job["spec"]["suspend"] is False
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["args"][container["args"].index("--input") + 1] == "/data/input/sales/*.csv"
    as_json = _cli(*args, "--json", tmp_path=tmp_path)
    assert json.loads(as_json.stdout)["spec"]["completions"] == 3


def test_without_a_template_invoke_needs_a_cluster_and_says_so(tmp_path: Path) -> None:
    out = _cli("invoke", "--dry-run", "--input", "a.csv", tmp_path=tmp_path)
    assert out.returncode == 5 and out.stdout == ""
    assert "no Kubernetes configuration" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1


class _Cluster:
    """A stand-in for `kube.Cluster` with two Jobs: the listing's format is under test here;
    the same commands against a real API server run in tests/e2e/test_stack.py."""

    jobs = (JobSummary("r1-skserve-batch-0301120000-ab12", "1772366400000".zfill(15), False,
                       "Running", 3, 1, 0, 2),
            JobSummary("r1-skserve-batch-0301120500-cd34", "1772366700000".zfill(15), True,
                       "Queued", 1))

    def list_jobs(self) -> list[JobSummary]:
        return list(reversed(self.jobs))

    def job_status(self, name: str) -> tuple[JobSummary, dict]:
        return self.jobs[0], {"input": "/data/input/a.csv", "completedIndexes": "0",
                              "failedIndexes": "", "conditions": []}


def test_list_and_status_print_tables_on_stdout(monkeypatch, capsys) -> None:
    from skserve.batch import cli

    monkeypatch.setattr(cli, "_kube", lambda args: _Cluster())
    base = ["-n", "ns", "--release", "r1"]
    assert cli_main(["batch", "list", *base]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    header, first, second = out.splitlines()
    assert header.split() == ["NAME", "STATE", "DONE", "FAILED", "ACTIVE", "INVOKED"]
    assert first.split() == ["r1-skserve-batch-0301120000-ab12", "Running", "1/3", "0", "2",
                             "2026-03-01T12:00:00+00:00"]
    assert second.split()[:3] == ["r1-skserve-batch-0301120500-cd34", "Queued", "0/1"]
    assert header.index("STATE") == first.index("Running") == second.index("Queued")
    assert cli_main(["batch", "status", "r1-skserve-batch-0301120000-ab12", *base]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    rows = dict(line.split(None, 1) for line in out.splitlines()[1:])
    assert rows["state"] == "Running" and rows["input"] == "/data/input/a.csv"
    assert rows["invoked_at"] == "2026-03-01T12:00:00+00:00" and rows["failedIndexes"] == "-"


def test_an_unreachable_cluster_is_one_line_and_exit_5(tmp_path: Path) -> None:
    """A kubeconfig whose API server is a closed port on this machine: the real client fails
    to connect, and the CLI says so in one line."""
    from tests.conftest import free_port

    config = tmp_path / "kubeconfig"
    config.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{free_port()}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    out = subprocess.run([SKSERVE, "batch", "list", "--release", "r1"], capture_output=True,
                         text=True, env={**env, "KUBECONFIG": str(config)}, timeout=120)
    assert out.returncode == 5 and out.stdout == ""
    assert "listing batch Jobs: the Kubernetes API did not answer" in out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr.strip().splitlines()) == 1
