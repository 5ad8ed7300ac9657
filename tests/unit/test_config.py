"""Typed config: impossible values are refused, and MLproject matches the step parsers."""
from __future__ import annotations

import dataclasses

import pytest
import yaml
from support import ROOT

from agnews.cli import build_parser, parse
from agnews.config import (
    DataConfig,
    EvalConfig,
    MainConfig,
    MonitorConfig,
    PredictConfig,
    RegisterConfig,
    ReportConfig,
    SweepConfig,
    TokenizeConfig,
    TrainConfig,
    TrialConfig,
)
from agnews.errors import UserError
from steps.sweep import EXCLUDED as SWEEP_EXCLUDED


@pytest.mark.parametrize("config, kwargs, message", [
    (TrainConfig, {"epochs": 0}, "epochs=0"),
    (TrainConfig, {"epochs": -1}, "epochs=-1"),
    (TrainConfig, {"train_batch_size": 0}, "train_batch_size=0"),
    (TrainConfig, {"eval_batch_size": 0}, "eval_batch_size=0"),
    (TrainConfig, {"learning_rate": 0.0}, "learning_rate"),
    (TrainConfig, {"label_smoothing": 1.0}, "label_smoothing=1.0 is outside"),
    (TrainConfig, {"label_smoothing": -0.1}, "label_smoothing=-0.1 is outside"),
    (EvalConfig, {"eval_batch_size": 0}, "eval_batch_size=0"),
    (TokenizeConfig, {"max_length": 7}, "max_length=7"),
    (DataConfig, {"train_size": -5}, "train_size=-5"),
    (DataConfig, {"data": " "}, "data is empty"),
    (ReportConfig, {"report_lang": "fr"}, "report_lang='fr'"),
    (TrainConfig, {"log_every_steps": -1}, "log_every_steps=-1"),
    (TrainConfig, {"precision": "fp8"}, "precision='fp8'"),
    (DataConfig, {"data_revision": " "}, "data_revision is empty"),
    (TokenizeConfig, {"model_revision": ""}, "model_revision is empty"),
    (EvalConfig, {"precision": "half"}, "precision='half'"),
    (TrainConfig, {"micro_batch_tokens": "-1"}, "micro_batch_tokens=-1 is not auto or a token"),
    (TrainConfig, {"micro_batch_tokens": "many"}, "micro_batch_tokens=many is not auto"),
    (TrainConfig, {"micro_batch_tokens": "²"}, "micro_batch_tokens=² is not auto"),
    (RegisterConfig, {"min_test_f1": 1.5}, "min_test_f1=1.5"),
    (RegisterConfig, {"min_test_accuracy": -0.1}, "min_test_accuracy=-0.1"),
    (RegisterConfig, {"registered_model": " "}, "registered_model"),
    (RegisterConfig, {"gate_on": "upper"}, "gate_on='upper' is not one of point, lower_bound"),
    (RegisterConfig, {"promote": "always"}, "promote='always' is not one of better, not_worse"),
    (RegisterConfig, {"promote_alpha": 0}, "promote_alpha=0 is outside"),
    (RegisterConfig, {"promote_margin": 1}, "promote_margin=1 is outside"),
    (PredictConfig, {"output": "out.txt"}, "neither .csv nor .parquet"),
    (PredictConfig, {"model_uri": ""}, "model_uri is empty"),
])
def test_impossible_parameters_are_refused(config, kwargs, message):
    with pytest.raises(UserError, match=message):
        config(**kwargs)


def test_defaults_are_the_tuned_recipe_on_the_seed_sizes():
    train = TrainConfig()
    assert (train.epochs, train.train_batch_size, train.eval_batch_size, train.learning_rate,
            train.micro_batch_tokens, train.freeze_embeddings, train.precision) == \
        (2, 16, 64, 1.5e-4, "auto", True, "auto")
    assert EvalConfig().eval_batch_size == 64
    data = DataConfig()
    assert (data.data, data.train_size, data.val_size, data.test_size, data.seed) == \
        ("fancyzhx/ag_news", 1000, 200, 500, 42)
    assert TokenizeConfig().model == "huawei-noah/TinyBERT_General_4L_312D"
    assert TokenizeConfig().max_length == 128


def test_parse_builds_configs_and_inputs():
    (train,), uris = parse("train", ["--epochs", "3", "--learning_rate", "1e-4",
                                     "--tokenized", "runs:/abc/tokenized"],
                           [TrainConfig], {"tokenized": "uri"})
    assert train.epochs == 3 and train.learning_rate == 1e-4
    assert uris.tokenized == "runs:/abc/tokenized"


ENTRY_POINTS = {
    "main": ([DataConfig, TokenizeConfig, TrainConfig, EvalConfig, RegisterConfig, ReportConfig,
              MainConfig], []),
    "ingest": ([DataConfig], []),
    "tokenize": ([TokenizeConfig], ["splits"]),
    "train": ([TrainConfig, TrialConfig], ["tokenized", "tokenizer"]),
    "evaluate": ([EvalConfig], ["model_uri", "splits"]),
    "register": ([RegisterConfig, EvalConfig], ["evaluate_run"]),
    "report": ([ReportConfig], ["ingest_run", "tokenize_run", "train_run", "evaluate_run",
                                "register_run"]),
    "predict": ([PredictConfig, EvalConfig], ["input"]),
    "monitor": ([MonitorConfig, EvalConfig], ["input"]),
    "sweep": ([DataConfig, TokenizeConfig, TrainConfig, EvalConfig, RegisterConfig, ReportConfig,
               SweepConfig], []),
}
# Config fields an entry point does not take as parameters (it sets them itself)
EXCLUDED = {"main": {"checkpoint_dir", "sweep_run"}, "sweep": SWEEP_EXCLUDED}


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_mlproject_parameters_match_the_step_config(entry_point):
    spec = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"][entry_point]
    configs, inputs = ENTRY_POINTS[entry_point]
    fields = {f.name: f for c in configs for f in dataclasses.fields(c)}
    for name in EXCLUDED.get(entry_point, ()):
        del fields[name]
    assert set(spec["parameters"]) == set(fields) | set(inputs)
    for name, f in fields.items():
        declared = spec["parameters"][name]
        assert declared["type"] == {"int": "int", "float": "float", "str": "string",
                                    "bool": "string"}[f.type]
        default = str(declared["default"])
        assert (default == str(f.default).lower() if f.type == "bool"
                else type(f.default)(default) == f.default), name
        assert f"--{name} {{{name}}}" in spec["command"]
    for name in inputs:
        assert "default" not in spec["parameters"][name]  # inputs must be given
        assert f"--{name} {{{name}}}" in spec["command"]
    build_parser(entry_point, configs, dict.fromkeys(inputs, ""),  # no duplicate flags
                 frozenset(EXCLUDED.get(entry_point, ())))


def test_mlproject_declares_conda_env_and_all_steps():
    spec = yaml.safe_load((ROOT / "MLproject").read_text())
    assert spec["conda_env"] == "conda.yaml"
    assert set(spec["entry_points"]) == {"main", "ingest", "tokenize", "train", "evaluate",
                                         "register", "report", "predict", "sweep",
                                         "monitor"}
