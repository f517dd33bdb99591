"""Writes an MLServer model folder serving a scikit-learn LogisticRegression with exactly the weights of the
example model's ONNX file (passed in as JSON: the float32 weights and bias the ONNX initializers hold), so that
mlserver-sklearn answers predict_proba[:, 1] = sigmoid(x . weights + bias), the probability our predictor answers.

    peers-venv-mlserver-.../bin/python server/bench/peers/make_sklearn_model.py <dir> '<{"weights": [...], "bias": b}>'

Writes <dir>/model.joblib and <dir>/model-settings.json (mlserver_sklearn.SKLearnModel, as MLServer's docs
configure it). Run by server/bench/peers.bench.ts; benchmarks only, never part of Loopline.
"""
import json
import os
import sys

import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

directory, coefficients = sys.argv[1], json.loads(sys.argv[2])
weights = np.asarray(coefficients["weights"], dtype=np.float64)

model = LogisticRegression()
# Fitted attributes set directly: the model is defined by the ONNX file's weights, not trained again.
model.classes_ = np.array([0, 1])
model.coef_ = weights.reshape(1, -1)
model.intercept_ = np.array([float(coefficients["bias"])])
model.n_features_in_ = weights.size
model.n_iter_ = np.array([0])

os.makedirs(directory, exist_ok=True)
joblib.dump(model, os.path.join(directory, "model.joblib"))
with open(os.path.join(directory, "model-settings.json"), "w") as f:
    json.dump({"name": "credit", "implementation": "mlserver_sklearn.SKLearnModel", "parameters": {"uri": "./model.joblib", "version": "1"}}, f)
