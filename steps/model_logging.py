"""Logging the fine-tuned classifier as an MLflow transformers model, and loading it back.

Kept apart from train so evaluate (and later register/serve) load exactly what train wrote,
through one definition of its name, task and inference settings.
"""
from __future__ import annotations

import mlflow

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


def load_classifier_components(model_uri: str):
    """(model, tokenizer) of a logged classifier, for batched scoring with probabilities."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    parts = mlflow.transformers.load_model(model_uri, return_type="components")
    return parts["model"], parts["tokenizer"]
