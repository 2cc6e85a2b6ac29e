"""KServe's Python ModelServer (V1 protocol), 2 uvicorn workers, gRPC and the per-request
latency log line off.

    python kserve_server.py --http_port P --workers 2   # POST /v1/models/demand:predict
                                                        # {"instances": [{...}]}
"""

from __future__ import annotations

import kserve
from common import predict


class Pipeline(kserve.Model):
    def __init__(self, name: str):
        super().__init__(name)
        self.ready = True

    def predict(self, payload: dict, headers: dict | None = None) -> dict:
        return {"predictions": predict(payload["instances"])}


if __name__ == "__main__":
    kserve.ModelServer().start([Pipeline("demand")])
