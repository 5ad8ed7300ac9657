"""`-P num_processes=2`: the train entry point runs under torchrun in two CPU processes
(gloo), through `mlflow run` as a user starts it, next to the same train with one process on
the same tokenized rows; and the gradient of one batch under torchrun against one process's
(tests/ddp_gradients.py).

With dropout off the update of each step does not depend on how its rows are split, so two
processes must reproduce one process's curves to float rounding: that checks the sharing of
every batch (uneven shares, a process with no row in the last batch, micro-batches that skip
the gradient sync) and the gathering of the metrics. Process 0 alone logs: one point per
epoch and metric, one model.
"""
from __future__ import annotations

import re
import subprocess
import sys

import mlflow
import pytest
from runs import EPOCH_METRICS, artifact_paths, make_store, mlflow_run, run_here
from support import ROOT, subprocess_env

# 40 rows in batches of 13: shares of 7 and 6 rows, and a last batch of 1 row that leaves
# process 1 without one; 64 tokens per forward pass splits every share into micro-batches.
DATA = {"train_size": 40, "val_size": 12, "test_size": 24}
TRAIN = {"epochs": 2, "train_batch_size": 13, "micro_batch_tokens": 64, "learning_rate": 3e-3,
         "precision": "fp32"}


def run_id_of(proc) -> str:
    return re.findall(r"Run \(ID '([0-9a-f]+)'\)", proc.stderr)[-1]


@pytest.fixture(scope="module")
def trains(tmp_path_factory, ag_news):
    """Train runs with one process and with two, on the rows one tokenize run wrote."""
    from tiny_model import make_tiny_bert

    tmp = tmp_path_factory.mktemp("ddp")
    model = make_tiny_bert(tmp / "model", dropout=0.0)
    store = make_store(tmp, "ddp")
    # the data in this process (run_here); the train entry point, the one under test, as users
    # start it
    ingest = run_here("ingest", {"data": ag_news, **DATA}, store)
    tokenize = run_here("tokenize", {"splits": f"runs:/{ingest.run_id}/data", "model": model},
                        store)
    assert ingest.returncode == tokenize.returncode == 0, ingest.stderr + tokenize.stderr
    tokenize = tokenize.run_id
    uris = {"tokenized": f"runs:/{tokenize}/tokenized", "tokenizer": f"runs:/{tokenize}/tokenizer"}
    runs = {}
    for n in (1, 2):
        # sample system metrics every second: a tiny model trains in seconds
        proc = mlflow_run("train", {**uris, **TRAIN, "model": model, "num_processes": n}, store,
                          MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL="1")
        runs[n] = store.client.get_run(run_id_of(proc))
    return {"client": store.client, "runs": runs, "experiment": store.experiment_id}


@pytest.mark.parametrize("rows", [5, 1])  # uneven shares; a process without a row
def test_backward_leaves_the_whole_batchs_gradient_in_every_process(rows):
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         str(ROOT / "tests" / "ddp_gradients.py"), str(rows)],
        cwd=ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for rank in (0, 1):
        assert f"rank {rank} of 2: the gradients of {rows} rows match" in proc.stdout


def history(client, run, name) -> list[tuple[int, float]]:
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]


def test_two_processes_log_one_point_per_epoch_and_one_model(trains):
    client, two = trains["client"], trains["runs"][2]
    assert two.data.tags["num_processes"] == "2"
    assert two.data.tags["micro_batch_tokens_used"] == "64"  # a count holds on any device
    assert trains["runs"][1].data.tags["num_processes"] == "1"
    for name in EPOCH_METRICS:
        assert [step for step, _ in history(client, two, name)] == [1, 2], name
    assert "system/cpu_utilization_percentage" in two.data.metrics  # from process 0
    steps = [step for step, _ in history(client, two, "train_loss_step")]
    assert steps == sorted(set(steps))  # no point logged twice
    models = mlflow.MlflowClient(client.tracking_uri).search_logged_models(
        experiment_ids=[trains["experiment"]],
        filter_string=f"source_run_id = '{two.info.run_id}'")
    assert len(models) == 1
    assert sum(path.endswith("/MLmodel") or path == "MLmodel"
               for path in artifact_paths(client, two.info.run_id)) <= 1


def test_two_processes_train_as_one_to_float_rounding(trains):
    client, one, two = trains["client"], trains["runs"][1], trains["runs"][2]
    for name in ("train_running_loss", "val_loss", "train_loss", "val_accuracy", "train_f1"):
        assert [v for _, v in history(client, two, name)] == pytest.approx(
            [v for _, v in history(client, one, name)], abs=1e-4), name
    assert [v for _, v in history(client, two, "train_loss_step")] == pytest.approx(
        [v for _, v in history(client, one, "train_loss_step")], abs=1e-4)
