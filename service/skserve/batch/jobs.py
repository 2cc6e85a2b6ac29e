"""Pure Kubernetes logic for batch jobs: build a Job from the chart's template, read a Job's
state, and decide which queued Jobs may start.

No API calls here (those are in `kube`), so the manifest and every queue decision are unit
tested from plain dicts. The queue keeps its state on the cluster objects themselves
(`spec.suspend` plus an invocation-time label), so `invoke` and any number of `queue` loops
can stop and restart at any time without losing the order.
"""

from __future__ import annotations

import copy
import secrets
import string
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

import yaml

from ..errors import InvalidInput
from .plan import ScoringOptions

BATCH_LABEL = "skserve.io/batch"
INVOKED_LABEL = "skserve.io/invoked-at"  # unix milliseconds: label-safe and sortable
INVOKED_ANNOTATION = "skserve.io/invoked-at"  # the same instant, ISO 8601, for people
INPUT_ANNOTATION = "skserve.io/input"
OUTPUT_ANNOTATION = "skserve.io/output"
DATA_ROOT = "/data"
CONTAINER = "batch"
MAX_NAME = 63  # a DNS label: pod hostnames, and the job-name label of the Job's pods
POD_SUFFIX = 6  # "-" and the 5 random characters the API server appends to a pod's name
_SUFFIX_ALPHABET = string.ascii_lowercase + string.digits


@dataclass(frozen=True)
class InvokeOptions(ScoringOptions):
    """What one `skserve batch invoke` asks for; the rest comes from the chart's template."""

    input: str
    model: str | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


def load_template(text: str) -> tuple[dict[str, Any], int]:
    """The Job template and maxConcurrentJobs from YAML: the batch ConfigMap, a stream of
    manifests holding it (`helm template` output), or a bare Job (max 1)."""
    docs = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    for doc in docs:
        if doc.get("kind") == "ConfigMap" and "job.yaml" in (doc.get("data") or {}):
            return config_map_template(doc)
    for doc in docs:
        if doc.get("kind") == "Job":
            return doc, 1
    raise InvalidInput("no batch ConfigMap (data.job.yaml) or Job manifest in the template")


def config_map_template(config_map: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Parse the chart's `<fullname>-batch` ConfigMap (as a plain dict)."""
    data = config_map.get("data") or {}
    job = yaml.safe_load(data["job.yaml"])
    if not isinstance(job, dict) or job.get("kind") != "Job":
        raise InvalidInput("the batch ConfigMap's job.yaml is not a Job manifest")
    try:
        max_jobs = int(data.get("maxConcurrentJobs", "1"))
    except ValueError as exc:
        raise InvalidInput(f"maxConcurrentJobs is not an integer: {data['maxConcurrentJobs']!r}"
                         ) from exc
    if max_jobs < 1:
        raise InvalidInput(f"maxConcurrentJobs must be at least 1, got {max_jobs}")
    return job, max_jobs


def max_job_name(instance_count: int) -> int:
    """The longest Job name whose Indexed pods keep whole names: the API server refuses a Job
    whose last pod hostname `<job>-<index>` is longer than 63 characters, and cuts pod names
    `<job>-<index>-<5 random>` to fit (the chart's generateName budget assumes 10^5 indexes)."""
    return MAX_NAME - len(f"-{max(instance_count, 1) - 1}") - POD_SUFFIX


def new_name(template: dict[str, Any], now: datetime, random: str | None = None,
             instance_count: int = 1) -> str:
    """`<generateName><MMDDhhmmss>-<4 random>`: chosen by us rather than the API server, so the
    output folder (named after the Job) is known before the Job exists. A prefix too long for
    `max_job_name(instance_count)` is cut (the time and random part keep names unique)."""
    prefix = template.get("metadata", {}).get("generateName") or "skserve-batch-"
    stamp = now.astimezone(UTC).strftime("%m%d%H%M%S")
    suffix = random or "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(4))
    tail = f"{stamp}-{suffix}"
    room = max_job_name(instance_count) - len(tail)
    if len(prefix) > room:
        prefix = prefix[: room - 1].rstrip("-") + "-"
    return f"{prefix}{tail}"


def data_path(spec: str, folder: str) -> str:
    """A user path on the batch volume: relative paths are under /data/<folder>."""
    if spec.startswith(DATA_ROOT + "/"):
        return spec
    if spec.startswith("/"):
        raise InvalidInput(f"{spec}: absolute paths must be on the batch volume ({DATA_ROOT}/...)")
    if ".." in spec.split("/"):
        raise InvalidInput(f"{spec}: '..' is not allowed")
    return f"{DATA_ROOT}/{folder}/{spec}".rstrip("/")


def job_args(options: InvokeOptions, name: str) -> list[str]:
    """The container's args: `batch run` with the options; input and output on the volume."""
    args = ["batch", "run", "--input", data_path(options.input, "input"),
            "--output", f"{DATA_ROOT}/output/{name}",
            "--instance-count", str(options.instance_count),
            "--mini-batch-size", str(options.mini_batch_size),
            "--max-concurrency-per-instance", str(options.max_concurrency_per_instance),
            "--output-action", options.output_action,
            "--output-file-name", options.output_file_name,
            "--error-threshold", str(options.error_threshold),
            "--max-retries", str(options.max_retries),
            "--timeout", f"{options.timeout:g}"]  # a progress line every 10 s in the pod's log
    if options.model:
        args += ["--model", options.model]
    if options.id_column:
        args += ["--id-column", options.id_column]
    return args


def build_job(template: dict[str, Any], options: InvokeOptions, *, name: str, suspend: bool,
              invoked_at: datetime) -> dict[str, Any]:
    """The Job to create for one invocation: the template with its name, args, instance
    count, queue state and invocation time set. The template is not modified."""
    if options.instance_count < 1:
        raise InvalidInput("--instance-count must be at least 1")
    job = copy.deepcopy(template)
    meta = job.get("metadata") or {}
    meta.pop("generateName", None)
    job["metadata"] = meta = {"name": name, **meta}  # the name first, where people look
    labels = meta.setdefault("labels", {})
    labels[BATCH_LABEL] = "true"
    labels[INVOKED_LABEL] = str(int(invoked_at.timestamp() * 1000))
    annotations = meta.setdefault("annotations", {})
    annotations[INVOKED_ANNOTATION] = invoked_at.astimezone(UTC).isoformat(timespec="seconds")
    annotations[INPUT_ANNOTATION] = data_path(options.input, "input")
    annotations[OUTPUT_ANNOTATION] = f"{DATA_ROOT}/output/{name}"
    spec = job.setdefault("spec", {})
    n = options.instance_count
    spec["completions"] = n
    spec["parallelism"] = n
    spec["completionMode"] = "Indexed"
    spec["suspend"] = bool(suspend)
    if "maxFailedIndexes" in spec:  # the API rejects maxFailedIndexes > completions
        spec["maxFailedIndexes"] = min(int(spec["maxFailedIndexes"]), n)
    pod = spec.setdefault("template", {}).setdefault("spec", {})
    containers = pod.get("containers") or []
    container = next((c for c in containers if c.get("name") == CONTAINER), None)
    if container is None:
        raise InvalidInput(f"the Job template has no container named {CONTAINER!r}")
    container["args"] = job_args(options, name)
    if options.model:
        env = [e for e in container.get("env", []) if e.get("name") != "SKSERVE_MODEL"]
        container["env"] = [*env, {"name": "SKSERVE_MODEL", "value": options.model}]
    return job


# ---------------------------------------------------------------- reading Jobs back


@dataclass(frozen=True)
class JobSummary:
    """What the queue and `list` need from a Job."""

    name: str
    invoked_at: str  # sortable: unix milliseconds as from the label, zero-padded
    suspended: bool
    state: str  # Queued, Running, Succeeded, Failed
    completions: int = 1
    succeeded: int = 0
    failed: int = 0
    active: int = 0

    @property
    def finished(self) -> bool:
        return self.state in ("Succeeded", "Failed")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_DONE = {"Complete": "Succeeded", "SuccessCriteriaMet": "Succeeded", "Failed": "Failed",
         "FailureTarget": "Failed"}


def summarize(job: dict[str, Any]) -> JobSummary:
    """A Job as the API returns it (camelCase dict) to a JobSummary."""
    meta = job.get("metadata") or {}
    spec = job.get("spec") or {}
    status = job.get("status") or {}
    state = None
    for cond in status.get("conditions") or []:
        if cond.get("status") == "True" and cond.get("type") in _DONE:
            state = _DONE[cond["type"]]
            break
    suspended = bool(spec.get("suspend"))
    if state is None:
        state = "Queued" if suspended else "Running"
    invoked = (meta.get("labels") or {}).get(INVOKED_LABEL)
    if invoked is None:  # a Job made by hand: order it by its creation time
        created = meta.get("creationTimestamp")
        invoked = str(int(_parse_time(created).timestamp() * 1000)) if created else "0"
    return JobSummary(meta.get("name", ""), invoked.zfill(15), suspended, state,
                      int(spec.get("completions") or 1), int(status.get("succeeded") or 0),
                      int(status.get("failed") or 0), int(status.get("active") or 0))


def _parse_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def to_start(jobs: list[JobSummary], max_concurrent: int) -> list[str]:
    """The queued Jobs to unsuspend now, oldest invocation first, so that at most
    `max_concurrent` unfinished Jobs are unsuspended. Never suspends a running Job (that
    would kill its pods); more running than the max just means nothing starts."""
    running = sum(1 for j in jobs if not j.finished and not j.suspended)
    slots = max(0, max_concurrent - running)
    queued = sorted((j for j in jobs if j.state == "Queued"), key=lambda j: (j.invoked_at, j.name))
    return [j.name for j in queued[:slots]]


def plan_invocation(template: dict[str, Any], existing: list[JobSummary], max_concurrent: int,
                    now: datetime | None = None, random: str | None = None,
                    instance_count: int = 1) -> tuple[str, bool]:
    """The new Job's name and whether it starts at once: it does only if, queued behind
    every Job already waiting, it would be picked for a free slot now."""
    now = now or utcnow()
    name = new_name(template, now, random, instance_count)
    me = JobSummary(name, str(int(now.timestamp() * 1000)).zfill(15), True, "Queued")
    return name, name in to_start([*existing, me], max_concurrent)
