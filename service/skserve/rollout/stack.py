"""`skserve up` / `skserve down`: the whole rollout stack on one machine, no cluster.

One `skserve serve` per slot on a free 127.0.0.1 port, HAProxy in front (the layout of
routers/haproxy.py, runtime API on a unix socket) and Prometheus scraping every slot
(file-based service discovery: each target labelled with `slot` and `model_version`).
Everything it starts is recorded in `<dir>/stack.json` with its pid and start time, so
`skserve down` (or Ctrl-C on `skserve up`) stops exactly those processes and no other.

The folder (`--dir`, env SKSERVE_STACK_DIR, default `$BENTOML_HOME/stack`) holds:
stack.json, haproxy.cfg, versions.map, haproxy.sock, prometheus.yml, targets.json,
prometheus/ (its data), logs/, and rollouts/ (the local rollout store).

`LocalSlots` is the one-machine implementation of the slots protocol the controller uses
(deploy a version in a slot, scale a slot down, list what runs, where to send smoke).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..console import say
from ..errors import InvalidInput, Unavailable
from .routers import HEADER, SlotTarget
from .routers import haproxy as hap
from .store import write_atomic

SLOTS = ("blue", "green")
INSTALL_HINT = ("install them with: apt-get install -y --no-install-recommends haproxy "
                "prometheus (or: bash hack/test-deps.sh haproxy prometheus)")


def stack_dir(path: str | Path | None = None) -> Path:
    """`path`, else $SKSERVE_STACK_DIR, else $BENTOML_HOME/stack (~/bentoml/stack)."""
    if path:
        return Path(path)
    if os.environ.get("SKSERVE_STACK_DIR"):
        return Path(os.environ["SKSERVE_STACK_DIR"])
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml") / "stack"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc_alive, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc_alive():
            raise Unavailable(f"{what} exited before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise Unavailable(f"{what}: {url} did not answer within {timeout:g}s")


# --- processes: started detached, stopped only if they are still the ones we started --------

def spawn(argv: Sequence[str], log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start `argv` in its own session (Ctrl-C on a terminal does not reach it) with output
    to `log`; returns {pid, started, argv} for `stop`."""
    import psutil

    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(argv), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env, start_new_session=True)
    return {"pid": proc.pid, "started": psutil.Process(proc.pid).create_time(),
            "argv": list(argv), "log": str(log)}


def alive(proc: dict[str, Any] | None) -> bool:
    """True if the process recorded in `proc` still runs (same pid and start time)."""
    import psutil

    if not proc:
        return False
    try:
        p = psutil.Process(proc["pid"])
        return abs(p.create_time() - proc["started"]) < 0.5 and \
            p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def stop(proc: dict[str, Any] | None, timeout: float = 30.0) -> None:
    """SIGTERM the recorded process (in-flight requests finish), SIGKILL after `timeout`.
    A pid that now belongs to another process is left alone."""
    import psutil

    if not alive(proc):
        return
    p = psutil.Process(proc["pid"])
    with contextlib.suppress(psutil.Error):
        p.terminate()
        try:
            p.wait(timeout)
        except psutil.TimeoutExpired:
            p.kill()
            p.wait(5)


# --- the stack document ----------------------------------------------------------------------

class Stack:
    """The `stack.json` of one folder, read and updated under an flock."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.file = self.root / "stack.json"

    @contextlib.contextmanager
    def edit(self) -> Iterator[dict[str, Any]]:
        """Read, let the caller change, write atomically; one writer at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "stack.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            doc = self.read()
            yield doc
            write_atomic(self.file, json.dumps(doc, indent=1) + "\n")

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.file.read_text())
        except FileNotFoundError:
            return {}

    def require(self) -> dict[str, Any]:
        doc = self.read()
        if not doc or not alive(doc.get("haproxy")):
            raise Unavailable(f"no local stack is running in {self.root}: start one with "
                              "skserve up --slot blue=MODEL")
        return doc

    def write_targets(self, doc: dict[str, Any]) -> None:
        """Prometheus' file_sd targets for the slots that run (it re-reads the file)."""
        targets = [{"targets": [s["address"]], "labels": {"slot": name,
                                                          "model_version": s["model"]}}
                   for name, s in sorted(doc.get("slots", {}).items()) if s.get("address")]
        write_atomic(self.root / "targets.json", json.dumps(targets, indent=1) + "\n")


class LocalSlots:
    """The slots protocol on one machine: a slot is a `skserve serve` process."""

    def __init__(self, root: Path, workers: int = 1, ready_timeout_s: float = 120.0):
        self.stack = Stack(root)
        self.workers = workers
        self.ready_timeout_s = ready_timeout_s

    def targets(self) -> list[SlotTarget]:
        doc = self.stack.read()
        return [SlotTarget(name, s["model"], s["address"])
                for name, s in sorted(doc.get("slots", {}).items())
                if s.get("ready") and alive(s.get("process"))]

    def deploy(self, slot: str, version: str) -> SlotTarget:
        """Serve `version` in `slot` (stopping what the slot ran before) and wait until it is
        ready. Idempotent: a live process already serving `version` there is kept."""
        if slot not in SLOTS:
            raise InvalidInput(f"slot must be one of {SLOTS}, not {slot!r}")
        with self.stack.edit() as doc:
            current = doc.setdefault("slots", {}).get(slot)
            if current and current["model"] == version and alive(current.get("process")):
                entry = current
            else:
                if current:
                    stop(current.get("process"))
                port = free_port()
                log = self.stack.root / "logs" / f"{slot}-{port}.log"
                argv = [sys.executable, "-m", "skserve.cli", "serve", "--model", version,
                        "--port", str(port), "--workers", str(self.workers)]
                entry = {"model": version, "address": f"127.0.0.1:{port}", "ready": False,
                         "process": spawn(argv, log)}
                doc["slots"][slot] = entry  # recorded before waiting: `down` can stop it
        _wait_http(f"http://{entry['address']}/readyz", lambda: alive(entry["process"]),
                   self.ready_timeout_s, f"skserve serve {version} (log: "
                   f"{entry['process']['log']})")
        with self.stack.edit() as doc:
            doc["slots"][slot]["ready"] = True
            self.stack.write_targets(doc)
        return SlotTarget(slot, version, entry["address"])

    def scale_down(self, slot: str) -> None:
        """Stop the slot's server (SIGTERM: in-flight requests finish) and forget it."""
        with self.stack.edit() as doc:
            entry = doc.get("slots", {}).pop(slot, None)
            self.stack.write_targets(doc)
        if entry:
            stop(entry.get("process"))

    def smoke_target(self, slot: str) -> tuple[str, dict[str, str]]:
        """The URL and headers that reach `slot` alone: HAProxy with the version header."""
        doc = self.stack.require()
        return doc["url"], {HEADER: doc["slots"][slot]["model"]}


def router_for(doc: dict[str, Any]) -> hap.Router:
    return hap.Router(socket=doc["haproxy"]["socket"], version_map=doc["haproxy"]["map"],
                      slots=SLOTS)


def prometheus_config(root: Path, scrape_interval_s: float) -> str:
    return (f"# generated by skserve up\nglobal:\n  scrape_interval: {scrape_interval_s:g}s\n"
            f"  evaluation_interval: {scrape_interval_s:g}s\nscrape_configs:\n"
            "  - job_name: skserve\n"
            # the servers' own model_version label wins; bentoml_* series get the target's
            "    honor_labels: true\n"
            f"    file_sd_configs: [{{files: ['{root / 'targets.json'}'], "
            "refresh_interval: 5s}]\n")


def up(models: dict[str, str], root: Path, workers: int = 1, port: int | None = None,
       scrape_interval_s: float = 1.0, release: str = "local") -> dict[str, Any]:
    """Start the stack: slot servers, HAProxy, Prometheus. The first slot in `models` takes
    all traffic. Returns the stack document (URLs, pids). Stops what it started on failure."""
    missing = [b for b in ("haproxy", "prometheus") if shutil.which(b) is None]
    if missing:
        raise Unavailable(f"{' and '.join(missing)} not found on PATH; {INSTALL_HINT}")
    for slot in models:
        if slot not in SLOTS:
            raise InvalidInput(f"--slot {slot}=...: slot must be one of {SLOTS}")
    stack = Stack(root)
    old = stack.read()
    if old and any(alive(p) for p in _processes(old)):
        raise InvalidInput(f"a stack is already running in {root}: skserve down first")
    from .. import store

    tags = {slot: store.get_info(model).tag for slot, model in models.items()}
    root.mkdir(parents=True, exist_ok=True)
    if stack.file.exists():
        stack.file.unlink()
    live = next(iter(tags))
    with stack.edit() as doc:
        doc.update({"release": release, "owner": {"pid": os.getpid()}, "live": live,
                    "slots": {}, "started_at": time.time()})
    try:
        slots = LocalSlots(root, workers=workers)
        for slot, tag in tags.items():
            say(f"starting slot {slot}: skserve serve {tag}")
            slots.deploy(slot, tag)
        return _start_proxies(stack, root, port, scrape_interval_s, live)
    except BaseException:
        down(root)
        raise


def _start_proxies(stack: Stack, root: Path, port: int | None, scrape_interval_s: float,
                   live: str) -> dict[str, Any]:
    doc = stack.read()
    bind_port = port or free_port()
    version_map, sock = root / "versions.map", root / "haproxy.sock"
    hap.write_empty_map(version_map)
    sock.unlink(missing_ok=True)  # a socket left by an HAProxy that was killed
    addresses = {s: doc["slots"].get(s, {}).get("address") for s in SLOTS}
    (root / "haproxy.cfg").write_text(hap.render_config(
        f"127.0.0.1:{bind_port}", addresses, str(sock), str(version_map), {live: 100}))
    check = subprocess.run(["haproxy", "-c", "-q", "-f", str(root / "haproxy.cfg")],
                           capture_output=True, text=True)
    if check.returncode:
        raise Unavailable(f"haproxy rejected {root / 'haproxy.cfg'}: {check.stderr.strip()}")
    haproxy = spawn(["haproxy", "-db", "-f", str(root / "haproxy.cfg")], root / "logs" /
                    "haproxy.log")
    prom_port = free_port()
    stack.write_targets(doc)
    (root / "prometheus.yml").write_text(prometheus_config(root, scrape_interval_s))
    prometheus = spawn(["prometheus", f"--config.file={root / 'prometheus.yml'}",
                        f"--storage.tsdb.path={root / 'prometheus'}",
                        f"--web.listen-address=127.0.0.1:{prom_port}",
                        "--storage.tsdb.retention.time=1d"], root / "logs" / "prometheus.log")
    url, prom_url = f"http://127.0.0.1:{bind_port}", f"http://127.0.0.1:{prom_port}"
    with stack.edit() as d:
        d.update({"url": url, "prometheus_url": prom_url, "scrape_interval_s": scrape_interval_s,
                  "haproxy": {**haproxy, "socket": str(sock), "map": str(version_map),
                              "config": str(root / "haproxy.cfg")},
                  "prometheus": prometheus})
    deadline = time.monotonic() + 30
    while True:
        try:
            hap.runtime(str(sock), "show info")
            break
        except Unavailable:
            if not alive(haproxy) or time.monotonic() > deadline:
                raise Unavailable(f"haproxy did not start; see {haproxy['log']}") from None
            time.sleep(0.1)
    router = router_for(stack.read())
    router.reconcile(LocalSlots(root).targets())
    _wait_http(f"{prom_url}/-/ready", lambda: alive(prometheus), 60, "prometheus")
    return stack.read()


def _processes(doc: dict[str, Any]) -> list[dict[str, Any]]:
    procs = [s.get("process") for s in doc.get("slots", {}).values()]
    return [p for p in (*procs, doc.get("haproxy"), doc.get("prometheus")) if p]


def down(root: Path) -> int:
    """Stop every process the stack in `root` recorded (slots first, so HAProxy sees them
    drain); returns how many were running."""
    stack = Stack(root)
    doc = stack.read()
    if not doc:
        return 0
    procs = _processes(doc)
    running = sum(alive(p) for p in procs)
    for proc in procs:
        stop(proc)
    with stack.edit() as d:
        d["slots"], d["stopped_at"] = {}, time.time()
        d.pop("haproxy", None)
        d.pop("prometheus", None)
    owner = doc.get("owner", {}).get("pid")
    if owner and owner != os.getpid():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if _is_up_process(owner):
                os.kill(owner, signal.SIGTERM)
    return running


def _is_up_process(pid: int) -> bool:
    import psutil

    try:
        cmd = psutil.Process(pid).cmdline()
    except psutil.Error:
        return False
    return any("skserve" in c for c in cmd) and "up" in cmd


def describe(doc: dict[str, Any]) -> str:
    lines = [f"skserve stack (release {doc.get('release')}) up:",
             f"  traffic   {doc['url']}   (x-model-version: <version> forces a slot)",
             f"  metrics   {doc['prometheus_url']}"]
    for name, s in sorted(doc.get("slots", {}).items()):
        lines.append(f"  slot {name:<5} http://{s['address']}  {s['model']}"
                     + ("  (live)" if name == doc.get("live") else ""))
    lines.append(f"  HAProxy runtime API: {doc['haproxy']['socket']}")
    return "\n".join(lines)
