"""MLServer 1.7: a custom runtime that decodes the request with the pandas codec (one input
per column, as MLServer's own clients send a table) and answers with the numpy codec.
`bench_serve.py` writes the settings: 2 parallel workers, adaptive batching on (64 rows /
10 ms) or off.
"""

from __future__ import annotations

from common import PIPELINE, typed
from mlserver import MLModel
from mlserver.codecs import NumpyCodec, PandasCodec
from mlserver.types import InferenceRequest, InferenceResponse


class PipelineRuntime(MLModel):
    async def load(self) -> bool:
        self.pipeline = PIPELINE
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        frame = typed(self.decode_request(payload, default_codec=PandasCodec))
        values = self.pipeline.predict(frame)
        return InferenceResponse(model_name=self.name,
                                 outputs=[NumpyCodec.encode_output("predict", values)])
