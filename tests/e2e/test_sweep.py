"""The `sweep` entry point through `mlflow run`, on a tiny random BERT and real AG News rows.

One sweep of 4 trials is killed (the whole process group, as a crash would) while its third
trial trains, then continued with `-P study=`; the tests check what the two left in the
tracking store and the study: 4 finished trials and the killed one failed, no finished trial
repeated, pruning wired to the per-epoch val_loss, nested trial runs with their parameters
and curves, the best trial chosen on validation alone and tested once, the plots, and the
report's search section. Bad input stops with one line before any trial. The sweeps run their
steps and trials inside the sweep's process (INLINE_STEPS), but `n_jobs` trials, which train
at once, each in a process of its own.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState
from runs import artifact_paths, make_store, mlflow_run, mlflow_run_args, run_here
from support import INLINE_STEPS, copy_project, subprocess_env

from agnews.search.study import open_storage

SPACE = "learning_rate=1e-4:1e-2:log epochs=2:3 train_batch_size=8,16 freeze_embeddings=true"
# Enough training rows that a trial trains for about a second an epoch: the killer below
# must find the third trial while it runs.
ROWS = {"train_size": 160, "val_size": 12, "test_size": 24}
PLOTS = {"plots/search_history.png", "plots/search_parallel.png", "plots/search_val_loss.png"}


def sweep_args(params: dict) -> list[str]:
    return mlflow_run_args("sweep", params, ".")


def load(journal):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.load_study(study_name="s1", storage=open_storage(str(journal)))


def kill_during_third_trial(args, cwd, env, journal) -> list:
    """Start the sweep; once two trials finished and a third trains, kill it and everything
    it started (SIGKILL to its process group). Returns the trials as they were."""
    proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    client, deadline = MlflowClient(env["MLFLOW_TRACKING_URI"]), time.monotonic() + 600
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
            if not journal.exists():
                continue
            trials = load(journal).trials
            running = [t for t in trials if t.state == TrialState.RUNNING]
            if len(trials) - len(running) >= 2 and running and client.search_runs(
                    ["0"], filter_string=f"tags.`sweep.trial` = '{running[0].number}' and "
                                         "attributes.status = 'RUNNING'"):
                os.killpg(proc.pid, signal.SIGKILL)
                break
    finally:
        output = proc.communicate()[0]
    assert proc.returncode == -signal.SIGKILL, output[-3000:]
    return trials


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, tiny_model, ag_news):
    cwd = copy_project(tmp_path_factory.mktemp("sweep"))
    env = {**subprocess_env(), **INLINE_STEPS}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
    subprocess.run([sys.executable, "-m", "mlflow", "db", "upgrade", env["MLFLOW_TRACKING_URI"]],
                   env=env, check=True, capture_output=True)
    params = {"data": ag_news, "model": tiny_model, **ROWS, "n_trials": 4, "study": "s1",
              "space": SPACE, "pruner_startup_trials": 1, "min_test_accuracy": 0, "min_test_f1": 0}
    journal = cwd / ".sweeps" / "s1.journal"
    before = kill_during_third_trial(sweep_args(params), cwd, env, journal)
    proc = subprocess.run(sweep_args(params), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    client = MlflowClient(env["MLFLOW_TRACKING_URI"])
    runs = client.search_runs(["0"])
    parents = [r for r in runs if r.data.tags.get("step") == "sweep"]
    return {"cwd": cwd, "env": env, "client": client, "runs": runs, "before": before,
            "study": load(journal), "stdout": proc.stdout,
            "parent": next(r for r in parents if r.info.status == "FINISHED"),
            "killed_parent": next(r for r in parents if r.info.status != "FINISHED")}


def trial_runs(sweep) -> dict[int, list]:
    out: dict[int, list] = {}
    for run in sweep["runs"]:
        if "sweep.trial" in run.data.tags:
            out.setdefault(int(run.data.tags["sweep.trial"]), []).append(run)
    return out


def test_a_killed_sweep_continues_without_repeating_a_finished_trial(sweep):
    study, before = sweep["study"], sweep["before"]
    states = [t.state for t in study.trials]
    killed = next(t.number for t in before if t.state == TrialState.RUNNING)
    assert states[killed] == TrialState.FAIL
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 4
    runs = trial_runs(sweep)
    assert all(len(r) == 1 for r in runs.values())  # no trial trained twice
    for old in before:
        if old.state in (TrialState.COMPLETE, TrialState.PRUNED):
            assert study.trials[old.number].state == old.state
            assert study.trials[old.number].params == old.params
            assert runs[old.number][0].data.tags["mlflow.parentRunId"] == \
                sweep["killed_parent"].info.run_id
    assert runs[killed][0].info.status == "KILLED"
    assert f"trial {killed} was left running by a killed sweep" in sweep["stdout"]
    drawn = [tuple(sorted(t.params.items())) for t in study.trials]
    assert len(set(drawn)) == len(drawn)  # the continued sweep drew new values


def test_each_trial_is_a_nested_train_run_with_its_values_and_curves(sweep):
    study, runs = sweep["study"], trial_runs(sweep)
    parent_ids = {sweep["parent"].info.run_id, sweep["killed_parent"].info.run_id}
    for trial in study.trials:
        if trial.state == TrialState.FAIL:
            continue
        (run,) = runs[trial.number]
        assert run.info.status == "FINISHED"
        assert run.data.tags["mlflow.parentRunId"] in parent_ids
        assert run.data.tags["mlflow.project.entryPoint"] == "train"
        for name, value in trial.params.items():
            assert run.data.params[name] == str(value), name
        assert not [m for m in run.data.metrics if m.startswith("test_")]  # validation only
        epochs = [m.step for m in sweep["client"].get_metric_history(run.info.run_id,
                                                                       "val_loss")]
        # prunable: every epoch's val_loss reached the study, as the pruner reads it
        assert sorted(trial.intermediate_values) == epochs
        models = sweep["client"].search_logged_models(
            experiment_ids=["0"], filter_string=f"source_run_id = '{run.info.run_id}'")
        if trial.state == TrialState.PRUNED:
            assert run.data.tags["pruned"] == "true"
            assert int(run.data.tags["pruned_at_epoch"]) == len(epochs) < trial.params["epochs"]
            assert models == []
            assert "cache_key" not in run.data.tags  # never reused as a trained model
        else:
            assert epochs == list(range(1, trial.params["epochs"] + 1))
            assert len(models) == 1


def test_ingest_and_tokenize_run_once_for_all_trials(sweep):
    steps = [r.data.tags.get("step") for r in sweep["runs"]]
    assert steps.count("ingest") == 1 and steps.count("tokenize") == 1


def test_the_best_trial_is_chosen_on_validation_and_tested_once(sweep):
    parent, study, client = sweep["parent"], sweep["study"], sweep["client"]
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: t.value)
    assert parent.data.tags["best_trial"] == str(best.number)
    assert parent.data.tags["best_run"] == best.user_attrs["run_id"]
    assert {k[5:]: v for k, v in parent.data.params.items() if k.startswith("best.")} == \
        {k: str(v) for k, v in best.params.items()}
    assert parent.data.metrics["best_val_loss"] == pytest.approx(best.value)
    counts = {s: sum(t.state == s for t in study.trials) for s in TrialState}
    assert parent.data.metrics["trials_complete"] == counts[TrialState.COMPLETE]
    assert parent.data.metrics["trials_pruned"] == counts[TrialState.PRUNED]
    assert parent.data.metrics["trials_fail"] == counts[TrialState.FAIL]
    (evaluate,) = [r for r in sweep["runs"] if r.data.tags.get("step") == "evaluate"]
    assert evaluate.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert evaluate.data.params["model_uri"] == f"runs:/{best.user_attrs['run_id']}/model"
    assert parent.data.metrics["test_accuracy"] == evaluate.data.metrics["test_accuracy"]
    (register,) = [r for r in sweep["runs"] if r.data.tags.get("step") == "register"]
    assert register.data.params["evaluate_run"] == evaluate.info.run_id
    assert parent.data.tags["registered"] == "true"
    files = set(artifact_paths(client, parent.info.run_id))
    assert PLOTS <= files and "search/trials.csv" in files
    assert ("plots/search_importances.png" in files) == (counts[TrialState.COMPLETE] >= 2)


def test_only_trials_no_finished_trial_had_beaten_compare_runtimes(sweep):
    """A completed trial whose kept val_loss a trial finished before it had beaten cannot be
    the sweep's choice: it skips the parity gate's runtime trials and is never reused."""
    study, runs = sweep["study"], trial_runs(sweep)
    complete = sorted((t for t in study.trials if t.state == TrialState.COMPLETE),
                      key=lambda t: t.datetime_complete)
    beaten = []
    for i, trial in enumerate(complete):
        (run,) = runs[trial.number]
        tags = run.data.tags
        better = [t for t in complete[:i] if t.value < trial.value]
        if better:
            best = min(better, key=lambda t: t.value)
            assert tags["sweep.runtimes_compared"] == "false"
            assert tags["scorer"] == "pytorch"
            assert tags["scorer_reason"].startswith(
                f"a sweep trial beaten by trial {best.number} (kept val_loss "
                f"{trial.value:.4f} against {best.value:.4f})")
            assert "cache_key" not in tags
            beaten.append(trial.number)
        else:  # the gate as in any train run: here too few rows for any other runtime
            assert "sweep.runtimes_compared" not in tags and "cache_key" in tags
            assert tags["scorer_reason"].startswith("only 36 rows to judge on")
    assert sweep["parent"].data.tags["best_trial"] not in map(str, beaten)
    assert beaten, "no trial was beaten: this sweep no longer shows the skip"


def test_the_report_has_a_search_section(sweep):
    import mlflow

    client, parent = sweep["client"], sweep["parent"]
    report = parent.data.tags["report"]
    mlflow.set_tracking_uri(sweep["env"]["MLFLOW_TRACKING_URI"])
    try:
        text = open(mlflow.artifacts.download_artifacts(
            report.replace("report.html", "report.md"))).read()
    finally:
        mlflow.set_tracking_uri(None)
    study = sweep["study"]
    done = sum(t.state == TrialState.COMPLETE for t in study.trials)
    assert "## Search" in text
    assert f"{len(study.trials)} trial(s) ran, {done} completed" in text
    assert f"chosen trial {parent.data.tags['best_trial']} " in text
    assert "img/search_history.png" in text
    assert client.get_run(report.split("/")[1]).data.tags["input.sweep_run"] == \
        parent.info.run_id


@pytest.mark.parametrize("params, message, how", [
    ({"space": "learnin_rate=1e-5:1e-3"}, "unknown parameter 'learnin_rate'", "mlflow run"),
    ({"space": "epochs=4:2"}, "empty range", "here"),
    ({"n_trials": 0}, "n_trials=0 must be at least 1", "here"),
])
def test_bad_input_stops_with_one_line_before_any_trial(params, message, how, tmp_path,
                                                         monkeypatch):
    """One case as users meet it (`mlflow run`, its exit code and stderr); the others are the
    same entry point in this process, from the project folder as `mlflow run` starts it."""
    cwd = copy_project(tmp_path / "project")
    store = make_store(tmp_path)
    if how == "mlflow run":
        proc = mlflow_run("sweep", {"data": "unused", **params}, store, cwd, check=False)
    else:
        monkeypatch.chdir(cwd)
        proc = run_here("sweep", {"data": "unused", **params}, store, cwd)
    assert proc.returncode != 0
    errors = [line for line in proc.stderr.splitlines() if line.startswith("sweep: error")]
    assert len(errors) == 1 and message in errors[0], proc.stderr[-2000:]
    assert not (cwd / ".sweeps").exists()
    assert [r.data.tags.get("step") for r in store.runs()] == [None]  # only the failed sweep run


def test_main_with_the_chosen_values_reuses_the_best_trials_model(sweep, ag_news, tiny_model):
    parent = sweep["parent"]
    values = {k[5:]: v for k, v in parent.data.params.items() if k.startswith("best.")}
    params = {"data": ag_news, "model": tiny_model, **ROWS, "freeze_embeddings": "true",
              "min_test_accuracy": 0, "min_test_f1": 0, **values}
    proc = subprocess.run(mlflow_run_args("main", params, "."), cwd=sweep["cwd"],
                          env=sweep["env"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    best_run = parent.data.tags["best_run"]
    assert f"main: train reused {best_run} (cached)" in proc.stdout
    evaluate = parent.data.tags["step.evaluate.run_id"]
    assert f"main: evaluate reused {evaluate} (cached)" in proc.stdout


def test_a_failing_ingest_stops_the_sweep_at_its_first_trial(tmp_path, tiny_model):
    cwd = copy_project(tmp_path / "project")
    env = {**subprocess_env(), **INLINE_STEPS}
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = subprocess.run(sweep_args({"data": tmp_path / "no-such-folder", "model": tiny_model,
                                      "n_trials": 5, "study": "s2"}),
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "sweep: error: step 'ingest' failed" in proc.stderr, proc.stderr[-2000:]
    study = optuna.load_study(study_name="s2",
                              storage=open_storage(str(cwd / ".sweeps" / "s2.journal")))
    assert [t.state for t in study.trials] == [TrialState.FAIL]  # not five failed trials


def test_n_jobs_runs_trials_at_once_and_timeout_stops_starting_new_ones(tmp_path, tiny_model,
                                                                        ag_news):
    cwd = copy_project(tmp_path / "project")
    env = {**subprocess_env(), **INLINE_STEPS}  # but the trials, which train at once
    env["MLFLOW_TRACKING_URI"] = f"sqlite:///{cwd / 'mlflow.db'}"
    params = {"data": ag_news, "model": tiny_model, "train_size": 40, "val_size": 12,
              "test_size": 24, "n_trials": 6, "n_jobs": 2, "timeout_minutes": 0.01,
              "study": "s3", "space": "learning_rate=1e-4:1e-2:log epochs=1",
              "min_test_accuracy": 0, "min_test_f1": 0}
    proc = subprocess.run(sweep_args(params), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    runs = MlflowClient(env["MLFLOW_TRACKING_URI"]).search_runs(
        ["0"], filter_string="tags.`sweep.study` = 's3' and tags.step = 'train'")
    assert len(runs) == 2  # the first two started together; after them the time was up
    first, second = sorted(runs, key=lambda r: r.info.start_time)
    assert second.info.start_time < first.info.end_time  # they overlapped
    # each in a process of its own (a new interpreter: with the steps inline the sweep starts
    # no warm server), where the sweep's other steps ran in the sweep's
    assert {r.data.tags["mlflow.project.backend"] for r in runs} == {"local"}
    assert {r.data.tags["process.pid"] for r in runs}.isdisjoint(
        {r.data.tags["process.pid"] for r in MlflowClient(env["MLFLOW_TRACKING_URI"])
         .search_runs(["0"], filter_string="tags.step = 'evaluate'")})
