"""The sweep's study: where it lives, continuing it only with the same settings, closing what a
killed sweep left running, one sweep per journal study, the train run's pruning hook, and
what the sweep makes of trials (configs, scores, summary, plots)."""
from __future__ import annotations

import optuna
import pytest
from matplotlib.figure import Figure
from optuna.trial import TrialState

from agnews.config import DataConfig, TrainConfig
from agnews.errors import UserError
from agnews.search.plots import search_figures
from agnews.search.study import (
    TrialPruning,
    beaten_by,
    close_stale,
    finished,
    open_study,
    storage_location,
    study_lock,
)
from agnews.search.trials import apply, kept_epoch_scores, study_summary, trial_title

SETTINGS = {"data": "ag_news", "space": "learning_rate=1e-05:0.001:log"}


@pytest.fixture
def journal(tmp_path):
    return storage_location("s", "", tmp_path)


def test_the_study_lives_in_a_journal_file_unless_a_database_url_is_given(tmp_path):
    assert storage_location("s1", "", tmp_path) == str(tmp_path / "s1.journal")
    url = "postgresql+psycopg://mlflow@127.0.0.1:5432/optuna"
    assert storage_location("s1", url, tmp_path) == url


@pytest.mark.parametrize("storage, message", [
    ("postgresql+psycopg://mlflow:secret@127.0.0.1/optuna", "password"),
    ("optuna.db", "not a database URL"),
])
def test_a_storage_that_would_leak_or_is_not_a_url_is_refused(storage, message, tmp_path):
    with pytest.raises(UserError, match=message):
        storage_location("s1", storage, tmp_path)


def test_an_unreachable_database_is_one_line():
    with pytest.raises(UserError, match="cannot open the study storage"):
        open_study("s", "sqlite:////nonexistent-folder/x/optuna.db", SETTINGS, 1, 0)


def test_a_database_study_uses_optunas_heartbeat_for_what_a_killed_sweep_left(tmp_path):
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = open_study("s", url, SETTINGS, 1, 0)
    study.optimize(lambda t: 1.0, n_trials=1)
    assert close_stale(open_study("s", url, SETTINGS, 1, 0), journal=False) == []
    assert finished(study) == 1


def test_a_study_continues_only_with_the_settings_it_was_created_with(journal):
    study = open_study("s", journal, SETTINGS, 1, 0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = open_study("s", journal, SETTINGS, 1, 0)
    assert finished(again) == 2
    with pytest.raises(UserError, match=r"other settings \(data\)"):
        open_study("s", journal, {**SETTINGS, "data": "other"}, 1, 0)


def test_a_continued_study_does_not_draw_its_first_trials_again(journal):
    first = open_study("s", journal, SETTINGS, 1, 0)
    first.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    again = open_study("s", journal, SETTINGS, 1, 0)
    again.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    xs = [t.params["x"] for t in again.trials]
    assert len(set(xs)) == 4


def test_trials_a_killed_sweep_left_running_are_marked_failed(journal):
    study = open_study("s", journal, SETTINGS, 1, 0)
    study.optimize(lambda t: 1.0, n_trials=1)
    left = study.ask()  # what a killed sweep leaves behind
    stale = close_stale(open_study("s", journal, SETTINGS, 1, 0), journal=True)
    assert [t.number for t in stale] == [left.number]
    states = [t.state for t in open_study("s", journal, SETTINGS, 1, 0).trials]
    assert states == [TrialState.COMPLETE, TrialState.FAIL]


def test_one_sweep_at_a_time_per_journal_study(journal, tmp_path):
    with study_lock("s", journal, tmp_path / "locks"):
        with pytest.raises(UserError, match="being run by another sweep"):
            with study_lock("s", journal, tmp_path / "locks"):
                pass
    with study_lock("s", journal, tmp_path / "locks"):  # free again
        pass


def test_the_train_runs_pruning_callback_stops_a_trial_worse_than_the_median_not_at_its_end(
        journal):
    study = open_study("s", journal, SETTINGS, startup_trials=1, seed=0)
    done = study.ask()
    hook = TrialPruning("s", journal, done.number, epochs=2)
    assert [hook.on_epoch(e, {"val_loss": loss}) for e, loss in ((1, 1.0), (2, 0.8))] == \
        [False, False]
    study.tell(done, 0.8)
    worse = TrialPruning("s", journal, study.ask().number, epochs=2)
    assert worse.on_epoch(1, {"val_loss": 1.5}) is True
    assert worse.reason == "val_loss 1.5000 at epoch 1"
    last = TrialPruning("s", journal, study.ask().number, epochs=1)
    assert last.on_epoch(1, {"val_loss": 1.5}) is False  # its end: keep it
    better = study.ask().number
    assert TrialPruning("s", journal, better, epochs=2).on_epoch(1, {"val_loss": 0.5}) is False
    assert open_study("s", journal, SETTINGS, 1, 0).trials[better].intermediate_values == {1: 0.5}


def test_a_trial_is_beaten_only_by_a_finished_trial_strictly_below_its_val_loss():
    assert beaten_by(0.5, [(0, 0.7), (1, 0.4), (2, 0.45)]) == (1, 0.4)
    assert beaten_by(0.4, [(0, 0.7), (1, 0.4)]) is None  # a tie: either may be chosen
    assert beaten_by(0.3, [(0, 0.7), (1, 0.4)]) is None
    assert beaten_by(0.3, []) is None


def test_the_pruning_callback_reads_which_finished_trial_beat_a_kept_val_loss(journal):
    study = open_study("s", journal, SETTINGS, startup_trials=1, seed=0)
    first, running, pruned = study.ask(), study.ask(), study.ask()
    hook = TrialPruning("s", journal, running.number, epochs=2)
    assert hook.beaten_by(0.6) is None  # nothing finished yet
    study.tell(pruned, state=TrialState.PRUNED)
    study.tell(first, 0.5)  # finished while `running` trained: read at the end, not the start
    assert hook.beaten_by(0.6) == (first.number, 0.5)
    assert hook.beaten_by(0.5) is None and hook.beaten_by(0.4) is None


def test_a_trials_values_land_in_the_data_and_train_configs():
    data, train = apply({"train_size": 500, "learning_rate": 1e-4, "epochs": 3},
                        DataConfig(), TrainConfig())
    assert (data.train_size, train.learning_rate, train.epochs) == (500, 1e-4, 3)
    assert train.train_batch_size == TrainConfig().train_batch_size
    with pytest.raises(UserError, match="epochs=0"):
        apply({"epochs": 0}, DataConfig(), TrainConfig())
    assert trial_title(3, {"learning_rate": 0.000123, "freeze_embeddings": True}) == \
        "trial 3 learning_rate=0.00012 freeze_embeddings=true"


def test_a_trial_is_scored_on_the_epoch_it_kept():
    history = {"val_loss": [(1, 0.9), (2, 0.7), (3, 0.8)], "val_accuracy": [(1, 0.6), (2, 0.8),
                                                                           (3, 0.75)]}
    assert kept_epoch_scores(history, 2) == {"val_loss": 0.7, "val_accuracy": 0.8}


def test_summary_and_plots_of_a_study(journal):
    study = open_study("s", journal, SETTINGS, 1, 0)
    assert study_summary(study)["best"] is None
    for value in (0.9, 0.6):
        trial = study.ask({"learning_rate": optuna.distributions.FloatDistribution(1e-5, 1e-3,
                                                                                   log=True)})
        for name in ("ingest_run", "tokenize_run", "run_id"):
            trial.set_user_attr(name, f"{name}-{trial.number}")
        trial.set_user_attr("val_accuracy", 1 - value)
        trial.report(value + 0.1, 1)
        study.tell(trial, value)
    study.tell(study.ask(), state=TrialState.PRUNED)
    summary = study_summary(study)
    assert summary["counts"] == {"trials_complete": 2, "trials_pruned": 1, "trials_fail": 0}
    best = summary["best"]
    assert (best["number"], best["val_loss"], best["run_id"]) == (1, 0.6, "run_id-1")
    assert best["val_accuracy"] == pytest.approx(0.4)
    figures = search_figures(study)
    assert set(figures) == {"search_history.png", "search_importances.png",
                            "search_parallel.png", "search_val_loss.png"}
    assert all(isinstance(f, Figure) and f.axes for f in figures.values())
    one = open_study("t", journal.replace("s.journal", "t.journal"), SETTINGS, 1, 0)
    one.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    assert "search_importances.png" not in search_figures(one)  # nothing to compare yet
