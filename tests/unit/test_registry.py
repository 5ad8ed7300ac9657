"""The register step: the gate, champion vs challenger, against a real registry.

Evaluate runs are crafted (their test_f1 set by hand) so each decision is forced, not left
to luck; the champion is re-scored for real, on the crafted run's test texts.
"""
from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient
from support import module_store

from agnews.config import RegisterConfig
from agnews.data.sources import load_local
from agnews.evaluation.metrics import classification_metrics
from agnews.model.logged_model import load_logged_classifier, log_classifier, score_texts
from agnews.model.pretrained import load_classifier, load_tokenizer
from agnews.registry.policy import decide, gate_failures
from steps import register

NAME = "agnews-classifier"


@pytest.mark.parametrize("metrics, expected", [
    ({"test_accuracy": 0.85, "test_f1": 0.84}, []),
    ({"test_accuracy": 0.80, "test_f1": 0.80}, []),  # the threshold itself passes
    ({"test_accuracy": 0.79, "test_f1": 0.84}, ["test_accuracy 0.7900 < min_test_accuracy 0.80"]),
    ({"test_accuracy": 0.85, "test_f1": 0.7}, ["test_f1 0.7000 < min_test_f1 0.80"]),
    ({"test_accuracy": 0.85}, ["test_f1 was not logged by the evaluate run"]),
])
def test_gate(metrics, expected):
    assert gate_failures(metrics, RegisterConfig()) == expected


@pytest.mark.parametrize("candidate, champion, alias, outcome", [
    (0.80, None, "champion", "first"),
    (0.91, 0.90, "champion", "champion"),
    (0.90, 0.90, "challenger", "challenger"),  # a tie keeps the champion
    (0.85, 0.90, "challenger", "challenger"),
])
def test_decision(candidate, champion, alias, outcome):
    decision = decide(candidate, champion, "1")
    assert (decision.alias, decision.outcome) == (alias, outcome)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, tiny_model, ag_news):
    """A tracking store with three logged tiny models and 24 real AG News test rows."""
    tmp = tmp_path_factory.mktemp("registry")
    test = load_local(ag_news).test.groupby("label").head(6).reset_index(drop=True)
    tokenizer = load_tokenizer(str(tiny_model))
    with module_store(tmp) as (uri, experiment):
        models = []
        for seed in (1, 2, 3):  # three different random heads: three different models
            torch.manual_seed(seed)
            with mlflow.start_run(experiment_id=experiment) as run:
                mlflow.set_tag("step", "train")
                log_classifier(load_classifier(str(tiny_model)), tokenizer, 32)
            models.append(f"runs:/{run.info.run_id}/model")
        yield {"client": MlflowClient(uri), "experiment": experiment, "models": models,
               "test": test, "tmp": tmp}


def crafted_evaluation(reg, model_uri: str, test_f1: float) -> str:
    """An evaluate run of `model_uri` that claims `test_f1`, with the real test texts."""
    with mlflow.start_run(experiment_id=reg["experiment"]) as run:
        mlflow.set_tags({"step": "evaluate", "input.model_uri": model_uri})
        mlflow.log_metrics({"test_f1": test_f1, "test_accuracy": test_f1})
        path = reg["tmp"] / "predictions.parquet"
        reg["test"].to_parquet(path)
        mlflow.log_artifact(str(path))
    return run.info.run_id


def run_register(evaluate_run: str, *args: str) -> dict:
    register.main(["--evaluate_run", evaluate_run, "--precision", "fp32", *args])
    run = mlflow.last_active_run()
    return {"tags": run.data.tags, "metrics": run.data.metrics}


def aliases(client) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(NAME).aliases.items()}


def test_champion_and_challenger_through_the_registry(registry):
    client, models = registry["client"], registry["models"]
    # 1. Below the gate: nothing registered, the run still records why.
    low = crafted_evaluation(registry, models[0], 0.50)
    result = run_register(low)
    assert result["tags"]["registered"] == "false" and result["tags"]["outcome"] == "gate"
    assert "test_f1 0.5000 < min_test_f1 0.80" in result["tags"]["decision"]
    assert client.search_model_versions(f"name='{NAME}'") == []

    # 2. The first version to pass the gate becomes champion.
    result = run_register(low, "--min_test_accuracy", "0", "--min_test_f1", "0")
    assert (result["tags"]["registered_version"], result["tags"]["outcome"]) == ("1", "first")
    assert aliases(client) == {"champion": "1"}

    # 3. A worse challenger: the champion is re-scored on the same rows and keeps its alias.
    worse = crafted_evaluation(registry, models[1], 0.0)
    result = run_register(worse, "--min_test_accuracy", "0", "--min_test_f1", "0")
    champion = load_logged_classifier(f"models:/{NAME}/1", "fp32")
    probs = score_texts(champion, registry["test"]["text"].tolist(), 64)
    rescored = classification_metrics(registry["test"]["label"].to_numpy(), probs)["f1"]
    assert result["metrics"]["champion_test_f1"] == pytest.approx(rescored, abs=1e-6)
    assert result["metrics"]["candidate_test_f1"] == 0.0
    assert (result["tags"]["registered_version"], result["tags"]["alias"]) == ("2", "challenger")
    assert aliases(client) == {"champion": "1", "challenger": "2"}

    # 4. A better one takes the champion alias.
    better = crafted_evaluation(registry, models[2], 1.0)
    result = run_register(better, "--min_test_accuracy", "0", "--min_test_f1", "0")
    assert (result["tags"]["registered_version"], result["tags"]["outcome"]) == ("3", "champion")
    assert result["tags"]["champion_version"] == "1"
    assert aliases(client) == {"champion": "3", "challenger": "2"}
    assert client.get_model_version(NAME, "3").tags["test_f1"] == "1.0000"

    # 5. The same model again (e.g. -P force=register): no duplicate version.
    result = run_register(better, "--min_test_accuracy", "0", "--min_test_f1", "0")
    assert result["tags"]["outcome"] == "already"
    assert len(client.search_model_versions(f"name='{NAME}'")) == 3


def test_register_refuses_a_run_that_is_not_an_evaluation(registry):
    from agnews.errors import UserError

    with mlflow.start_run(experiment_id=registry["experiment"]) as run:
        mlflow.set_tag("step", "train")
    with pytest.raises(UserError, match="not an evaluate run"):
        register.main(["--evaluate_run", run.info.run_id])
    with pytest.raises(UserError, match="is not a run in this tracking store"):
        register.main(["--evaluate_run", "0" * 32])


def test_a_register_waits_while_another_decides_on_the_same_model(registry, capsys):
    """The champion decision is one critical section: while the lock is held (as by another
    register), a register neither reads the champion nor registers; it waits, then decides."""
    import threading
    import time

    from agnews.tracking.locks import registry_lock

    client, models = registry["client"], registry["models"]
    name = "agnews-classifier-locked"  # a model of its own: passes alone and in any order
    evaluation = crafted_evaluation(registry, models[2], 0.99)
    result = {}
    with registry_lock(name):
        worker = threading.Thread(target=lambda: result.update(run_register(
            evaluation, "--registered_model", name, "--min_test_accuracy", "0",
            "--min_test_f1", "0")))
        worker.start()
        time.sleep(3)
        assert worker.is_alive() and not result
        assert client.search_model_versions(f"name='{name}'") == []
    worker.join(timeout=120)
    assert (result["tags"]["registered"], result["tags"]["outcome"]) == ("true", "first")
    assert len(client.search_model_versions(f"name='{name}'")) == 1
    assert f"register: waits for another register of '{name}'" in capsys.readouterr().out
