"""The whole workflow through `mlflow run`: what the session pipeline's `main` left in the
tracking store (the parent and its six FINISHED children with their tags, the per-epoch
metrics, every named artifact, a report whose numbers are the logged ones, the registered
model), then what a user does next with it: a register-only change, a step and a report run
alone, and a failing step that fails the parent and names the step.
"""
from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest
import yaml
from runs import (
    EPOCH_METRICS,
    artifact_paths,
    make_store,
    mlflow_run,
    newest_main,
    run_here,
)
from support import INLINE_STEPS, ROOT, subprocess_env

from agnews.config import TrainConfig
from agnews.registry.card import CARD_METRICS
from agnews.tracking.runs import logged_table
from agnews.tracking.step_cache import STEPS


@pytest.fixture(scope="module")
def pipeline(session_pipeline):
    with session_pipeline.tracking():
        yield session_pipeline


def test_parent_and_six_finished_children_with_tags(pipeline):
    parent, children = pipeline.parent, pipeline.children
    assert parent.info.status == "FINISHED"
    assert set(children) == set(STEPS)
    for step, run in children.items():
        assert run.info.status == "FINISHED", step
        assert parent.data.tags[f"step.{step}.run_id"] == run.info.run_id
        assert run.info.run_name == step  # each child named for its step
        # a real process's peak: at least the interpreter with torch or pandas loaded
        assert 50 < run.data.metrics["peak_rss_mb"] < 64_000, step


def test_main_prints_no_library_advice_a_user_cannot_act_on(pipeline):
    """MLflow's advice on how we log our datasets and our model (a local path it can read two
    ways, integer labels, a pickled model, a predict without type hints) and its INFO lines stay
    out of a run's output; the steps' own lines stay in."""
    said = pipeline.stdout + pipeline.stderr
    for advice in ("can be interpreted in multiple ways", "Inferred schema contains integer",
                   "Add type hints to the `predict`", "CloudPickle", "INFO mlflow.models"):
        assert advice not in said, advice
    assert "main: done." in said and "evaluate: test_loss" in said


def test_parent_carries_the_test_metrics_and_links_the_report(pipeline):
    parent, evaluate = pipeline.parent, pipeline.children["evaluate"]
    for name in ("test_accuracy", "test_f1", "test_precision", "test_recall"):
        assert parent.data.metrics[name] == evaluate.data.metrics[name]
    report_id = pipeline.children["report"].info.run_id
    assert parent.data.tags["report"] == f"runs:/{report_id}/report/report.html"


def test_train_logs_every_metric_once_per_epoch(pipeline):
    client, train = pipeline.store.client, pipeline.children["train"]
    for name in EPOCH_METRICS:
        history = client.get_metric_history(train.info.run_id, name)
        assert [m.step for m in history] == [1, 2], name


def test_train_logs_mlflows_system_metrics_beside_its_curves(pipeline):
    client, children = pipeline.store.client, pipeline.children
    train = children["train"].data.metrics
    for name in ("system/cpu_utilization_percentage", "system/system_memory_usage_megabytes"):
        assert name in train, sorted(train)
    history = client.get_metric_history(children["train"].info.run_id,
                                        "system/system_memory_usage_megabytes")
    assert history and all(point.value > 0 for point in history)
    for step in ("ingest", "evaluate", "report"):  # only train asks for them
        assert not [k for k in children[step].data.metrics if k.startswith("system/")], step


def test_train_logs_live_step_points_and_the_kept_epoch(pipeline):
    client, train = pipeline.store.client, pipeline.children["train"]
    run_id, defaults = train.info.run_id, TrainConfig()
    steps = math.ceil(pipeline.params["train_size"] / defaults.train_batch_size) * \
        pipeline.params["epochs"]
    every = max(1, steps // 40)  # log_every_steps=0: about 40 points per run
    for name in ("train_loss_step", "learning_rate"):
        assert [m.step for m in client.get_metric_history(run_id, name)] == \
            list(range(every, steps + 1, every))
    rates = [m.value for m in client.get_metric_history(run_id, "learning_rate")]
    # the first step runs at the peak rate, then the rate decays
    assert rates == sorted(rates, reverse=True)
    assert rates[0] == pytest.approx(defaults.learning_rate)
    accuracy = [m.value for m in client.get_metric_history(run_id, "val_accuracy")]
    kept = int(train.data.metrics["best_epoch"])
    # The last epoch, or an earlier one at least as accurate on the validation rows.
    assert kept == len(accuracy) or accuracy[kept - 1] >= max(accuracy)


def test_training_lowers_the_training_loss(pipeline):
    history = pipeline.store.client.get_metric_history(
        pipeline.children["train"].info.run_id, "train_running_loss")
    assert history[1].value < history[0].value


PLOTS = {"ingest": ["class_balance", "text_length_words"], "tokenize": ["text_length_tokens"],
         "train": ["loss_curves", "metric_evolution", "learning_rate"],
         "evaluate": ["confusion_matrix", "final_metrics", "per_class_metrics", "roc_pr_curves",
                      "reliability_diagram", "confidence_histogram"]}


def test_the_models_settings_sit_beside_trains_parameters_without_replacing_them(pipeline):
    """MLflow logs a model's model_config as parameters of its run: the runtime the gate chose
    goes in under its own name, and the scorer the user asked for stays as asked."""
    params = pipeline.children["train"].data.params
    assert params["scorer"] == pipeline.params.get("scorer", "auto")
    assert params["runtime"] in ("pytorch", "onnx", "onnx-int8", "openvino")
    assert params["runtime"] == pipeline.children["train"].data.tags["scorer"]


def test_each_step_logs_its_named_artifacts_and_plots(pipeline):
    client, ch = pipeline.store.client, pipeline.children
    ingest = artifact_paths(client, ch["ingest"].info.run_id)
    assert {"data/train.parquet", "data/val.parquet", "data/test.parquet",
            "class_balance.json", "text_length.json"} <= set(ingest)
    tokenize = artifact_paths(client, ch["tokenize"].info.run_id)
    # Arrow files in datasets' save_to_disk layout, which train maps from disk
    assert {f"tokenized/{s}/{name}" for s in ("train", "val", "test")
            for name in ("state.json", "dataset_info.json")} <= set(tokenize)
    with pipeline.store.tracking():
        from agnews.data.tokenized import read_tokenized

        splits, meta = read_tokenized(Path(mlflow.artifacts.download_artifacts(
            run_id=ch["tokenize"].info.run_id, artifact_path="tokenized")))
    assert {s: len(rows) for s, rows in splits.items()} == meta["rows"] == {
        s: pipeline.params[f"{s}_size"] for s in ("train", "val", "test")}
    assert "tokenized/meta.json" in tokenize and "tokenizer/tokenizer_config.json" in tokenize
    # the stand-in's BERT tokenizer, through the tokenizers library alone
    assert ch["tokenize"].data.tags["tokenizer.library"] == "tokenizers"
    evaluate = artifact_paths(client, ch["evaluate"].info.run_id)
    assert {"predictions.parquet", "per_class_metrics.json",
            "most_confident_mistakes.json"} <= set(evaluate)
    for step, names in PLOTS.items():
        logged = set(artifact_paths(client, ch[step].info.run_id))
        assert {f"plots/{n}.png" for n in names} <= logged, step
    assert {"report/report.md", "report/report.html"} <= set(
        artifact_paths(client, ch["report"].info.run_id))


def test_ingest_logs_disjoint_splits_as_dataset_inputs(pipeline):
    ingest = pipeline.children["ingest"]
    inputs = {i.tags[0].value: i.dataset for i in ingest.inputs.dataset_inputs}
    assert set(inputs) == {"train", "val", "test"}
    assert all(d.digest for d in inputs.values())
    run_id = ingest.info.run_id
    frames = {s: pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path=f"data/{s}.parquet")) for s in ("train", "val", "test")}
    assert {s: len(f) for s, f in frames.items()} == {
        s: pipeline.params[f"{s}_size"] for s in ("train", "val", "test")}
    assert not set(frames["train"]["text"]) & set(frames["val"]["text"])
    tokenize = pipeline.children["tokenize"]
    assert {i.dataset.digest for i in tokenize.inputs.dataset_inputs} == {
        d.digest for d in inputs.values()}  # tokenize read exactly what ingest wrote
    assert tokenize.data.tags["input.splits.run_id"] == run_id


def test_logged_model_serves_label_names(pipeline):
    model = mlflow.pyfunc.load_model(f"runs:/{pipeline.children['train'].info.run_id}/model")
    assert model.metadata.signature is not None
    out = model.predict(["Stocks fall as oil climbs", "Late goal wins the derby"])
    labels = {cell["label"] for _, row in out.iterrows() for cell in row}
    assert labels == {"World", "Sports", "Business", "Sci/Tech"}  # top_k=None: every class


def test_evaluate_logs_metrics_and_predictions(pipeline):
    evaluate = pipeline.children["evaluate"]
    metrics = evaluate.data.metrics
    for name in ("test_accuracy", "test_f1", "test_precision", "test_recall", "test_loss",
                 "test_log_loss", "test_roc_auc", "test_ece"):
        assert name in metrics, name
    for name in ("test_accuracy", "test_f1", "test_f1_macro", "test_recall_sci_tech"):
        assert metrics[f"{name}_ci_low"] <= metrics[name] <= metrics[f"{name}_ci_high"], name
    assert "[" in pipeline.stdout.split("95% intervals over the 300 test rows:")[1]
    mistakes = logged_table(evaluate.info.run_id, "most_confident_mistakes.json")
    assert 0 < len(mistakes) <= 25 and (mistakes["true"] != mistakes["predicted"]).all()
    assert "accuracy_score" in evaluate.data.metrics  # from mlflow.models.evaluate
    preds = pd.read_parquet(mlflow.artifacts.download_artifacts(
        run_id=evaluate.info.run_id, artifact_path="predictions.parquet"))
    assert len(preds) == pipeline.params["test_size"]
    assert {"text", "label", "predicted", "prob_World", "prob_Sci/Tech"} <= set(preds.columns)
    assert (preds["predicted"] == preds["label"]).mean() == pytest.approx(
        evaluate.data.metrics["test_accuracy"])


def test_report_numbers_equal_the_logged_metrics(pipeline):
    ch = pipeline.children
    md = open(mlflow.artifacts.download_artifacts(
        run_id=ch["report"].info.run_id, artifact_path="report/report.md")).read()
    ev = ch["evaluate"].data.metrics
    for name in ("accuracy", "f1", "precision", "recall", "loss"):
        assert f"| {name} | {ev[f'test_{name}']:.4f} |" in md
    for name in ("accuracy", "f1"):  # with the interval evaluate logged
        assert (f"| {name} | {ev[f'test_{name}']:.4f} | {ev[f'test_{name}_ci_low']:.4f}-"
                f"{ev[f'test_{name}_ci_high']:.4f} |") in md
    closing = (f"main: done. test_accuracy {ev['test_accuracy']:.4f} (95% CI "
               f"{ev['test_accuracy_ci_low']:.4f}-{ev['test_accuracy_ci_high']:.4f})")
    assert closing in pipeline.stdout
    for m in pipeline.store.client.get_metric_history(ch["train"].info.run_id, "val_accuracy"):
        assert f"{m.value:.4f}" in md
    html = open(mlflow.artifacts.download_artifacts(
        run_id=ch["report"].info.run_id, artifact_path="report/report.html")).read()
    assert html.count("data:image/png;base64,") == sum(map(len, PLOTS.values()))
    for section in ("Summary", "Data", "Process", "Training curves", "Evaluation", "Errors",
                    "Conclusions", "Limitations", "Reproduce"):
        assert f"<h2>{section}</h2>" in html


def test_register_applies_the_gate_and_registers_the_champion(pipeline):
    parent, ch = pipeline.parent, pipeline.children
    metrics = ch["evaluate"].data.metrics
    gate = (pipeline.params["min_test_accuracy"], pipeline.params["min_test_f1"])
    assert metrics["test_accuracy"] >= gate[0] and metrics["test_f1"] >= gate[1]
    register = ch["register"]
    assert register.info.status == "FINISHED" and parent.info.status == "FINISHED"
    assert register.data.tags["registered"] == parent.data.tags["registered"] == "true"
    champion = pipeline.store.client.get_model_version_by_alias("agnews-classifier", "champion")
    assert champion.run_id == ch["train"].info.run_id
    uri = f"models:/agnews-classifier/{champion.version}"
    assert parent.data.tags["registered_model_uri"] == uri
    md = open(mlflow.artifacts.download_artifacts(
        run_id=ch["report"].info.run_id, artifact_path="report/report.md")).read()
    assert "## Model registry" in md and f"`{uri}/README.md`" in md


def test_the_registered_version_carries_a_model_card_with_the_evaluated_metrics(pipeline):
    """The version's files hold README.md, a Hugging Face card whose model-index metrics,
    intervals and row count are the evaluate run's; the signature and input example stay."""
    ev = pipeline.children["evaluate"].data.metrics
    client = pipeline.store.client
    champion = client.get_model_version_by_alias("agnews-classifier", "champion")
    uri = f"models:/agnews-classifier/{champion.version}"
    assert f"{uri}/README.md" in champion.description
    text = open(mlflow.artifacts.download_artifacts(f"{uri}/README.md"), encoding="utf-8").read()
    meta = yaml.safe_load(text.split("---\n")[1])
    [result] = meta["model-index"][0]["results"]
    assert result["dataset"]["split"] == "test"
    got = {m["name"]: m for m in result["metrics"]}
    assert len(got) == len(CARD_METRICS)  # every test metric, each with its interval
    for key, _, name in CARD_METRICS:
        assert got[name]["value"] == round(ev[key], 4), name
        assert got[name]["args"] == {"ci_95_low": round(ev[f"{key}_ci_low"], 4),
                                     "ci_95_high": round(ev[f"{key}_ci_high"], 4),
                                     "rows": pipeline.params["test_size"]}, name
    assert "## Promotion decision" in text and "## Hardware and precision" in text
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None and info.saved_input_example_info is not None


def test_a_register_only_change_reuses_every_earlier_step_and_adds_no_version(pipeline):
    store = pipeline.store
    before = {r.info.run_id for r in store.runs()}
    proc = mlflow_run("main", {**pipeline.params, "min_test_f1": 0.71}, store, pipeline.project,
                      **INLINE_STEPS)
    for step in ("ingest", "tokenize", "train", "evaluate"):
        assert f"main: {step} reused" in proc.stdout, step
    assert "main: register running" in proc.stdout
    assert "is this model already; nothing to do" in proc.stdout
    parent, steps = newest_main(store, before)
    assert steps["train"].info.run_id == pipeline.children["train"].info.run_id
    versions = store.client.search_model_versions("name='agnews-classifier'")
    assert len(versions) == 1 and parent.data.tags["registered"] == "true"


@pytest.fixture(scope="module")
def evaluate_alone(pipeline):
    """An evaluate run started alone (not under main) on the pipeline's model and data, in
    this process (its start-up is what `mlflow run` of report alone below pays)."""
    ch, store = pipeline.children, pipeline.store
    proc = run_here("evaluate", {"model_uri": f"runs:/{ch['train'].info.run_id}/model",
                                 "splits": f"runs:/{ch['ingest'].info.run_id}/data"}, store,
                    pipeline.project)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    alone = [r for r in store.runs()
             if r.data.tags.get("step") == "evaluate" and "mlflow.parentRunId" not in r.data.tags]
    assert len(alone) == 1
    return alone[0]


def test_a_step_runs_alone_from_upstream_uris(pipeline, evaluate_alone):
    assert evaluate_alone.info.status == "FINISHED"
    assert evaluate_alone.info.run_name == "evaluate"  # named for its step, not at random
    assert evaluate_alone.data.metrics["test_accuracy"] == \
        pipeline.children["evaluate"].data.metrics["test_accuracy"]


def test_a_report_alone_in_spanish_compares_with_the_previous_run(pipeline, evaluate_alone):
    ch, store = pipeline.children, pipeline.store
    params = {f"{s}_run": ch[s].info.run_id for s in ("ingest", "tokenize", "train", "register")}
    mlflow_run("report", {**params, "evaluate_run": evaluate_alone.info.run_id,
                          "report_lang": "es"}, store, pipeline.project)
    report = [r for r in store.runs()
              if r.data.tags.get("step") == "report" and "mlflow.parentRunId" not in r.data.tags]
    md = open(mlflow.artifacts.download_artifacts(
        run_id=report[0].info.run_id, artifact_path="report/report.md")).read()
    assert "## Conclusiones" in md
    previous = ch["evaluate"].info.run_id
    accuracy = ch["evaluate"].data.metrics["test_accuracy"]
    assert f"({previous}): test_accuracy {accuracy:.4f} → {accuracy:.4f} (+0.0000)" in md


def test_a_preset_fills_the_defaults_and_a_value_given_keeps_it(tiny_model, ag_news, tmp_path):
    """-P preset=full: every row reaches the steps with the preset's settings; what is given
    on the command line (epochs, val_size) keeps its value."""
    from agnews.presets import PRESETS

    data = tmp_path / "data"  # the sample's first rows: every one of them is the point
    data.mkdir()
    for split, rows in (("train", 120), ("test", 60)):
        lines = (ag_news / f"{split}.csv").read_text(encoding="utf-8").splitlines()[:rows]
        (data / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = make_store(tmp_path)
    params = {"data": data, "model": tiny_model, "preset": "full", "epochs": 1, "val_size": 20,
              "scorer": "pytorch", "min_test_accuracy": 0, "min_test_f1": 0}
    mlflow_run("main", params, store, **INLINE_STEPS)
    parent, steps = newest_main(store, set())
    # named for the preset and what differs from it
    assert parent.info.run_name.startswith("main preset=full epochs=1 ")
    assert " val_size=20 " in parent.info.run_name and "train_size" not in parent.info.run_name
    ingest = steps["ingest"].data.metrics
    assert (ingest["train_rows"], ingest["val_rows"], ingest["test_rows"]) == (100, 20, 60)
    train = steps["train"].data.params
    assert train["epochs"] == "1"
    assert float(train["learning_rate"]) == PRESETS["full"]["learning_rate"]
    assert train["freeze_layers"] == str(PRESETS["full"]["freeze_layers"])


# How main starts its steps: forked from its warm server (the default on Linux), a new
# interpreter each (as MLflow's project runner does), or inside main's process; the tag
# `mlflow.project.backend` says which.
STARTS = {"forked": {}, "local": {"AGNEWS_FORK_STEPS": "0"}, "inline": INLINE_STEPS}


@pytest.mark.parametrize("backend", list(STARTS))
def test_a_failing_step_fails_the_parent_and_names_the_step(tiny_model, tmp_path, backend):
    store = make_store(tmp_path)
    proc = mlflow_run("main", {"data": tmp_path, "model": tiny_model}, store, check=False,
                      **STARTS[backend])
    assert proc.returncode != 0
    assert "step 'ingest' failed" in proc.stderr
    # the step's own one-line error, above main's
    assert "ingest: error: " in proc.stderr and "Traceback" not in proc.stderr
    parents = [r for r in store.runs() if r.data.tags.get("failed_step")]
    assert len(parents) == 1
    assert parents[0].info.status == "FAILED" and parents[0].data.tags["failed_step"] == "ingest"
    # The failed child is found, tagged and named in the message.
    child = [r for r in store.runs()
             if r.data.tags.get("mlflow.parentRunId") == parents[0].info.run_id]
    assert len(child) == 1 and child[0].info.status == "FAILED"
    assert child[0].data.tags["step"] == "ingest"
    assert child[0].data.tags["mlflow.project.entryPoint"] == "ingest"
    assert child[0].data.tags["mlflow.project.backend"] == backend
    assert f"step 'ingest' failed (run {child[0].info.run_id})" in proc.stderr


def test_the_readmes_link_opens_the_runs_table_with_the_named_main_run(pipeline):
    """MLflow 3's UI opens an experiment on a GenAI overview where none of these runs shows;
    the README's link leads to the runs table, tried in a fresh browser as a new user would."""
    import re
    import time

    from browser import browser_or_skip
    from serving import free_port, wait_for

    link = re.search(r"http://127\.0\.0\.1:5000/(#/experiments/0/runs\?\S+?)>",
                     (ROOT / "README.md").read_text())
    assert link, "README has no link to the runs table"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", pipeline.store.uri,
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],  # one browser, one worker
        cwd=ROOT, env={**subprocess_env(), "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # as the README starts the UI
    browser = None
    try:
        browser = browser_or_skip()
        page = link.group(1).replace("/experiments/0/",
                                     f"/experiments/{pipeline.store.experiment_id}/")
        # the runs table shows the start of a long name
        name = pipeline.parent.info.run_name[:40]
        wait_for(f"http://127.0.0.1:{port}/health", server, 90)
        browser.get(f"http://127.0.0.1:{port}/{page}")
        deadline = time.monotonic() + 60  # the table fills in after the page loads
        while name not in browser.find_element("tag name", "body").text \
                and time.monotonic() < deadline:
            time.sleep(1)
        text = browser.find_element("tag name", "body").text
        assert name.startswith("main ") and name in text, text[:2000]
        assert "/runs" in browser.current_url
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=30)
