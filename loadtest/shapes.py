"""Load shapes for skserve locustfiles: steady, ramp, spike, step (for an HPA) and soak.

One Locust shape class, `SkserveShape`, picks the shape from `--skserve-shape` and reads
`-u` (peak users), `-r` (spawn rate) and `-t` (duration); every shape ends at its duration.
The schedules themselves are pure functions in `skserve.loadtest.schedules`:

    steady  the peak from the start, held (default 60 s)
    ramp    1 user up to the peak over the first 80 % of the run, then held (60 s)
    spike   a fifth of the peak, the peak in the middle fifth, then back (60 s)
    step    `--skserve-steps` equal stairs up to the peak, to watch an HPA react (120 s)
    soak    the peak held for a long time, to see leaks and drift (30 min)

Import `SkserveShape` from here (or from `skserve.loadtest.shapes`) in your own locustfile.
"""

from skserve.loadtest.schedules import DEFAULT_DURATION_S, SHAPES, ShapeSpec, schedule
from skserve.loadtest.shapes import SkserveShape, spec_from_options

__all__ = ["DEFAULT_DURATION_S", "SHAPES", "ShapeSpec", "SkserveShape", "schedule",
           "spec_from_options"]
