"""KServe's Python ModelServer (V1 protocol), 2 uvicorn workers, gRPC and the per-request
latency log line off. KServe 0.16 always listens on 0.0.0.0 (it has no host option); the
benchmark binds it to 127.0.0.1 like every other server here, by giving uvicorn's Config
that host.

    python kserve_server.py --http_port P --workers 2   # POST /v1/models/demand:predict
                                                        # {"instances": [{...}]}
"""

from __future__ import annotations

import kserve
import uvicorn
from common import predict

_config = uvicorn.Config.__init__


def _loopback(self, *args, **kwargs) -> None:
    _config(self, *args, **{**kwargs, "host": "127.0.0.1"})


uvicorn.Config.__init__ = _loopback


class Pipeline(kserve.Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = True

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return {"predictions": predict(payload["instances"])}


if __name__ == "__main__":
    kserve.ModelServer().start([Pipeline("demand")])
