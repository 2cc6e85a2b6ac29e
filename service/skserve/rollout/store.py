"""Where a release's rollout lives between controller runs: a compare-and-swap document, a
lease, and an event log.

The protocol (`StateStore`) is what the controller and the CLI use; `LocalStore` implements
it with files for one machine, and a Kubernetes store (a ConfigMap per release whose
resourceVersion is the version, a coordination.k8s.io Lease, Events) implements the same
methods against the API server.

- `read(release)` → `Record(doc, version)` or None; `write(release, doc, version)` replaces
  the document only if it is still at `version` (None: only if there is none) and returns
  the new version, else raises `Conflict`. Every writer (controller, `rollout promote` …)
  goes through it, so no update is lost.
- `acquire(release, holder, ttl_s)` takes or renews the lease when it is free, expired or
  already the holder's; False when another live holder has it. A controller renews it every
  loop and stops acting the moment it cannot: two controllers never both act. The lease is
  separate from the document (as a Kubernetes Lease is), so renewals do not bump the version.
- `event(release, event)` appends one event (locally a JSON-lines file).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ..errors import InvalidInput

_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,51}[a-z0-9])?")


def check_release(release: str) -> str:
    """A release name usable as a file and a Kubernetes object name, or InvalidInput."""
    if not _NAME.fullmatch(release):
        raise InvalidInput(f"release name {release!r}: use lowercase letters, digits and '-' "
                           "(at most 53 characters, as Helm does)")
    return release


class Conflict(Exception):
    """The document changed since it was read (someone else wrote it): read again."""


@dataclass(frozen=True)
class Record:
    doc: dict[str, Any]
    version: str


class StateStore(Protocol):
    def read(self, release: str) -> Record | None: ...
    def write(self, release: str, doc: dict[str, Any], version: str | None) -> str: ...
    def acquire(self, release: str, holder: str, ttl_s: float) -> bool: ...
    def release_lease(self, release: str, holder: str) -> None: ...
    def lease_holder(self, release: str) -> str | None: ...
    def event(self, release: str, event: dict[str, Any]) -> None: ...
    def events(self, release: str) -> list[dict[str, Any]]: ...


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so readers see the old or the new file, never half of one."""
    from ..batch.output import atomic_path  # lazily: that module brings pyarrow

    with atomic_path(path) as tmp:
        tmp.write_text(text)


class LocalStore:
    """One folder: `<release>.json` (the document with its version), `<release>.lease.json`,
    `<release>.events.jsonl`; `<release>.lock` is an flock held only for the few
    microseconds of a compare-and-swap (the kernel drops it if the process dies)."""

    def __init__(self, root: Path, clock=time.time):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.clock = clock

    @contextlib.contextmanager
    def _locked(self, release: str) -> Iterator[None]:
        with open(self.root / f"{check_release(release)}.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _load(self, path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as exc:
            raise InvalidInput(f"{path}: not valid JSON ({exc}); it was not written by "
                               "skserve (writes are atomic)") from exc

    def read(self, release: str) -> Record | None:
        raw = self._load(self.root / f"{check_release(release)}.json")
        return None if raw is None else Record(raw["doc"], str(raw["version"]))

    def write(self, release: str, doc: dict[str, Any], version: str | None) -> str:
        path = self.root / f"{check_release(release)}.json"
        with self._locked(release):
            current = self._load(path)
            now_at = None if current is None else str(current["version"])
            if now_at != version:
                raise Conflict(f"{path}: at version {now_at}, not {version}")
            new = str(int(now_at or 0) + 1)
            write_atomic(path, json.dumps({"version": new, "doc": doc}, indent=1) + "\n")
            return new

    def acquire(self, release: str, holder: str, ttl_s: float) -> bool:
        path = self.root / f"{check_release(release)}.lease.json"
        with self._locked(release):
            lease = self._load(path)
            now = self.clock()
            if lease and lease["holder"] != holder and now < lease["renewed_at"] + lease["ttl_s"]:
                return False
            write_atomic(path, json.dumps({"holder": holder, "renewed_at": now,
                                            "ttl_s": ttl_s}) + "\n")
            return True

    def release_lease(self, release: str, holder: str) -> None:
        path = self.root / f"{check_release(release)}.lease.json"
        with self._locked(release):
            lease = self._load(path)
            if lease and lease["holder"] == holder:
                path.unlink()

    def lease_holder(self, release: str) -> str | None:
        """The live holder of the lease, or None when it is free or expired."""
        lease = self._load(self.root / f"{check_release(release)}.lease.json")
        if lease and self.clock() < lease["renewed_at"] + lease["ttl_s"]:
            return lease["holder"]
        return None

    def event(self, release: str, event: dict[str, Any]) -> None:
        with open(self.root / f"{check_release(release)}.events.jsonl", "a") as f:
            f.write(json.dumps(event, default=str) + "\n")

    def events(self, release: str) -> list[dict[str, Any]]:
        path = self.root / f"{check_release(release)}.events.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError):  # a line cut by a kill -9
                out.append(json.loads(line))
        return out
