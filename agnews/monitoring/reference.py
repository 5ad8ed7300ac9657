"""What a batch is compared with: the model's reference, found through its lineage.

A registered version (`models:/<name>@<alias>`, `models:/<name>/<version>`) names the train
run that logged it; a `runs:/<id>/model` URI names it directly. The train run's
`input.tokenized.run_id` leads to tokenize, whose `input.splits.run_id` leads to ingest (the
training texts); the evaluate run that scored `runs:/<train>/model` holds the held-out test
texts with the model's predictions and its test accuracy. `-P reference=<evaluate run id>`
names that evaluate run directly, for a model whose lineage cannot be followed.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pandas as pd

from agnews.errors import UserError

# Deferred import: mlflow, only where runs and artifacts are read; the pure functions need none.


@dataclass
class Reference:
    """The reference of one model: training texts, held-out test texts with the model's
    predictions (`predictions.parquet` of evaluate), its test accuracy, and where each came
    from (run ids)."""

    train_texts: list[str]
    test: pd.DataFrame     # text, label, predicted, confidence, prob_* (evaluate's predictions)
    test_accuracy: float
    runs: dict[str, str]   # "ingest" | "evaluate" (| "train") -> run id
    model: str             # what the batch's model is, for run names: "agnews-classifier v3"


def model_source(client, model_uri: str) -> tuple[str | None, str]:
    """(train run id or None, a short name) of a model URI."""
    from mlflow.exceptions import MlflowException

    if model_uri.startswith("runs:/"):
        run_id = model_uri.split("/")[1]
        return run_id, f"run {run_id[:8]}"
    if model_uri.startswith("models:/"):
        name, _, rest = model_uri[len("models:/"):].partition("@")
        try:
            if rest:
                version = client.get_model_version_by_alias(name, rest)
            else:
                name, _, number = name.partition("/")
                version = client.get_model_version(name, number)
        except MlflowException as err:
            first = str(err).strip().splitlines()[0][:160] if str(err).strip() else ""
            raise UserError(f"model_uri '{model_uri}' does not resolve ({first}): pass "
                            "models:/<name>@<alias>, models:/<name>/<version> or "
                            "runs:/<train run>/model") from None
        return version.run_id, f"{version.name} v{version.version}"
    return None, model_uri


def evaluate_run_of(client, experiment_ids: list[str], train_run: str) -> str | None:
    """The newest FINISHED evaluate run that scored the train run's model."""
    runs = client.search_runs(
        experiment_ids, filter_string=f"params.model_uri = 'runs:/{train_run}/model' and "
                                      "tags.step = 'evaluate' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0].info.run_id if runs else None


def find_reference_runs(client, model_uri: str, reference: str) -> tuple[dict[str, str], str]:
    """The run ids the reference is read from, and the model's short name."""
    train, name = model_source(client, model_uri)
    runs: dict[str, str] = {}
    if reference:
        runs["evaluate"] = reference
    elif train is not None:
        try:
            experiment = client.get_run(train).info.experiment_id
        except Exception:
            train = None
        else:
            found = evaluate_run_of(client, [experiment], train)
            if found:
                runs["evaluate"], runs["train"] = found, train
    if "evaluate" not in runs:
        raise UserError(f"cannot follow the lineage of '{model_uri}' to an evaluate run of it: "
                        "pass -P reference=<run id of an evaluate run> whose test texts are the "
                        "reference")
    try:
        tags = client.get_run(runs["evaluate"]).data.tags
    except Exception:
        raise UserError(f"reference '{runs['evaluate']}' is not a run in this tracking store: "
                        "pass the run id of a finished evaluate run") from None
    if tags.get("step") != "evaluate" or "input.splits.run_id" not in tags:
        raise UserError(f"reference run {runs['evaluate']} is not an evaluate run (its step "
                        f"is '{tags.get('step', '')}'): pass the run id of an evaluate run")
    runs["ingest"] = tags["input.splits.run_id"]
    return runs, name


def load_reference(client, model_uri: str, reference: str = "") -> Reference:
    import mlflow

    runs, name = find_reference_runs(client, model_uri, reference)
    with tempfile.TemporaryDirectory() as tmp:
        test = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=runs["evaluate"], artifact_path="predictions.parquet", dst_path=tmp))
        train = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=runs["ingest"], artifact_path="data/train.parquet", dst_path=tmp))
    accuracy = client.get_run(runs["evaluate"]).data.metrics["test_accuracy"]
    return Reference(train["text"].tolist(), test, float(accuracy), runs, name)
