"""The model as `mlflow.pyfunc` and `mlflow models serve` load it: one MLflow pyfunc that holds
the fine-tuned classifier (its Hugging Face folder: weights, the config with the label map,
the tokenizer) and scores a request of any size in bounded memory.

Written as a PythonModel rather than MLflow's transformers flavor because that flavor's predict
runs the pipeline on a whole request at once, one text at a time, and answers a request without
texts with a server error (500); here the texts are checked first (a 400 with one line naming
what to send), then tokenized and scored `chunk_rows` at a time, batched by length, so memory
grows with the answer (four scores a text), not with the request's tokens. The answer has the
transformers pipeline's shape (for each text every class with its score, highest first), so
clients of the earlier flavor read it unchanged.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

# Deferred imports: the runtime, in load_context (the module is imported to log the model, and
# by `register` for nothing else); torch and transformers only where PyTorch scores.

SEND = ('send {"inputs": ["a text", ...]} or {"dataframe_records": [{"text": "a text"}, ...]}')


def bad_request(problem: str) -> MlflowException:
    """The error the scoring server answers 400 with, its message one line."""
    return MlflowException(f"{problem}: {SEND}", error_code=INVALID_PARAMETER_VALUE)


def request_texts(model_input: Any) -> list[str]:
    """The texts of a request, as MLflow hands them to predict: a list of strings, or a frame
    with a `text` column (or one unnamed column, from {"inputs": [...]})."""
    if isinstance(model_input, pd.DataFrame):
        if "text" in model_input.columns:
            column = model_input["text"]
        elif len(model_input.columns) == 1 and not isinstance(model_input.columns[0], str):
            column = model_input.iloc[:, 0]
        else:
            raise bad_request(f"no 'text' field in the request (it has "
                              f"{', '.join(map(str, model_input.columns))[:80]})")
        texts = column.tolist()
    elif isinstance(model_input, (list, tuple, np.ndarray, pd.Series)):
        texts = list(model_input)
    elif isinstance(model_input, str):
        texts = [model_input]
    else:
        raise bad_request(f"a request of {type(model_input).__name__} holds no texts")
    if not texts:
        raise bad_request("the request holds no texts")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise bad_request(f"text {i} is {type(text).__name__}, not a string")
    return texts


def ranked(probs: np.ndarray, labels: list[str]) -> list[list[dict[str, float | str]]]:
    """For each row of class probabilities, every class with its score, highest first."""
    order = np.argsort(-probs, axis=1, kind="stable")
    return [[{"label": labels[j], "score": float(row[j])} for j in idx]
            for row, idx in zip(probs, order, strict=True)]


class TextClassifier(mlflow.pyfunc.PythonModel):
    """Loads the classifier folder logged as the artifact `classifier` (and the ONNX file
    logged as `onnx`, where train's parity gate chose one); `model_config` holds `max_length`
    (the truncation training used), `batch_size`, `chunk_rows`, `precision` and `runtime`
    (pytorch, onnx, onnx-int8 or openvino; `scorer` in versions logged before that name, none
    and PyTorch only in versions logged before the parity gate) and, for openvino,
    `inference_precision`."""

    def load_context(self, context) -> None:
        from agnews.model.runtimes import logged_runtime, open_classifier

        config = context.model_config or {}
        onnx = context.artifacts.get("onnx")
        self.clf = open_classifier(Path(context.artifacts["classifier"]),
                                   Path(onnx) if onnx else None,
                                   logged_runtime(config),
                                   int(config.get("max_length", 512)),
                                   str(config.get("precision", "auto")),
                                   logged_precision=str(config.get("inference_precision",
                                                                   "fp32")))
        self.batch_size = int(config.get("batch_size", 64))
        self.chunk_rows = int(config.get("chunk_rows", 1024))

    # MLflow hands predict a frame, whatever the request's shape, after checking it against
    # the logged signature (one string column); a frame type hint says so and asks MLflow for
    # no validation of its own on top (without a hint it warns at every log and load).
    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from agnews.model.padding import PAD_MULTIPLE

        texts = request_texts(model_input)
        rows: list[list[dict]] = []
        for start in range(0, len(texts), self.chunk_rows):
            # widths rounded to PAD_MULTIPLE: a few shapes in all, so memory stays flat
            # from request to request
            rows += ranked(self.clf.probabilities(texts[start:start + self.chunk_rows],
                                                  self.batch_size, multiple=PAD_MULTIPLE),
                           self.clf.labels)
        return pd.DataFrame(rows)
