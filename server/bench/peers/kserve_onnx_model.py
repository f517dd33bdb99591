"""KServe's Python model server running the example model's ONNX file with onnxruntime: a custom predictor
written the way KServe's docs write one (a kserve.Model whose load() opens the model and whose predict() answers
an Open Inference Protocol request), started with kserve.ModelServer and its own command-line flags.

    peers-venv-kserve-.../bin/python server/bench/peers/kserve_onnx_model.py \
        --model_name credit --model_path model.onnx --http_port 8080 --grpc_port 8081 [--workers 2]

Run by server/bench/peers.bench.ts; benchmarks only, never part of Loopline.
"""
import argparse
import uuid

import onnxruntime
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer, model_server


class OnnxModel(Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path
        self.load()

    def load(self) -> bool:
        # onnxruntime's default session options, as a custom predictor would open the file.
        self.session = onnxruntime.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_name = self.session.get_outputs()[0].name
        self.ready = True
        return self.ready

    # With --workers > 1, ModelServer pickles the registered models into each uvicorn worker process (spawned, not
    # forked); an onnxruntime session cannot be pickled, so each worker opens the file again.
    def __getstate__(self):
        state = self.__dict__.copy()
        del state["session"]
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.load()

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        features = payload.inputs[0].as_numpy()
        (probability,) = self.session.run([self.output_name], {self.input_name: features})
        output = InferOutput(name=self.output_name, shape=list(probability.shape), datatype="FP32")
        output.set_data_from_numpy(probability, binary_data=False)
        # The request's id when it has one; the protocol makes it optional, so a fresh one otherwise.
        return InferResponse(response_id=payload.id or str(uuid.uuid4()), model_name=self.name, infer_outputs=[output])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(parents=[model_server.parser])
    parser.add_argument("--model_path", required=True, help="the ONNX file")
    args, _ = parser.parse_known_args()
    ModelServer().start([OnnxModel(args.model_name, args.model_path)])
