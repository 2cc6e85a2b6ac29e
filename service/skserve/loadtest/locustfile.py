"""The locustfile `skserve loadtest` runs when installed (e.g. in the serving image).

The repository's `loadtest/locustfile.py` is the same two imports; copy either to start
your own.
"""

from skserve.loadtest.shapes import SkserveShape
from skserve.loadtest.users import SkserveUser

__all__ = ["SkserveShape", "SkserveUser"]
