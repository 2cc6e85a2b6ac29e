"""The local rollout store: compare-and-swap writes, a lease that expires, events, and real
concurrent writers in separate processes."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from skserve.errors import InvalidInput
from skserve.rollout.store import Conflict, LocalStore, check_release


class Clock:
    def __init__(self, t: float = 1000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_compare_and_swap(tmp_path):
    store = LocalStore(tmp_path)
    assert store.read("demo") is None
    v1 = store.write("demo", {"n": 1}, None)
    with pytest.raises(Conflict):
        store.write("demo", {"n": 2}, None)  # it exists now
    v2 = store.write("demo", {"n": 2}, v1)
    with pytest.raises(Conflict):
        store.write("demo", {"n": 3}, v1)  # stale version: the update is not lost
    assert store.read("demo").doc == {"n": 2} and store.read("demo").version == v2


def test_lease_is_exclusive_until_it_expires(tmp_path):
    clock = Clock()
    store = LocalStore(tmp_path, clock=clock)
    assert store.acquire("demo", "a", ttl_s=15)
    assert not store.acquire("demo", "b", ttl_s=15)
    assert store.lease_holder("demo") == "a"
    clock.t += 10
    assert store.acquire("demo", "a", ttl_s=15)  # renewal
    clock.t += 14
    assert not store.acquire("demo", "b", ttl_s=15)
    clock.t += 2  # a went silent (killed): the lease expires
    assert store.lease_holder("demo") is None
    assert store.acquire("demo", "b", ttl_s=15) and store.lease_holder("demo") == "b"
    store.release_lease("demo", "a")  # not a's any more: nothing happens
    assert store.lease_holder("demo") == "b"
    store.release_lease("demo", "b")
    assert store.acquire("demo", "c", ttl_s=15)


def test_events_survive_a_torn_last_line(tmp_path):
    store = LocalStore(tmp_path)
    store.event("demo", {"reason": "StepStarted"})
    store.event("demo", {"reason": "AnalysisPassed"})
    with open(tmp_path / "demo.events.jsonl", "a") as f:
        f.write('{"reason": "Promo')  # killed mid-write
    assert [e["reason"] for e in store.events("demo")] == ["StepStarted", "AnalysisPassed"]


def test_a_corrupt_document_is_named(tmp_path):
    (tmp_path / "demo.json").write_text("{not json")
    with pytest.raises(InvalidInput, match=r"demo\.json"):
        LocalStore(tmp_path).read("demo")


@pytest.mark.parametrize("name", ["Demo", "a_b", "-x", "x" * 60, "../etc"])
def test_release_names_are_checked(name):
    with pytest.raises(InvalidInput, match="release name"):
        check_release(name)


def _increment(root: str, n: int, results) -> None:
    store = LocalStore(Path(root))
    done = 0
    while done < n:
        record = store.read("demo")
        try:
            store.write("demo", {"count": record.doc["count"] + 1}, record.version)
            done += 1
        except Conflict:
            continue
    results.put(done)


def _take_lease(root: str, who: str, results) -> None:
    results.put((who, LocalStore(Path(root)).acquire("demo", who, ttl_s=60)))


def test_concurrent_processes_lose_no_update_and_only_one_holds_the_lease(tmp_path):
    store = LocalStore(tmp_path)
    store.write("demo", {"count": 0}, None)
    ctx = multiprocessing.get_context("fork")
    results = ctx.Queue()
    procs = [ctx.Process(target=_increment, args=(str(tmp_path), 50, results))
             for _ in range(4)]
    procs += [ctx.Process(target=_take_lease, args=(str(tmp_path), f"c{i}", results))
              for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    outcomes = [results.get(timeout=5) for _ in procs]
    assert store.read("demo").doc == {"count": 200}
    winners = [o for o in outcomes if isinstance(o, tuple) and o[1]]
    assert len(winners) == 1
    assert json.loads((tmp_path / "demo.lease.json").read_text())["holder"] == winners[0][0]


def test_status_document_gives_the_latest_events_or_all_of_this_rollouts(tmp_path):
    """`rollout status --json` keeps 15 events by default; `--events 0` gives every event of
    the current rollout (a handover early in a long rollout must stay visible) and none of
    an earlier rollout's."""
    from skserve.rollout.status import document

    store = LocalStore(tmp_path)
    store.event("r", {"at": 5.0, "reason": "Promoted"})  # an earlier rollout's
    store.write("r", {"spec": {}, "state": {"started_at": 10.0}}, None)
    for i in range(20):
        store.event("r", {"at": 10.0 + i, "reason": "Paused", "controller": f"c{i // 10}"})
    latest = document(store, "r")["events"]
    assert [e["at"] for e in latest] == [15.0 + i for i in range(15)]
    every = document(store, "r", events=0)["events"]
    assert [e["at"] for e in every] == [10.0 + i for i in range(20)]
    assert {e["controller"] for e in every} == {"c0", "c1"}
