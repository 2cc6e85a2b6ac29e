"""Load shape schedules: time → (users, spawn rate), None at the end (pure)."""

from __future__ import annotations

import pytest

from skserve.loadtest.schedules import SHAPES, ShapeSpec, parse_duration, schedule


@pytest.mark.parametrize("name", SHAPES)
def test_every_shape_ends_at_its_duration(name):
    spec = ShapeSpec(name, users=20, spawn_rate=5, duration_s=30)
    assert schedule(spec, 29.9) is not None
    assert schedule(spec, 30.0) is None
    assert schedule(spec, 1e9) is None
    users = [schedule(spec, t / 10)[0] for t in range(300)]  # type: ignore[index]
    assert max(users) == 20 and min(users) >= 1


def test_steady_and_soak_hold_the_peak():
    for name in ("steady", "soak"):
        spec = ShapeSpec(name, users=8, spawn_rate=2, duration_s=10)
        assert schedule(spec, 0) == (8, 2) and schedule(spec, 9.5) == (8, 2)


def test_ramp_climbs_then_holds():
    spec = ShapeSpec("ramp", users=100, spawn_rate=1, duration_s=100)
    assert schedule(spec, 0)[0] == 1  # type: ignore[index]
    assert schedule(spec, 40)[0] == 50  # type: ignore[index]
    assert schedule(spec, 80)[0] == 100 and schedule(spec, 99)[0] == 100  # type: ignore[index]
    assert schedule(spec, 10)[1] >= 100 / 80  # spawn fast enough to follow the slope  # type: ignore[index]


def test_spike_is_in_the_middle_fifth():
    spec = ShapeSpec("spike", users=50, spawn_rate=1, duration_s=100)
    assert schedule(spec, 39)[0] == 10  # type: ignore[index]
    assert schedule(spec, 40) == (50, 50)
    assert schedule(spec, 59)[0] == 50  # type: ignore[index]
    assert schedule(spec, 60)[0] == 10  # type: ignore[index]


def test_step_has_equal_stairs():
    spec = ShapeSpec("step", users=40, spawn_rate=4, duration_s=120, steps=4)
    assert [schedule(spec, t)[0] for t in (0, 29, 30, 60, 90, 119)] == [10, 10, 20, 30, 40, 40]  # type: ignore[index]


def test_bad_specs_are_rejected():
    with pytest.raises(ValueError, match="unknown shape"):
        ShapeSpec("wave", 1, 1, 10)
    with pytest.raises(ValueError):
        ShapeSpec("steady", 0, 1, 10)
    with pytest.raises(ValueError):
        ShapeSpec("steady", 1, 1, 0)


@pytest.mark.parametrize(("text", "seconds"), [
    ("30s", 30), ("2m", 120), ("1h30m", 5400), ("1m30s", 90), ("45", 45), ("0.5s", 0.5),
])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "0s", "25h"])
def test_parse_duration_rejects(text):
    with pytest.raises(ValueError):
        parse_duration(text)
