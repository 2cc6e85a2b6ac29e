"""What every command shares for talking to people and for process setup.

Human messages go to stderr and listings to stdout (so they can be piped); the thread
environment is set before numpy and scikit-learn load OpenMP.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

# One BLAS/OpenMP thread per process: on a shared or CPU-limited machine a thread per core
# made one scikit-learn predict go from ~6 ms to seconds (see ../shared/TOOLCHAIN.md).
THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def set_thread_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Default the thread variables in `env` (default: this process's environment)."""
    target: Any = os.environ if env is None else env
    for key, value in THREAD_ENV.items():
        target.setdefault(key, value)
    return target


def say(message: str) -> None:
    """One human message on stderr."""
    print(message, file=sys.stderr, flush=True)


def stderr_console() -> Any:
    """A rich console on stderr (fixed width when stderr is not a terminal)."""
    from rich.console import Console

    return Console(stderr=True, width=None if sys.stderr.isatty() else 110)


def print_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A listing on stdout, like `kubectl get`: a header row and columns aligned with two
    spaces, so `| grep`, `| sort` and `column`-style tools work on it."""
    lines = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip())
