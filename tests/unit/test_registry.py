"""The register step: the gate, champion vs challenger, against a real registry.

Evaluate runs are crafted (their test_f1 set by hand) so each decision is forced, not left
to luck; the champion is re-scored for real, on the crafted run's test texts.
"""
from __future__ import annotations

import mlflow
import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from statsmodels.stats.proportion import proportion_confint
from support import module_store

from agnews.config import RegisterConfig
from agnews.data.sources import load_local
from agnews.evaluation.metrics import classification_metrics
from agnews.model.logged_model import load_logged_classifier, log_classifier, score_texts
from agnews.model.pretrained import load_classifier, load_tokenizer
from agnews.registry.paired import Paired
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


def test_the_gate_on_the_lower_bound_fails_a_model_that_passes_on_its_value():
    metrics = {"test_accuracy": 0.82, "test_accuracy_ci_low": 0.78, "test_f1": 0.82,
               "test_f1_ci_low": 0.81}
    assert gate_failures(metrics, RegisterConfig()) == []
    assert gate_failures(metrics, RegisterConfig(gate_on="lower_bound")) == [
        "test_accuracy_ci_low 0.7800 < min_test_accuracy 0.80"]
    assert gate_failures({"test_accuracy": 0.9, "test_f1": 0.9},
                         RegisterConfig(gate_on="lower_bound"))[0].startswith(
        "test_accuracy_ci_low was not logged by the evaluate run: evaluate it again")


def table(rows: int, only_candidate: int, only_champion: int, both: int) -> Paired:
    return Paired(rows, both + only_candidate, both + only_champion, only_candidate,
                  only_champion)


def test_the_first_version_becomes_champion():
    decision = decide(None, None, RegisterConfig())
    assert (decision.alias, decision.outcome, decision.p) == ("champion", "first", None)


@pytest.mark.parametrize("cells, promote, alias, verdict, words", [
    ((500, 40, 10, 420), "better", "champion", "better", "the candidate is better"),
    ((500, 21, 18, 430), "better", "challenger", "indistinguishable", "could not be told apart"),
    ((500, 6, 12, 440), "better", "challenger", "indistinguishable", "could not be told apart"),
    ((500, 18, 18, 430), "better", "challenger", "indistinguishable", "could not be told apart"),
    ((500, 10, 40, 420), "better", "challenger", "worse", "the champion is better"),
    ((7600, 300, 300, 6400), "not_worse", "champion", "not_worse",
     "not worse by more than the margin"),
    ((500, 20, 20, 430), "not_worse", "challenger", "could_be_worse",
     "could be worse by more than the margin"),
])
def test_the_paired_decision(cells, promote, alias, verdict, words):
    decision = decide(table(*cells), "3", RegisterConfig(promote=promote))
    assert (decision.alias, decision.outcome, decision.verdict) == (alias, alias, verdict)
    assert words in decision.reason and f"p = {decision.p:.3g}" in decision.reason
    rows, only_candidate, only_champion, _ = cells
    assert (f"they disagree on {only_candidate + only_champion} rows, the candidate right on "
            f"{only_candidate} and the champion on {only_champion}") in decision.reason
    assert f"on the same {rows} test rows" in decision.reason and "95% CI" in decision.reason


def draws(rng, rows: int, difference: float, disagree: float, n: int) -> list[Paired]:
    """`n` paired tables of two models whose accuracies differ by `difference`, disagreeing
    on a share `disagree` of the rows (champion accuracy 0.90)."""
    only_candidate, only_champion = (disagree + difference) / 2, (disagree - difference) / 2
    both = 0.90 - only_champion
    cells = rng.multinomial(rows, [both, only_candidate, only_champion,
                                   1 - both - only_candidate - only_champion], size=n)
    return [table(rows, int(c[1]), int(c[2]), int(c[0])) for c in cells]


def test_equal_models_swap_the_champion_at_most_at_alpha_where_higher_f1_swapped_half():
    """Two equally good models on 500 rows, 1,000 times: 'higher wins' hands the candidate the
    alias nearly half the time; McNemar's test at 0.05 does so at most 5% of the time (95%
    Clopper-Pearson interval)."""
    rng = np.random.default_rng(0)
    tables = draws(rng, 500, 0.0, 0.10, 1000)
    higher_wins = sum(t.only_candidate > t.only_champion for t in tables)
    promoted = sum(decide(t, "1", RegisterConfig()).alias == "champion" for t in tables)
    assert higher_wins > 400
    assert proportion_confint(promoted, 1000, method="beta")[0] <= 0.05


def test_not_worse_promotes_a_model_worse_by_the_margin_at_most_at_alpha():
    """A candidate exactly `promote_margin` (1 point) worse, 1,000 times on 500 rows: promoted
    at most 5% of the time within the interval; one as good as the champion on 7,600 rows is
    promoted most of the time (the test's power: about 4 times in 5 at 10% disagreement)."""
    rng = np.random.default_rng(1)
    cfg = RegisterConfig(promote="not_worse")
    worse = sum(decide(t, "1", cfg).alias == "champion"
                for t in draws(rng, 500, -0.01, 0.1, 1000))
    assert proportion_confint(worse, 1000, method="beta")[0] <= 0.05
    equal = sum(decide(t, "1", cfg).alias == "champion" for t in draws(rng, 7600, 0, 0.1, 200))
    assert equal > 150


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
    """An evaluate run of `model_uri` that claims `test_f1`, with the real test texts and
    predictions right on that share of them (the first rows), wrong on the rest."""
    test = reg["test"].copy()
    right = np.arange(len(test)) < round(test_f1 * len(test))
    test["predicted"] = np.where(right, test["label"], (test["label"] + 1) % 4)
    with mlflow.start_run(experiment_id=reg["experiment"]) as run:
        mlflow.set_tags({"step": "evaluate", "input.model_uri": model_uri})
        mlflow.log_metrics({"test_f1": test_f1, "test_accuracy": test_f1})
        path = reg["tmp"] / "predictions.parquet"
        test.to_parquet(path)
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
    # ...with its model card among the version's model files, linked from its description.
    card = result["tags"]["model_card"]
    assert card == f"models:/{NAME}/1/README.md"
    assert card in client.get_model_version(NAME, "1").description
    text = open(mlflow.artifacts.download_artifacts(card, dst_path=str(registry["tmp"] / "c1")),
                encoding="utf-8").read()
    assert text.startswith("---\n")
    assert "\nFirst version to pass the gate: it becomes champion.\n" in text
    assert "README.md" in {f.path for f in client.list_logged_model_artifacts(
        mlflow.models.get_model_info(models[0]).model_id)}

    # 3. A worse challenger: the champion is re-scored on the same rows and keeps its alias.
    worse = crafted_evaluation(registry, models[1], 0.0)
    result = run_register(worse, "--min_test_accuracy", "0", "--min_test_f1", "0")
    champion = load_logged_classifier(f"models:/{NAME}/1", "fp32")
    probs = score_texts(champion, registry["test"]["text"].tolist(), 64)
    rescored = classification_metrics(registry["test"]["label"].to_numpy(), probs)
    assert result["metrics"]["champion_test_f1"] == pytest.approx(rescored["f1"], abs=1e-6)
    assert result["metrics"]["candidate_test_f1"] == 0.0
    assert (result["tags"]["registered_version"], result["tags"]["alias"]) == ("2", "challenger")
    assert aliases(client) == {"champion": "1", "challenger": "2"}
    # ...compared row by row: the candidate is right nowhere, the champion where it is right.
    champion_right = round(rescored["accuracy"] * 24)
    assert (result["metrics"]["paired_rows"], result["metrics"]["only_candidate_right"],
            result["metrics"]["only_champion_right"]) == (24, 0, champion_right)
    assert result["tags"]["promotion_test"] == "McNemar exact, one-sided"
    assert result["metrics"]["promotion_p"] == 1.0
    assert "the champion is better" in result["tags"]["decision"]
    assert result["tags"]["promotion_verdict"] == "worse"

    # 4. A better one takes the champion alias: right on every row where the untrained
    # champion (a random head) is wrong, which McNemar's test cannot put down to chance.
    assert champion_right <= 12, "the untrained champion should be right on few of 24 rows"
    better = crafted_evaluation(registry, models[2], 1.0)
    result = run_register(better, "--min_test_accuracy", "0", "--min_test_f1", "0")
    assert (result["tags"]["registered_version"], result["tags"]["outcome"]) == ("3", "champion")
    assert result["metrics"]["promotion_p"] == pytest.approx(0.5 ** (24 - champion_right))
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


def test_a_paired_table_counts_the_rows_where_exactly_one_is_right():
    candidate = np.array([1, 1, 0, 0, 1, 0], bool)
    champion = np.array([1, 0, 1, 0, 0, 0], bool)
    assert Paired.of(candidate, champion) == Paired(6, 3, 2, 2, 1)
    with pytest.raises(ValueError, match="both must answer the same rows"):
        Paired.of(candidate, champion[:5])
