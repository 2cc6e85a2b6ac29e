"""A pipeline step that waits, as a feature lookup over the network does (tests/badmodels.py).

Its own module with nothing but scikit-learn's base: a server that loads a model holding it
imports this module (with the repository on PYTHONPATH) and nothing else from the tests.
"""

from __future__ import annotations

import random
import time
from typing import Any

from sklearn.base import BaseEstimator, TransformerMixin


class Wait(TransformerMixin, BaseEstimator):
    """Waits `low_s` to `high_s` seconds (uniform) per call, then passes the rows on."""

    def __init__(self, low_s: float = 0.0, high_s: float = 0.0):
        self.low_s = low_s
        self.high_s = high_s

    def fit(self, X: Any, y: Any = None) -> Wait:
        return self

    def transform(self, X: Any) -> Any:
        time.sleep(random.uniform(self.low_s, self.high_s))
        return X

    def __sklearn_is_fitted__(self) -> bool:
        return True  # nothing to learn
