"""The Model Registry calls of the register step: the current champion, a version already
registered from the same train run, re-scoring the champion on the candidate's test rows,
registering a version with its alias, and gathering and attaching its model card from the runs
it came from (tested against a real registry)."""
from __future__ import annotations

import tempfile
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from agnews.config import EvalConfig
from agnews.hub import is_hub_id
from agnews.registry.card import CardFacts, card_text, sentence

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


def _upstream(client: MlflowClient, tags: dict[str, str], name: str):
    """The run an `input.<name>` tag (`runs:/<id>/...`) points at, or None."""
    run_id = model_run_id(tags.get(f"input.{name}", ""))
    try:
        return client.get_run(run_id) if run_id else None
    except MlflowException:
        return None


def base_license(model: str, revision: str) -> str:
    """The license the base model's own card states (a local folder's README.md, or the Hub
    cache's copy at `revision`); "unknown" where no card is at hand, as offline it may not be."""
    from huggingface_hub import ModelCard, try_to_load_from_cache

    card = Path(model).expanduser() / "README.md"
    if not card.is_file():
        cached = (try_to_load_from_cache(model, "README.md", revision=revision or None)
                  if is_hub_id(model) else None)
        card = Path(cached) if isinstance(cached, str) else None
    try:
        return (card and ModelCard.load(card).data.license) or "unknown"
    except Exception:  # a README without metadata, or with metadata the Hub's parser refuses
        return "unknown"


def card_facts(client: MlflowClient, evaluated, model_uri: str, name: str, version: str,
               alias: str, decision: str) -> CardFacts:
    """What the card of `name` version `version` states, from the evaluate run and the train,
    tokenize and ingest runs it came from (what an older run did not record is left out)."""
    runs = {"evaluate": evaluated}
    train_id = model_run_id(model_uri)
    if train_id:
        runs["train"] = client.get_run(train_id)
        runs["tokenize"] = _upstream(client, runs["train"].data.tags, "tokenized")
    runs["ingest"] = _upstream(client, evaluated.data.tags, "splits")
    runs = {k: v for k, v in runs.items() if v is not None}
    params = {k: v for run in runs.values() for k, v in run.data.params.items()}
    tags = {k: v for run in reversed(runs.values()) for k, v in run.data.tags.items()}
    ingest = runs["ingest"].data.metrics if "ingest" in runs else {}
    train_tags = runs["train"].data.tags if "train" in runs else {}
    eval_tags, metrics = evaluated.data.tags, evaluated.data.metrics
    compute = {"device": train_tags.get("device_name", train_tags.get("device", "?")),
               "precision_train": train_tags.get("precision_train", "?"),
               "precision_score": eval_tags.get("precision_score", "?"),
               "precision_reason": eval_tags.get("precision_reason", "no reason recorded"),
               "scored_on": eval_tags.get("device_name", eval_tags.get("device", "?"))}
    if "predict_rows_per_second" in metrics:
        compute["rows_per_second"] = metrics["predict_rows_per_second"]
    model = params.get("model", "")
    revision = tags.get("model.revision", "")
    return CardFacts(
        name=name, version=version, alias=alias, decision=decision, base_model=model,
        base_revision=revision, data=params.get("data", ""),
        # a local folder has no revision: its data_revision parameter is the unused default
        data_revision=tags.get("data.revision", params.get("data_revision", "")
                               if is_hub_id(params.get("data", "")) else ""),
        rows={s: int(ingest.get(f"{s}_rows", 0)) for s in ("train", "val", "test")},
        metrics=metrics, params=params, compute=compute,
        license=base_license(model, revision) if model else "unknown",
        runs={k: v.info.run_id for k, v in runs.items()})


def attach_card(client: MlflowClient, facts: CardFacts, model_uri: str) -> str:
    """Write the card as README.md into the registered version's model files and the active
    run's `model_card/`, and link it from the version's description; returns its URI."""
    model_id = mlflow.models.get_model_info(model_uri).model_id
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "README.md"
        path.write_text(card_text(facts), encoding="utf-8")
        if model_id:
            client.log_model_artifact(model_id, str(path))
        mlflow.log_artifact(str(path), "model_card")
    uri = f"models:/{facts.name}/{facts.version}/README.md"
    client.update_model_version(facts.name, facts.version, description=(
        f"Model card: {uri} (also runs:/{mlflow.active_run().info.run_id}/model_card/README.md)."
        f" {sentence(facts.decision)}"))
    return uri
