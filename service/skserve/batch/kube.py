"""The Kubernetes API edge of batch jobs: read the chart's template, create, list, start and
read back Jobs. Decisions are made in `jobs` (pure); this module only moves data."""

from __future__ import annotations

import os
from typing import Any

from ..errors import InvalidInput, Unavailable
from ..kubeapi import api_errors
from . import jobs


class Cluster:
    """The batch Jobs of one helm release in one namespace."""

    def __init__(self, namespace: str, release: str, context: str | None = None):
        from kubernetes import client, config

        if os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            config.load_incluster_config()
        else:
            try:
                config.load_kube_config(context=context)
            except config.ConfigException as exc:
                raise Unavailable(f"no Kubernetes configuration: {exc}") from exc
        self.namespace = namespace
        self.release = release
        self.api = client.ApiClient()
        self.core = client.CoreV1Api(self.api)
        self.batch = client.BatchV1Api(self.api)

    def _plain(self, obj: Any) -> dict[str, Any]:
        """An API object as the camelCase dict the pure functions take."""
        return self.api.sanitize_for_serialization(obj)

    @property
    def _selector(self) -> str:
        return f"{jobs.BATCH_LABEL}=true,app.kubernetes.io/instance={self.release}"

    def batch_template(self) -> tuple[dict[str, Any], int]:
        """The release's `<fullname>-batch` ConfigMap: the Job template and the max."""
        selector = f"app.kubernetes.io/component=batch,app.kubernetes.io/instance={self.release}"
        with api_errors("reading the batch ConfigMap"):
            found = self.core.list_namespaced_config_map(self.namespace, label_selector=selector)
        for cm in found.items:
            if cm.metadata.name.endswith("-batch") and "job.yaml" in (cm.data or {}):
                return jobs.config_map_template(self._plain(cm))
        raise InvalidInput(f"no batch ConfigMap for release {self.release!r} in namespace "
                          f"{self.namespace!r} (is batch.enabled set in the chart?)")

    def list_jobs(self) -> list[jobs.JobSummary]:
        with api_errors("listing batch Jobs"):
            found = self.batch.list_namespaced_job(self.namespace, label_selector=self._selector)
        return [jobs.summarize(self._plain(j)) for j in found.items]

    def create_job(self, manifest: dict[str, Any]) -> None:
        with api_errors(f"creating Job {manifest['metadata']['name']}"):
            self.batch.create_namespaced_job(self.namespace, manifest)

    def run_queue(self, max_concurrent: int) -> list[str]:
        """One queue pass: unsuspend what `jobs.to_start` picks; returns those names."""
        names = jobs.to_start(self.list_jobs(), max_concurrent)
        for name in names:
            with api_errors(f"starting Job {name}"):
                self.batch.patch_namespaced_job(name, self.namespace,
                                                {"spec": {"suspend": False}})
        return names

    def job_status(self, name: str) -> tuple[jobs.JobSummary, dict[str, Any]]:
        with api_errors(f"reading Job {name}"):
            job = self._plain(self.batch.read_namespaced_job(name, self.namespace))
        status = job.get("status") or {}
        meta = job.get("metadata") or {}
        detail = {
            "input": (meta.get("annotations") or {}).get(jobs.INPUT_ANNOTATION),
            "output": (meta.get("annotations") or {}).get(jobs.OUTPUT_ANNOTATION),
            "completedIndexes": status.get("completedIndexes", ""),
            "failedIndexes": status.get("failedIndexes", ""),
            "startTime": status.get("startTime"),
            "completionTime": status.get("completionTime"),
            "conditions": [f"{c.get('type')}={c.get('status')} {c.get('reason') or ''}".strip()
                           for c in status.get("conditions") or []],
        }
        return jobs.summarize(job), detail

    def job_logs(self, name: str, tail: int | None = None) -> list[tuple[str, str]]:
        """(completion index, log text) for each pod of the Job, in index order."""
        with api_errors(f"reading the logs of Job {name}"):
            pods = self.core.list_namespaced_pod(
                self.namespace, label_selector=f"batch.kubernetes.io/job-name={name}").items
            if not pods:
                pods = self.core.list_namespaced_pod(
                    self.namespace, label_selector=f"job-name={name}").items
            out = []
            for pod in pods:
                index = (pod.metadata.annotations or {}).get(
                    "batch.kubernetes.io/job-completion-index", "?")
                text = self.core.read_namespaced_pod_log(
                    pod.metadata.name, self.namespace, container=jobs.CONTAINER,
                    tail_lines=tail)
                out.append((index, text))
        return sorted(out, key=lambda item: (len(item[0]), item[0]))
