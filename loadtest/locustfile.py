"""skserve's locustfile: users posting rows sampled from the target's schema.

Run it through `skserve loadtest` (SLO gate, per-version results, plots), or with plain
Locust, e.g.

    locust -f loadtest/locustfile.py --headless -H http://127.0.0.1:3000 -u 32 -r 8 -t 30s \\
        --skserve-shape ramp --skserve-mix predict=0.8,predict_batch=0.2 \\
        --skserve-slo-p95-ms 100

The users, options and event listeners live in `skserve.loadtest.users` and the shape in
`shapes.py` next to this file, so the installed package (the serving image) runs the same
test without this directory.
"""

from shapes import SkserveShape

from skserve.loadtest.users import SkserveUser

__all__ = ["SkserveShape", "SkserveUser"]
