"""The errors skserve raises on purpose, with their exit codes and HTTP statuses.

Everything a user can cause (a bad file, an unknown model, a failed job, a rolled-back
rollout) is one of these; the CLI prints its message on one line and exits with its code,
and anything else is a bug that keeps its traceback. Each class also derives from the
built-in exception it refines, so `except ValueError` and friends keep working.

Exit codes: 0 success, 1 a bug (uncaught exception), 2 bad input or usage, 3 a job that ran
and failed, 4 a rollout that failed or was aborted, 5 a service skserve needs (cluster,
Prometheus, a server) could not be reached or refused.
"""

from __future__ import annotations


class SkserveError(Exception):
    """Base class: a failure with a message meant for the user."""

    exit_code = 2
    http_status = 500


class InvalidInput(SkserveError, ValueError):
    """Input that cannot be used: a file, a column, a value, an option (names what and where)."""

    exit_code = 2
    http_status = 400


class InputNotFound(InvalidInput, FileNotFoundError):
    """A file or folder named on the command line does not exist."""


class ModelNotFound(SkserveError, LookupError):
    """A model tag that is not in the model store."""

    exit_code = 2
    http_status = 404


class TrainingFailed(SkserveError, RuntimeError):
    """Training ran but produced nothing worth saving (e.g. no model beat the baselines)."""

    exit_code = 3


class JobFailed(SkserveError, RuntimeError):
    """A batch job ran and failed (e.g. more bad rows than its error threshold)."""

    exit_code = 3


class RolloutFailed(SkserveError, RuntimeError):
    """A rollout was aborted or rolled back: the new version did not pass its analysis."""

    exit_code = 4


class Unavailable(SkserveError, RuntimeError):
    """Something skserve talks to (Kubernetes, Prometheus, a server, a tool) failed or is
    missing."""

    exit_code = 5
    http_status = 503


class NotInstalled(Unavailable, ImportError):
    """A command needs an optional extra that is not installed (`skserve.extras.require`)."""
