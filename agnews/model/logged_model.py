"""Logging the fine-tuned classifier as an MLflow transformers model, and loading it back.

Kept apart from train so evaluate, register and predict load exactly what train wrote,
through one definition of its name, task and inference settings, and score texts the same
way (truncated as logged, batched by length, probabilities from our own forward pass).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import mlflow
import numpy as np

from agnews.errors import UserError

# Deferred imports: torch, transformers and accelerate load where a model is loaded or logged:
# register and report import this module for names and settings only.

if TYPE_CHECKING:
    from agnews.model.device import Precision

MODEL_NAME = "model"
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
    """Log under the run's `model` name; returns MLflow's ModelInfo.

    `model_config` makes the served pipeline truncate as training did and return a score
    for every class (top_k=None), not only the winner. MLflow infers the signature
    (string in, label/score records out) by running the pipeline on the input example.
    """
    return mlflow.transformers.log_model(
        {"model": model, "tokenizer": tokenizer}, name=MODEL_NAME, task="text-classification",
        input_example=INPUT_EXAMPLE, pip_requirements=pip_requirements(),
        model_config={"truncation": True, "max_length": max_length, "top_k": None})


@dataclass
class LoggedClassifier:
    """A logged classifier loaded for batched scoring with class probabilities."""

    model: object      # on the device it scores on (a GPU if there is one)
    tokenizer: object
    max_length: int    # the truncation it was logged with: what a served model would see
    precision: Precision  # resolved for this model and device; scoring uses its `score`


def load_logged_classifier(model_uri: str, precision: str = "auto") -> LoggedClassifier:
    """Load `runs:/...`, `models:/name@alias` or a model folder onto the scoring device,
    with `precision` resolved for it; one-line errors."""
    from mlflow.exceptions import MlflowException
    from transformers.utils import logging as hf_logging

    from agnews.model.device import pick_device
    from agnews.model.precision import choose_precision

    hf_logging.disable_progress_bar()
    try:
        info = mlflow.models.get_model_info(model_uri)
        parts = mlflow.transformers.load_model(model_uri, return_type="components")
    except (MlflowException, OSError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        hint = ("register one first (main's register step) or pass -P model_uri=runs:/<train "
                "run>/model" if model_uri.startswith("models:/")
                else "pass runs:/<run id of a finished train run>/model")
        raise UserError(f"cannot load model '{model_uri}' ({first[:160]}): {hint}") from None
    max_length = info.flavors["python_function"].get("config", {}).get("max_length", 512)
    model = parts["model"].to(pick_device())
    return LoggedClassifier(model, parts["tokenizer"], int(max_length),
                            choose_precision(precision, model))


def score_texts(clf: LoggedClassifier, texts: list[str], batch_size: int,
                progress=None) -> np.ndarray:
    """Class probabilities (rows in input order, columns in label order) for raw texts."""
    from agnews.model.batching import predict_logits, softmax

    ids = clf.tokenizer(texts, truncation=True, max_length=clf.max_length)["input_ids"]
    return softmax(predict_logits(clf.model, ids, batch_size, clf.tokenizer.pad_token_id,
                                  clf.precision.score, progress))
