"""Logging the fine-tuned classifier as an MLflow model, and loading it back.

Kept apart from train so evaluate, register and predict load exactly what train wrote,
through one definition of its name, inference settings and the code that serves it
(`agnews.model.served`), and score texts the same way (truncated as logged, batched by
length, probabilities from our own forward pass).
"""
from __future__ import annotations

import tempfile
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np

from agnews import PROJECT_DIR
from agnews.errors import UserError
from agnews.model.runtimes import Classifier, logged_runtime, open_classifier, open_torch

# Deferred imports: torch, transformers and accelerate load where a model is logged or scored with
# PyTorch: a model that scores through ONNX Runtime loads without them.

if TYPE_CHECKING:
    from agnews.model.onnx_export import RuntimeChoice

MODEL_NAME = "model"
ARTIFACT = "classifier"  # the Hugging Face folder inside the logged model's artifacts
ONNX_ARTIFACT = "onnx"   # the ONNX file train's parity gate chose, where it chose one
INPUT_EXAMPLE = ["Stocks rally as oil prices fall for a third day",
                 "Underdogs win the cup final in extra time"]


def pip_requirements(scorer: str = "pytorch") -> list[str]:
    """Exact versions of what the model needs to load; explicit because MLflow's inference
    of them imports torchvision, which this stack does not install. PyTorch stays in the list
    for a graph runtime too: it is the fallback where the ONNX file does not open."""
    import accelerate
    import transformers

    needs = [f"torch=={torch_version()}", f"transformers=={transformers.__version__}",
             f"accelerate=={accelerate.__version__}"]
    if scorer.startswith("onnx"):
        import onnxruntime

        needs.append(f"onnxruntime=={onnxruntime.__version__}")
    elif scorer == "openvino":
        needs.append(f"openvino=={version('openvino')}")  # not imported: see openvino_runtime
    return needs


def torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def model_code() -> str:
    """The model's code, as MLflow logs a model from code: run as the model loads, it hands
    MLflow the classifier of `agnews.model.served`, so loading runs the agnews code that
    travels with the model instead of unpickling an object (which could run any code).
    Written here, not kept as a file of its own, so that the step cache counts it (and the
    served code it imports) in train's key."""
    from agnews.model.served import TextClassifier

    return (f"import mlflow\n\nfrom {TextClassifier.__module__} import {TextClassifier.__name__}"
            f"\n\nmlflow.models.set_model({TextClassifier.__name__}())\n")


def log_classifier(model, tokenizer, max_length: int, choice: RuntimeChoice | None = None):
    """Log under the run's `model` name as the pyfunc of `agnews.model.served`, from code
    (`model_code`; the agnews package travels inside the model, so it loads wherever MLflow
    does); returns MLflow's ModelInfo. `max_length` is the truncation training used: what a
    served text gets.
    `choice` (train's parity gate) names the runtime that scores, with its ONNX file; without
    one the model scores with PyTorch."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    scorer = choice.scorer if choice is not None else "pytorch"
    settings = {"max_length": max_length, "batch_size": 64, "chunk_rows": 1024,
                "precision": "auto", "runtime": scorer}
    if scorer == "openvino":
        settings["inference_precision"] = choice.precision
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        artifacts = {ARTIFACT: str(folder)}
        code = Path(tmp) / "model_code.py"
        code.write_text(model_code(), encoding="utf-8")
        if choice is not None and choice.onnx is not None:
            artifacts[ONNX_ARTIFACT] = str(choice.onnx)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=str(code), artifacts=artifacts,
            code_paths=[str(PROJECT_DIR / "agnews")], input_example=INPUT_EXAMPLE,
            signature=ModelSignature(inputs=Schema([ColSpec("string")])),
            pip_requirements=pip_requirements(scorer if ONNX_ARTIFACT in artifacts
                                              else "pytorch"),
            # "runtime", not "scorer": MLflow logs model_config as params of the run, where
            # train's `scorer` parameter (what was asked, e.g. auto) already stands.
            model_config=settings)


def load_logged_classifier(model_uri: str, precision: str = "auto") -> Classifier:
    """Load `runs:/...`, `models:/name@alias` or a model folder for scoring with the runtime
    it was logged with (`agnews.model.runtimes`; PyTorch on the scoring device with
    `precision` resolved for it); one-line errors. Reads the pyfunc `log_classifier` writes,
    and the transformers flavor versions logged before it still are.

    For a step's own bulk pass (evaluate, predict, monitor, register): a long PyTorch pass on a
    CPU splits into two processes (`agnews.model.forked`). The served model opens the same
    classifier whole: a server may answer from several threads at once, and torch's thread
    count is the whole process's."""
    from mlflow.exceptions import MlflowException

    try:
        info = mlflow.models.get_model_info(model_uri)
        pyfunc = info.flavors["python_function"]
        settings = pyfunc.get("model_config") or pyfunc.get("config") or {}
        max_length = int(settings.get("max_length", 512))
        if "transformers" in info.flavors:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            parts = mlflow.transformers.load_model(model_uri, return_type="components")
            return open_torch(parts["model"], parts["tokenizer"], max_length, precision,
                              split=True)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri))
        files = {name: local / spec["path"] for name, spec in pyfunc.get("artifacts", {}).items()}
        return open_classifier(files[ARTIFACT], files.get(ONNX_ARTIFACT),
                               logged_runtime(settings), max_length, precision, split=True,
                               logged_precision=str(settings.get("inference_precision",
                                                                 "fp32")))
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ("register one first (main's register step) or pass -P model_uri=runs:/<train "
                "run>/model" if model_uri.startswith("models:/")
                else "pass runs:/<run id of a finished train run>/model")
        raise UserError(f"cannot load model '{model_uri}' ({first[:160]}): {hint}") from None


def score_texts(clf: Classifier, texts: list[str], batch_size: int,
                progress=None) -> np.ndarray:
    """Class probabilities (rows in input order, columns in label order) for raw texts."""
    return clf.probabilities(texts, batch_size, progress)
