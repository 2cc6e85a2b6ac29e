"""Load testing for skserve: Locust users and shapes, SLO gates, per-version results,
reports with plots, and the benchmark harness the `bench-*` scripts share.

The pure parts (`schedules`, `sampling`, `slo`, `versions`) import neither Locust nor
matplotlib, so they are tested without servers; `users` and `report` are the Locust and
plotting edges, `harness` and `cli` run processes.
"""
