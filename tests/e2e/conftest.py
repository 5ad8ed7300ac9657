"""The session pipeline, which the end-to-end tests share.

It is one real `mlflow run . -e main` of the offline stand-in model (all-MiniLM-L6-v2) on a few
hundred rows of the repository's AG News sample, registered as `agnews-classifier@champion`.
Its steps run inside main's process (INLINE_STEPS: the same runs, without six start-ups); the
step cache's first `main` and the hanging-Hub, Kubernetes and crash tests run each step in a
process of its own, as `mlflow run` does by default. The tests that only read what a `main`
leaves (the runs, their metrics and artifacts, the report, the registered model) share it, and
the tests of what users do next (monitor, predict, serve, the model's behaviour) start from it.
Tests that change its store add runs beside it and never remove any.
"""
from __future__ import annotations

import pytest
from runs import Pipeline, make_store, mlflow_run, newest_main
from support import INLINE_STEPS, copy_project
from tiny_model import standin_model_dir

SESSION_PARAMS = {"train_size": 400, "val_size": 100, "test_size": 300, "epochs": 2,
                  "min_test_accuracy": 0.7, "min_test_f1": 0.7}


@pytest.fixture(scope="session")
def session_pipeline(tmp_path_factory, ag_news) -> Pipeline:
    """`mlflow run . -e main` of the stand-in on 400 train, 100 validation and 300 test rows
    of the sample, from a copy of the project, into a store of its own."""
    tmp = tmp_path_factory.mktemp("session-pipeline")
    project = copy_project(tmp / "project")
    store = make_store(tmp, "session")
    params = {"data": ag_news, "model": standin_model_dir(), **SESSION_PARAMS}
    # sample system metrics every second: a short train run still logs some
    proc = mlflow_run("main", params, store, project, **INLINE_STEPS,
                      MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
    parent, children = newest_main(store, set())
    return Pipeline(store, project, params, parent, children, proc.stdout, proc.stderr)
