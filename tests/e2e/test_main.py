"""The whole workflow through `mlflow run`, on a tiny random BERT and real AG News rows.

Asserts what landed in the tracking store: the parent and its five FINISHED children with
their tags, the per-epoch metrics, every named artifact, and a report whose numbers are the
logged ones. Also: a failing step fails the parent and names the step, and a step runs alone.
"""
from __future__ import annotations

import subprocess
import sys

import mlflow
import pandas as pd
import pytest
from conftest import ROOT, subprocess_env
from mlflow.tracking import MlflowClient

from agnews.tracking.runs import read_table
from agnews.tracking.step_cache import STEPS

EPOCH_METRICS = [f"{split}_{m}" for split in ("train", "val")
                 for m in ("loss", "accuracy", "f1", "precision", "recall")]


def mlflow_run(entry_point: str, params: dict, store, expect_ok: bool = True):
    args = [sys.executable, "-m", "mlflow", "run", str(ROOT), "-e", entry_point,
            "--env-manager", "local", "--experiment-id", store["experiment_id"]]
    for key, value in params.items():
        args += ["-P", f"{key}={value}"]
    env = subprocess_env()
    env["MLFLOW_TRACKING_URI"] = store["uri"]
    # a tiny model trains in seconds: sample system metrics every second to see some
    env["MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL"] = "1"
    proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if expect_ok:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    experiment_id = mlflow.create_experiment("e2e", artifact_location=str(tmp / "artifacts"))
    yield {"uri": uri, "experiment_id": experiment_id, "client": MlflowClient(uri)}
    mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def pipeline(store, tiny_model, ag_news):
    params = {"data": ag_news, "model": tiny_model, "train_size": 40, "val_size": 12,
              "test_size": 24, "epochs": 2, "train_batch_size": 8, "learning_rate": 3e-3}
    client = store["client"]
    before = {r.info.run_id for r in client.search_runs([store["experiment_id"]])}
    proc = mlflow_run("main", params, store)
    runs = [r for r in client.search_runs([store["experiment_id"]])
            if r.info.run_id not in before]
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {r.data.tags.get("step"): r for r in runs
                if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id}
    mlflow.set_tracking_uri(store["uri"])
    return {"parent": parent, "children": children, "client": client, "stdout": proc.stdout,
            "params": params}


def artifact_paths(client, run_id, path=None):
    out = []
    for item in client.list_artifacts(run_id, path):
        out += artifact_paths(client, run_id, item.path) if item.is_dir else [item.path]
    return out


def test_parent_and_six_finished_children_with_tags(pipeline):
    parent, children = pipeline["parent"], pipeline["children"]
    assert parent.info.status == "FINISHED"
    assert set(children) == set(STEPS)
    for step, run in children.items():
        assert run.info.status == "FINISHED", step
        assert parent.data.tags[f"step.{step}.run_id"] == run.info.run_id
        assert run.info.run_name == step  # each child named for its step
        # a real process's peak: at least the interpreter with torch or pandas loaded
        assert 50 < run.data.metrics["peak_rss_mb"] < 64_000, step


def test_parent_carries_the_test_metrics_and_links_the_report(pipeline):
    parent, evaluate = pipeline["parent"], pipeline["children"]["evaluate"]
    for name in ("test_accuracy", "test_f1", "test_precision", "test_recall"):
        assert parent.data.metrics[name] == evaluate.data.metrics[name]
    report_id = pipeline["children"]["report"].info.run_id
    assert parent.data.tags["report"] == f"runs:/{report_id}/report/report.html"


def test_train_logs_every_metric_once_per_epoch(pipeline):
    client, train = pipeline["client"], pipeline["children"]["train"]
    for name in EPOCH_METRICS:
        history = client.get_metric_history(train.info.run_id, name)
        assert [m.step for m in history] == [1, 2], name


def test_train_logs_mlflows_system_metrics_beside_its_curves(pipeline):
    client, children = pipeline["client"], pipeline["children"]
    train = children["train"].data.metrics
    for name in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        assert name in train, sorted(train)
    history = client.get_metric_history(children["train"].info.run_id,
                                        "system/system_memory_usage_megabytes")
    assert history and all(point.value > 0 for point in history)
    for step in ("ingest", "evaluate", "report"):  # only train asks for them
        assert not [k for k in children[step].data.metrics if k.startswith("system/")], step


def test_train_logs_live_step_points_and_the_kept_epoch(pipeline):
    client, train = pipeline["client"], pipeline["children"]["train"]
    run_id = train.info.run_id
    # 40 rows / batch 8 = 5 steps per epoch, 10 in all; auto interval = max(1, 10 // 40) = 1
    for name in ("train_loss_step", "learning_rate"):
        assert [m.step for m in client.get_metric_history(run_id, name)] == list(range(1, 11))
    rates = [m.value for m in client.get_metric_history(run_id, "learning_rate")]
    assert rates == sorted(rates, reverse=True) and rates[0] == pytest.approx(3e-3)  # step 1 runs at the peak rate
    losses = [m.value for m in client.get_metric_history(run_id, "val_loss")]
    assert train.data.metrics["best_epoch"] == losses.index(min(losses)) + 1


def test_training_lowers_the_training_loss(pipeline):
    history = pipeline["client"].get_metric_history(
        pipeline["children"]["train"].info.run_id, "train_running_loss")
    assert history[1].value < history[0].value


PLOTS = {"ingest": ["class_balance", "text_length_words"], "tokenize": ["text_length_tokens"],
         "train": ["loss_curves", "metric_evolution", "learning_rate"],
         "evaluate": ["confusion_matrix", "final_metrics", "per_class_metrics", "roc_pr_curves",
                      "reliability_diagram", "confidence_histogram"]}


def test_each_step_logs_its_named_artifacts_and_plots(pipeline):
    client, ch = pipeline["client"], pipeline["children"]
    ingest = artifact_paths(client, ch["ingest"].info.run_id)
    assert {"data/train.parquet", "data/val.parquet", "data/test.parquet",
            "class_balance.json", "text_length.json"} <= set(ingest)
    tokenize = artifact_paths(client, ch["tokenize"].info.run_id)
    assert {f"tokenized/{s}.parquet" for s in ("train", "val", "test")} <= set(tokenize)
    assert "tokenized/meta.json" in tokenize and "tokenizer/tokenizer_config.json" in tokenize
    evaluate = artifact_paths(client, ch["evaluate"].info.run_id)
    assert {"predictions.parquet", "per_class_metrics.json",
            "most_confident_mistakes.json"} <= set(evaluate)
    for step, names in PLOTS.items():
        logged = set(artifact_paths(client, ch[step].info.run_id))
        assert {f"plots/{n}.png" for n in names} <= logged, step
    assert {"report/report.md", "report/report.html"} <= set(
        artifact_paths(client, ch["report"].info.run_id))


def test_ingest_logs_disjoint_splits_as_dataset_inputs(pipeline):
    ingest = pipeline["children"]["ingest"]
    inputs = {i.tags[0].value: i.dataset for i in ingest.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert all(d.digest for d in inputs.values())
    run_id = ingest.info.run_id
    frames = {s: pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"data/{s}.parquet")) for s in ("train", "val", "test")}
    assert {s: len(f) for s, f in frames.items()} == {"train": 40, "val": 12, "test": 24}
    assert not set(frames["train"]["text"]) & set(frames["val"]["text"])
    tokenize = pipeline["children"]["tokenize"]
    assert {i.dataset.digest for i in tokenize.inputs.dataset_inputs} == {
        d.digest for d in inputs.values()}  # tokenize read exactly what ingest wrote
    assert tokenize.data.tags["input.splits.run_id"] == run_id


def test_logged_model_serves_label_names(pipeline):
    model = mlflow.pyfunc.load_model(f"runs:/{pipeline['children']['train'].info.run_id}/model")
    assert model.metadata.signature is not None
    out = model.predict(["Stocks fall as oil climbs", "Late goal wins the derby"])
    labels = {cell["label"] for _, row in out.iterrows() for cell in row}
    assert labels == {"World", "Sports", "Business", "Sci/Tech"}  # top_k=None: every class


def test_evaluate_logs_metrics_and_predictions(pipeline):
    evaluate = pipeline["children"]["evaluate"]
    for name in ("test_accuracy", "test_f1", "test_precision", "test_recall", "test_loss",
                 "test_log_loss", "test_roc_auc", "test_ece"):
        assert name in evaluate.data.metrics, name
    mistakes = read_table(evaluate.info.run_id, "most_confident_mistakes.json")
    assert 0 < len(mistakes) <= 25 and (mistakes["true"] != mistakes["predicted"]).all()
    assert "accuracy_score" in evaluate.data.metrics  # from mlflow.models.evaluate
    preds = pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=evaluate.info.run_id, artifact_path="predictions.parquet"))
    assert len(preds) == 24
    assert {"text", "label", "predicted", "prob_World", "prob_Sci/Tech"} <= set(preds.columns)
    assert (preds["predicted"] == preds["label"]).mean() == pytest.approx(
        evaluate.data.metrics["test_accuracy"])


def test_report_numbers_equal_the_logged_metrics(pipeline):
    ch = pipeline["children"]
    md = open(mlflow.artifacts.download_artifacts(
        run_id=ch["report"].info.run_id, artifact_path="report/report.md")).read()
    for name in ("accuracy", "f1", "precision", "recall", "loss"):
        assert f"| {name} | {ch['evaluate'].data.metrics[f'test_{name}']:.4f} |" in md
    for m in pipeline["client"].get_metric_history(ch["train"].info.run_id, "val_accuracy"):
        assert f"{m.value:.4f}" in md
    html = open(mlflow.artifacts.download_artifacts(
        run_id=ch["report"].info.run_id, artifact_path="report/report.html")).read()
    assert html.count("data:image/png;base64,") == sum(map(len, PLOTS.values()))
    for section in ("Summary", "Data", "Process", "Training curves", "Evaluation", "Errors",
                    "Conclusions", "Limitations", "Reproduce"):
        assert f"<h2>{section}</h2>" in html


def test_register_applies_the_gate_and_main_still_succeeds(pipeline):
    parent, ch = pipeline["parent"], pipeline["children"]
    metrics = ch["evaluate"].data.metrics
    passes = metrics["test_accuracy"] >= 0.80 and metrics["test_f1"] >= 0.80  # the defaults
    register = ch["register"]
    assert register.info.status == "FINISHED" and parent.info.status == "FINISHED"
    assert register.data.tags["registered"] == str(passes).lower()
    assert parent.data.tags["registered"] == str(passes).lower()
    if not passes:  # a tiny random model on 40 rows: expected
        assert "register: not registered in 'agnews-classifier'" in pipeline["stdout"]
        md = open(mlflow.artifacts.download_artifacts(
            run_id=ch["report"].info.run_id, artifact_path="report/report.md")).read()
        assert "## Model registry" in md and "misses the gate" in md


def test_a_passing_model_is_registered_as_champion_without_retraining(pipeline, store):
    params = {**pipeline["params"], "min_test_accuracy": 0, "min_test_f1": 0}
    proc = mlflow_run("main", params, store)
    for step in ("ingest", "tokenize", "train", "evaluate"):
        assert f"main: {step} reused" in proc.stdout, step
    assert "main: register running" in proc.stdout
    versions = store["client"].search_model_versions("name='agnews-classifier'")
    assert [int(v.version) for v in versions] == [1]
    assert versions[0].run_id == pipeline["children"]["train"].info.run_id
    champion = store["client"].get_model_version_by_alias("agnews-classifier", "champion")
    assert int(champion.version) == 1
    assert "registered models:/agnews-classifier/1 (@champion)" in proc.stdout


@pytest.fixture(scope="module")
def evaluate_alone(pipeline, store):
    """An evaluate run started alone (not under main) on the pipeline's model and data."""
    ch = pipeline["children"]
    mlflow_run("evaluate", {"model_uri": f"runs:/{ch['train'].info.run_id}/model",
                            "splits": f"runs:/{ch['ingest'].info.run_id}/data"}, store)
    alone = [r for r in store["client"].search_runs([store["experiment_id"]])
             if r.data.tags.get("step") == "evaluate" and "mlflow.parentRunId" not in r.data.tags]
    assert len(alone) == 1
    return alone[0]


def test_a_step_runs_alone_from_upstream_uris(pipeline, evaluate_alone):
    assert evaluate_alone.info.status == "FINISHED"
    assert evaluate_alone.info.run_name == "evaluate"  # named for its step, not at random
    assert evaluate_alone.data.metrics["test_accuracy"] == \
        pipeline["children"]["evaluate"].data.metrics["test_accuracy"]


def test_a_report_alone_in_spanish_compares_with_the_previous_run(pipeline, store,
                                                                  evaluate_alone):
    ch = pipeline["children"]
    params = {f"{s}_run": ch[s].info.run_id for s in ("ingest", "tokenize", "train", "register")}
    mlflow_run("report", {**params, "evaluate_run": evaluate_alone.info.run_id,
                          "report_lang": "es"}, store)
    report = [r for r in store["client"].search_runs([store["experiment_id"]])
              if r.data.tags.get("step") == "report" and "mlflow.parentRunId" not in r.data.tags]
    md = open(mlflow.artifacts.download_artifacts(
        run_id=report[0].info.run_id, artifact_path="report/report.md")).read()
    assert "## Conclusiones" in md
    previous = ch["evaluate"].info.run_id
    accuracy = ch["evaluate"].data.metrics["test_accuracy"]
    assert f"({previous}): test_accuracy {accuracy:.4f} → {accuracy:.4f} (+0.0000)" in md


def test_a_failing_step_fails_the_parent_and_names_the_step(store, tiny_model, tmp_path):
    proc = mlflow_run("main", {"data": tmp_path, "model": tiny_model}, store, expect_ok=False)
    assert proc.returncode != 0
    assert "step 'ingest' failed" in proc.stderr
    parents = [r for r in store["client"].search_runs([store["experiment_id"]])
               if r.data.tags.get("failed_step")]
    assert len(parents) == 1
    assert parents[0].info.status == "FAILED" and parents[0].data.tags["failed_step"] == "ingest"
    # The failed child is found, tagged and named in the message.
    child = [r for r in store["client"].search_runs([store["experiment_id"]])
             if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(child) == 1 and child[0].info.status == "FAILED"
    assert child[0].data.tags["step"] == "ingest"
    assert child[0].data.tags["mlflow.project.entryPoint"] == "ingest"
    assert f"step 'ingest' failed (run {child[0].info.run_id})" in proc.stderr


def test_the_readmes_link_opens_the_runs_table_with_the_named_main_run(pipeline, store):
    """MLflow 3's UI opens an experiment on a GenAI overview where none of these runs shows;
    the README's link leads to the runs table, tried in a fresh browser as a new user would."""
    import re
    import time

    from browser import browser_or_skip
    from serving import free_port

    link = re.search(r"http://127\.0\.0\.1:5000/(#/experiments/0/runs\?\S+?)>",
                     (ROOT / "README.md").read_text())
    assert link, "README has no link to the runs table"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store["uri"],
         "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT, env=subprocess_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    browser = None
    try:
        browser = browser_or_skip()
        page = link.group(1).replace("/experiments/0/", f"/experiments/{store['experiment_id']}/")
        name = pipeline["parent"].info.run_name
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                browser.get(f"http://127.0.0.1:{port}/{page}")
            except Exception:  # the server is still starting
                time.sleep(1)
                continue
            time.sleep(3)
            if name in browser.find_element("tag name", "body").text:
                break
        text = browser.find_element("tag name", "body").text
        assert name.startswith("main ") and name in text, text[:2000]
        assert "/runs" in browser.current_url
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=30)
