"""The names Kubernetes derives from the ones the chart sets, and the limits they must keep.

From the Kubernetes 1.35 sources: a Deployment's ReplicaSet is `<deployment>-<pod-template-
hash>` (the hash is a uint32 in a safe alphabet: up to 10 characters), a controller's pods are
`<owner>-<5 random>` (generateName: the API server cuts the base to 58 characters, so a name
that does not fit loses its tail, hash included, without an error), an Indexed Job's pods are
`<job>-<index>-<5 random>` with hostname `<job>-<index>`, which the API server checks is a DNS
label when the Job is created, and every Job's name is a label value of its pods (job-name).
Here every derived name must fit whole: nothing cut, nothing refused.
"""

from __future__ import annotations

import re

MAX_LABEL = 63
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
POD_TEMPLATE_HASH = "x" * 10
RANDOM = "x" * 5
MAX_COMPLETIONS = 100_000  # an Indexed Job with backoffLimitPerIndex: at most 10^5 indexes


def derived(kind: str, name: str, completions: int | None = None) -> list[tuple[str, str]]:
    """(what, name) for the object's own name and every name Kubernetes makes from it."""
    out = [(kind, name)]
    if kind == "Deployment":
        rs = f"{name}-{POD_TEMPLATE_HASH}"
        out += [("its ReplicaSet", rs), ("its pods", f"{rs}-{RANDOM}")]
    elif kind == "Job" and completions is None:
        out += [("its pods", f"{name}-{RANDOM}"), ("its pods' job-name label", name)]
    elif kind == "Job":
        last = f"{name}-{completions - 1}"
        out += [("its last pod's hostname", last), ("its last pod", f"{last}-{RANDOM}"),
                ("its pods' job-name label", name)]
    return out


def problems(kind: str, name: str, completions: int | None = None) -> list[str]:
    """What is wrong with the name or a derived one: too long, or not a DNS label (Services:
    a DNS-1035 label, starting with a letter)."""
    found = []
    for what, n in derived(kind, name, completions):
        pattern = DNS1035_LABEL if kind == "Service" and what == kind else DNS1123_LABEL
        if len(n) > MAX_LABEL:
            found.append(f"{kind} {name}: {what} {n!r} has {len(n)} > {MAX_LABEL} characters")
        elif not pattern.match(n):
            found.append(f"{kind} {name}: {what} {n!r} is not a DNS label")
    return found


def label_problems(where: str, labels: dict[str, str]) -> list[str]:
    return [f"{where}: label {k}={v!r} is not a label value (at most 63 characters)"
            for k, v in labels.items() if len(str(v)) > MAX_LABEL or not LABEL_VALUE.match(str(v))]
