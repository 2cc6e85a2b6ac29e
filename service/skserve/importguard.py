"""Keeping pyarrow out of the serving workers, where nothing uses it.

pandas imports pyarrow whenever it is installed (`pandas.compat.pyarrow`), and the `serve`
extra installs it because batch scoring reads and writes Parquet with it. A serving worker
never needs it: rows arrive as JSON and become a NumPy-backed DataFrame. Yet the import
costs every worker about 60 MB of resident memory (BENCHMARKS.md, "Serving start-up and memory":
293 -> 232 MB per worker). So a worker of `skserve serve` refuses the import
before pandas is loaded, and pandas runs as it does wherever pyarrow is not installed
(`pandas.compat.HAS_PYARROW` is False; string columns are NumPy object columns either way
in pandas 2).

Only a BentoML serving worker does this (`bentoml.server_context.worker_index` is set), and
not when `SKSERVE_WORKER_PYARROW=1` (`skserve serve --pyarrow`): batch scoring, training,
the BentoML supervisor and any other process import pyarrow as usual. A model whose pickle
holds pyarrow objects (a pandas `ArrowDtype`, say) fails to load in a worker with an error
that names the switch.
"""

from __future__ import annotations

import importlib.abc
import os
import sys
from collections.abc import Mapping
from typing import Any

PYARROW_ENV = "SKSERVE_WORKER_PYARROW"
KEPT_OUT = "pyarrow"
WHY = ("pyarrow is kept out of skserve's serving workers, which never use it; serve a model "
       f"that needs it with `skserve serve --pyarrow` ({PYARROW_ENV}=1)")


class KeepOut(importlib.abc.MetaPathFinder):
    """First on `sys.meta_path`: refuses `name` and its submodules with ModuleNotFoundError
    (an ImportError, which optional imports such as pandas' catch). The name stays out of
    `sys.modules`, which is where scikit-learn and narwhals look for pyarrow; a `None` put
    there instead (Python's other way to block an import) made scikit-learn's
    `is_pyarrow_data` fail on every call."""

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> None:
        if fullname.partition(".")[0] == self.name:
            raise ModuleNotFoundError(f"No module named {fullname!r}: {self.why}",
                                      name=fullname)
        return None


def keep_out(name: str, why: str = WHY) -> bool:
    """Refuse every later import of the top-level package `name` (and of its submodules) in
    this process. Does nothing and returns False if `name` is already imported: refusing it
    after the fact would leave half a library behind."""
    if name in sys.modules:
        return False
    if not any(isinstance(f, KeepOut) and f.name == name for f in sys.meta_path):
        sys.meta_path.insert(0, KeepOut(name, why))
    return True


def kept_out(exc: ImportError) -> bool:
    """Whether `exc` is the refusal of an import of pyarrow or of one of its submodules."""
    return (exc.name or "").partition(".")[0] == KEPT_OUT and any(
        isinstance(f, KeepOut) and f.name == KEPT_OUT for f in sys.meta_path)


def keep_pyarrow_out_of_worker(env: Mapping[str, str] = os.environ) -> bool:
    """In a BentoML serving worker, unless `SKSERVE_WORKER_PYARROW` is 1, keep pyarrow out
    (call before anything imports pandas). Returns whether pyarrow is now kept out."""
    from bentoml import server_context

    if server_context.worker_index is None or env.get(PYARROW_ENV) == "1":
        return False
    return keep_out(KEPT_OUT)
