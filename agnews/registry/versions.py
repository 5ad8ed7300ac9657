"""The Model Registry calls of the register step: the current champion, a version already
registered from the same train run, re-scoring the champion on the candidate's test rows,
and registering a version with its alias (tested against a real registry)."""
from __future__ import annotations

import tempfile

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agnews.config import EvalConfig

# Deferred imports: torch and transformers, only to rescore the champion when a challenger is
# compared.


def model_run_id(model_uri: str) -> str | None:
    """The train run of a `runs:/<id>/model` URI (None for other URIs)."""
    return model_uri.split("/")[1] if model_uri.startswith("runs:/") else None


def champion_version(client: MlflowClient, name: str):
    """The version holding alias `champion`, or None (no such model, or no champion yet)."""
    try:
        return client.get_model_version_by_alias(name, "champion")
    except MlflowException:
        return None


def same_source_version(client: MlflowClient, name: str, run_id: str | None):
    """A version of `name` already registered from this train run, or None."""
    if run_id is None:
        return None
    for version in client.search_model_versions(f"name='{name}'"):
        if version.run_id == run_id:
            return version
    return None


def evaluated_rows(evaluate_run_id: str) -> pd.DataFrame:
    """The evaluate run's test rows: text, label and the candidate's prediction."""
    with tempfile.TemporaryDirectory() as tmp:
        return pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=evaluate_run_id, artifact_path="predictions.parquet", dst_path=tmp))


def rescore(champion, test: pd.DataFrame, ev: EvalConfig) -> tuple[dict[str, float], np.ndarray]:
    """The champion's test_f1 / test_accuracy on the texts the evaluate run scored, and which
    of those rows it gets right (for the paired comparison)."""
    from agnews.evaluation.metrics import classification_metrics
    from agnews.model.logged_model import load_logged_classifier, score_texts

    clf = load_logged_classifier(f"models:/{champion.name}/{champion.version}", ev.precision)
    probs = score_texts(clf, test["text"].tolist(), ev.eval_batch_size)
    labels = test["label"].to_numpy()
    scores = classification_metrics(labels, probs)
    return ({"test_f1": scores["f1"], "test_accuracy": scores["accuracy"]},
            probs.argmax(axis=1) == labels)


def register_version(client: MlflowClient, name: str, model_uri: str, alias: str,
                     tags: dict[str, str]) -> str:
    """Register `model_uri` as a new version of `name` with `alias`; returns the version."""
    # MLflow 3 keeps a logged model as a LoggedModel, outside the run's artifacts; naming it
    # directly (models:/m-...) registers the same thing without a "no artifacts" warning.
    model_id = mlflow.models.get_model_info(model_uri).model_id
    source = f"models:/{model_id}" if model_id else model_uri
    version = mlflow.register_model(source, name, tags=tags).version
    client.set_registered_model_alias(name, alias, version)
    return str(version)
