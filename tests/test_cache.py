"""Step cache keys and training resume, as pure functions on tiny data."""
from __future__ import annotations

import dataclasses

import pytest

from steps.cache import cache_key, fingerprint, forced_steps, source_files
from steps.config import (DataConfig, EvalConfig, RegisterConfig, ReportConfig, TokenizeConfig,
                          TrainConfig)
from steps.errors import UserError
from steps.main import STEPS, step_keys


def names(step):
    return {p.stem for p in source_files(step)}


def test_source_files_follow_imports_per_step():
    assert {"report", "report_content", "report_text", "report_conclusions"} <= names("report")
    assert {"train", "modeling", "model_logging", "plots", "metrics", "config"} <= names("train")
    assert "report_text" not in names("train") and "report_text" not in names("evaluate")
    assert "train" not in names("ingest")


def test_fingerprint_follows_content(tmp_path):
    (tmp_path / "train.csv").write_text("a")
    before = fingerprint(str(tmp_path))
    assert fingerprint(str(tmp_path)) == before
    (tmp_path / "train.csv").write_text("b")
    assert fingerprint(str(tmp_path)) != before
    assert fingerprint("fancyzhx/ag_news") == "id:fancyzhx/ag_news"


def test_cache_key_changes_with_each_ingredient():
    base = dict(step="train", params={"epochs": "2"}, upstream_keys={"tokenize": "k"},
                sources="s", inputs={"model": "m"})
    key = cache_key(**base)
    assert cache_key(**base) == key
    for change in ({"params": {"epochs": "3"}}, {"upstream_keys": {"tokenize": "k2"}},
                   {"sources": "s2"}, {"inputs": {"model": "m2"}}, {"step": "evaluate"}):
        assert cache_key(**{**base, **change}) != key


def configs(register=RegisterConfig(), **train_changes):
    return {"ingest": (DataConfig(data="fancyzhx/ag_news"),), "tokenize": (TokenizeConfig(),),
            "train": (dataclasses.replace(TrainConfig(), **train_changes),),
            "evaluate": (EvalConfig(),), "register": (register, EvalConfig()),
            "report": (ReportConfig(),)}


def test_a_train_parameter_changes_train_and_everything_after_it_only():
    a, b = step_keys(configs()), step_keys(configs(epochs=5))
    assert [a[s] == b[s] for s in STEPS] == [True, True, False, False, False, False]


def test_a_register_threshold_reruns_register_and_report_only():
    a, b = step_keys(configs()), step_keys(configs(register=RegisterConfig(min_test_f1=0.9)))
    assert [a[s] == b[s] for s in STEPS] == [True, True, True, True, False, False]


def test_a_new_hub_commit_reruns_exactly_what_reads_it():
    """main passes each Hub id's commit on as its revision parameter, so the keys follow it."""
    def keyed(data_sha="a" * 40, model_sha="b" * 40):
        pinned = configs(model_revision=model_sha)
        pinned["ingest"] = (DataConfig(data="fancyzhx/ag_news", data_revision=data_sha),)
        pinned["tokenize"] = (TokenizeConfig(model_revision=model_sha),)
        return step_keys(pinned)

    base = keyed()
    assert [base[s] == keyed(data_sha="c" * 40)[s] for s in STEPS] == [False] * 6
    assert [base[s] == keyed(model_sha="d" * 40)[s] for s in STEPS] == [
        True, False, False, False, False, False]


def test_the_checkpoint_folder_is_not_part_of_the_key():
    assert step_keys(configs()) == step_keys(configs(checkpoint_dir="/elsewhere"))


@pytest.mark.parametrize("force, expected", [
    ("", set()), ("all", set(STEPS)), ("train", {"train", "evaluate", "register", "report"}),
    ("report,tokenize", {"tokenize", "train", "evaluate", "register", "report"}),
    (" evaluate ", {"evaluate", "register", "report"}), ("register", {"register", "report"}),
])
def test_forced_steps_include_everything_after_the_first(force, expected):
    assert forced_steps(force, STEPS) == expected


def test_forcing_an_unknown_step_is_refused():
    with pytest.raises(UserError, match="unknown step"):
        forced_steps("trian", STEPS)
