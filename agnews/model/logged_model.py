"""Logging the fine-tuned classifier as an MLflow model, and loading it back.

Kept apart from train so evaluate, register and predict load exactly what train wrote,
through one definition of its name, inference settings and the code that serves it
(`agnews.model.served`), and score texts the same way (truncated as logged, batched by
length, probabilities from our own forward pass).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np

from agnews import PROJECT_DIR
from agnews.errors import UserError

# Deferred imports: torch, transformers and accelerate load where a model is loaded or logged:
# register and report import this module for names and settings only.

if TYPE_CHECKING:
    from agnews.model.device import Precision

MODEL_NAME = "model"
ARTIFACT = "classifier"  # the Hugging Face folder inside the logged model's artifacts
INPUT_EXAMPLE = ["Stocks rally as oil prices fall for a third day",
                 "Underdogs win the cup final in extra time"]


def pip_requirements() -> list[str]:
    """Exact versions of what the model needs to load; explicit because MLflow's inference
    of them imports torchvision, which this stack does not install."""
    import accelerate
    import torch
    import transformers

    return [f"torch=={torch.__version__.split('+')[0]}",
            f"transformers=={transformers.__version__}",
            f"accelerate=={accelerate.__version__}"]


def log_classifier(model, tokenizer, max_length: int):
    """Log under the run's `model` name as the pyfunc of `agnews.model.served` (the agnews
    package travels inside the model, so it loads wherever MLflow does); returns MLflow's
    ModelInfo. `max_length` is the truncation training used: what a served text gets."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    from agnews.model.served import TextClassifier

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / ARTIFACT
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        return mlflow.pyfunc.log_model(
            name=MODEL_NAME, python_model=TextClassifier(), artifacts={ARTIFACT: str(folder)},
            code_paths=[str(PROJECT_DIR / "agnews")], input_example=INPUT_EXAMPLE,
            signature=ModelSignature(inputs=Schema([ColSpec("string")])),
            pip_requirements=pip_requirements(),
            model_config={"max_length": max_length, "batch_size": 64, "chunk_rows": 1024,
                          "precision": "auto"})


@dataclass
class LoggedClassifier:
    """A logged classifier loaded for batched scoring with class probabilities."""

    model: object      # on the device it scores on (a GPU if there is one)
    tokenizer: object
    max_length: int    # the truncation it was logged with: what a served model would see
    precision: Precision  # resolved for this model and device; scoring uses its `score`


def load_logged_classifier(model_uri: str, precision: str = "auto") -> LoggedClassifier:
    """Load `runs:/...`, `models:/name@alias` or a model folder onto the scoring device,
    with `precision` resolved for it; one-line errors. Reads the pyfunc `log_classifier`
    writes, and the transformers flavor versions logged before it still are."""
    from mlflow.exceptions import MlflowException
    from transformers.utils import logging as hf_logging

    from agnews.model.device import pick_device
    from agnews.model.precision import choose_precision

    hf_logging.disable_progress_bar()
    try:
        info = mlflow.models.get_model_info(model_uri)
        model, tokenizer = (_load_transformers(model_uri) if "transformers" in info.flavors
                            else _load_pyfunc_folder(model_uri))
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ("register one first (main's register step) or pass -P model_uri=runs:/<train "
                "run>/model" if model_uri.startswith("models:/")
                else "pass runs:/<run id of a finished train run>/model")
        raise UserError(f"cannot load model '{model_uri}' ({first[:160]}): {hint}") from None
    pyfunc = info.flavors["python_function"]
    settings = pyfunc.get("model_config") or pyfunc.get("config") or {}
    model = model.to(pick_device())
    return LoggedClassifier(model, tokenizer, int(settings.get("max_length", 512)),
                            choose_precision(precision, model))


def _load_pyfunc_folder(model_uri: str):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri)) / "artifacts" / \
        ARTIFACT
    return (AutoModelForSequenceClassification.from_pretrained(local),
            AutoTokenizer.from_pretrained(local))


def _load_transformers(model_uri: str):
    parts = mlflow.transformers.load_model(model_uri, return_type="components")
    return parts["model"], parts["tokenizer"]


def score_texts(clf: LoggedClassifier, texts: list[str], batch_size: int,
                progress=None) -> np.ndarray:
    """Class probabilities (rows in input order, columns in label order) for raw texts."""
    from agnews.model.batching import predict_logits, softmax

    ids = clf.tokenizer(texts, truncation=True, max_length=clf.max_length)["input_ids"]
    return softmax(predict_logits(clf.model, ids, batch_size, clf.tokenizer.pad_token_id,
                                  clf.precision.score, progress))
