"""The `monitor` entry point through `mlflow run`, against the model the session pipeline
trained and registered (the offline stand-in, all-MiniLM-L6-v2, on 400 real AG News rows),
with batches of real texts the model never saw: an in-distribution batch is not flagged; only
Sports, titles only and label noise are, each by the checks that should catch it (the Sports
batch through `mlflow run`, the others in the test's process, `run_here`). Also:
`predict`'s output is taken as is, `fail_on_drift` exits 3 with the run logged, the batches
chart over time in their series run, and bad input stops with one line.
"""
from __future__ import annotations

import re
import sys

import mlflow
import pandas as pd
import pytest
from runs import artifact_paths, command_line, mlflow_run, run_here
from support import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
from drift_batches import make_batches  # noqa: E402  (benchmarks/ is not a package)

CHECKS = ("length_tokens", "unseen_pieces", "vocabulary_auc", "class_mix", "confidence",
          "accuracy")
# What each batch must trip (True), must not trip (False); unlisted checks may go either way
EXPECTED = {
    "in_distribution": dict.fromkeys(CHECKS, False),
    "only_sports": {"class_mix": True, "vocabulary_auc": True, "accuracy": False},
    "titles_only": {"length_tokens": True, "vocabulary_auc": True},
    "label_noise": {"accuracy": True, "class_mix": False, "vocabulary_auc": False,
                    "length_tokens": False, "unseen_pieces": False},
}


def run_id_of(proc) -> str:
    return re.findall(r"Run \(ID '([0-9a-f]+)'\)", proc.stderr)[-1]


@pytest.fixture(scope="module")
def monitored(session_pipeline, ag_news):
    store, cwd = session_pipeline.store, session_pipeline.project
    evaluate = session_pipeline.children["evaluate"]
    with store.tracking():
        reference = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=evaluate.info.run_id, artifact_path="predictions.parquet"))
    paths = make_batches(ag_news / "test.csv", set(reference["text"]), cwd / "batches")
    # the same in-distribution texts with their labels held back: accuracy is estimated
    unlabelled = cwd / "batches" / "in_distribution_unlabelled.csv"
    pd.read_csv(paths["in_distribution"]).drop(columns="label").to_csv(unlabelled, index=False)
    # predict's output goes to monitor as it is: its predictions are used, not recomputed
    scored = cwd / "batches" / "label_noise_scored.parquet"
    proc = run_here("predict", {"input": paths["label_noise"], "output": scored}, store, cwd)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    runs, outputs = {}, {}
    for name, path in {**paths, "label_noise": scored, "unlabelled": unlabelled}.items():
        if name == "only_sports":  # through `mlflow run`, for the exit code users see
            proc = mlflow_run("monitor", {"input": path, "fail_on_drift": "true"}, store, cwd,
                              check=False)
            proc.run_id = run_id_of(proc)
        else:  # the same entry point in this process: its start-up paid once
            proc = run_here("monitor", {"input": path}, store, cwd)
        outputs[name] = proc
        runs[name] = store.client.get_run(proc.run_id)
    return {"cwd": cwd, "store": store, "client": store.client, "runs": runs,
            "outputs": outputs, "evaluate": evaluate, "scored": scored}


@pytest.mark.parametrize("batch", list(EXPECTED))
def test_each_batch_is_flagged_by_the_checks_that_should_catch_it(monitored, batch):
    run = monitored["runs"][batch]
    metrics = run.data.metrics
    flags = {c: bool(metrics[f"drift_{c}_flag"]) for c in CHECKS}
    for check, expected in EXPECTED[batch].items():
        assert flags[check] == expected, (batch, check, metrics)
    assert run.data.tags["drift"] == str(any(flags.values())).lower()
    for check in CHECKS:  # each check's test, and its p-value adjusted over the batch's
        assert {f"drift_{check}", f"drift_{check}_p", f"drift_{check}_p_holm"} <= set(metrics)
        if metrics[f"drift_{check}_flag"]:
            assert metrics[f"drift_{check}_p_holm"] < 0.05
    if batch == "in_distribution":
        assert "no drift" in monitored["outputs"][batch].stdout
    else:
        assert run.data.tags["drift_reasons"]


def test_without_labels_the_estimated_accuracy_stands_in_for_accuracy(monitored):
    """The in-distribution batch with its labels held back: accuracy is estimated from the
    calibrated confidence, judged in the family (not flagged), and its interval holds the
    accuracy the labels give; with labels the estimate is logged but not judged."""
    unlabelled = monitored["runs"]["unlabelled"].data.metrics
    labelled = monitored["runs"]["in_distribution"].data.metrics
    assert "drift_accuracy" not in unlabelled and "batch_accuracy" not in unlabelled
    assert unlabelled["drift_estimated_accuracy_p_holm"] >= 0.05
    assert unlabelled["drift_estimated_accuracy_flag"] == 0
    assert (unlabelled["drift_estimated_accuracy_ci_low"] <= labelled["batch_accuracy"]
            <= unlabelled["drift_estimated_accuracy_ci_high"])
    assert unlabelled["drift_estimated_accuracy"] == labelled["drift_estimated_accuracy"]
    not_judged = labelled["drift_estimated_accuracy_p_holm"]
    assert not_judged != not_judged  # NaN: with labels, accuracy itself is judged
    assert "accuracy estimated without labels" in monitored["outputs"]["unlabelled"].stdout
    assert "accuracy estimated" not in monitored["outputs"]["in_distribution"].stdout


def test_the_reference_is_the_models_lineage(monitored):
    run, client = monitored["runs"]["in_distribution"], monitored["client"]
    # an evaluate run of the champion's model (the pipeline's, or a later one of the same model)
    evaluate = client.get_run(run.data.tags["input.reference_evaluate"].split("/")[1])
    champion = client.get_model_version_by_alias("agnews-classifier", "champion")
    assert evaluate.data.tags["step"] == "evaluate"
    assert evaluate.data.params["model_uri"] == f"runs:/{champion.run_id}/model"
    assert run.data.tags["monitor.model"] == "agnews-classifier v1"
    assert run.info.status == "FINISHED"
    files = set(artifact_paths(monitored["client"], run.info.run_id))
    assert {"plots/length_tokens.png", "plots/class_mix.png", "plots/confidence.png",
            "plots/confusion_matrix.png", "drift_report/report.html",
            "batch_predictions.parquet"} <= files


def test_predicts_output_is_taken_as_it_is(monitored):
    run = monitored["runs"]["label_noise"]
    scored = pd.read_parquet(monitored["scored"])
    with monitored["store"].tracking():
        checked = pd.read_parquet(mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="batch_predictions.parquet"))
    assert checked["predicted"].tolist() == scored["predicted"].tolist()
    assert checked["confidence"].tolist() == pytest.approx(scored["confidence"].tolist())
    accuracy = (scored["label"] == scored["predicted"]).mean()
    assert run.data.metrics["batch_accuracy"] == pytest.approx(accuracy)


def test_fail_on_drift_exits_3_with_the_run_logged(monitored):
    proc, run = monitored["outputs"]["only_sports"], monitored["runs"]["only_sports"]
    assert proc.returncode != 0
    assert "exiting 3 (fail_on_drift=true)" in proc.stderr
    assert run.data.tags["drift"] == "true"
    assert "drift_report/report.html" in artifact_paths(monitored["client"], run.info.run_id)
    assert monitored["outputs"]["in_distribution"].returncode == 0


def test_batches_chart_over_time_in_the_models_series_run(monitored):
    client = monitored["client"]
    (series,) = monitored["store"].runs("tags.step = 'monitor-series'")
    assert series.info.run_name == "monitor agnews-classifier v1"
    numbers = sorted(int(r.data.tags["monitor.batch"]) for r in monitored["runs"].values())
    assert numbers == [1, 2, 3, 4, 5]
    for run in monitored["runs"].values():
        assert run.data.tags["mlflow.parentRunId"] == series.info.run_id
        assert run.info.run_name == f"batch {run.data.tags['monitor.batch']} agnews-classifier v1"
    history = client.get_metric_history(series.info.run_id, "drift_vocabulary_auc")
    assert sorted(m.step for m in history) == [1, 2, 3, 4, 5]
    by_batch = {int(r.data.tags["monitor.batch"]): r.data.metrics["drift_vocabulary_auc"]
                for r in monitored["runs"].values()}
    assert {m.step: m.value for m in history} == by_batch


@pytest.mark.parametrize("params, message", [
    ({"model_uri": "models:/no-such-model@champion"}, "does not resolve"),
    ({"model_uri": "runs:/0123456789abcdef/model"}, "cannot follow the lineage"),
    ({"reference": "0123456789abcdef"}, "is not a run in this tracking store"),
    ({"input": "batches/missing.csv"}, "is not a file"),
    ({"alpha": "1.5"}, "alpha=1.5 is not between 0 and 1"),
])
def test_bad_input_stops_with_one_line(monitored, params, message, monkeypatch, capsys):
    """The entry point's command line, called in this process from the project folder."""
    params = {"input": "batches/in_distribution.csv", **params}
    monkeypatch.chdir(monitored["cwd"])
    monkeypatch.setenv("MLFLOW_TRACKING_URI", monitored["store"].uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_ID", monitored["store"].experiment_id)
    proc = command_line("monitor", [a for k, v in params.items() for a in (f"--{k}", str(v))],
                        capsys)
    assert proc.returncode == 2
    errors = [x for x in proc.stderr.splitlines() if x.startswith("monitor: error")]
    assert len(errors) == 1 and message in errors[0], errors
