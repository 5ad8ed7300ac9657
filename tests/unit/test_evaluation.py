"""evaluate's pure parts, the calibration maths, and every plot function, on tiny data."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from agnews.data import plots as data_plots
from agnews.evaluation import plots as eval_plots
from agnews.evaluation.metrics import (
    calibration_bins,
    classification_metrics,
    expected_calibration_error,
    per_class_metrics,
    roc_auc_macro,
)
from agnews.evaluation.predictions import (
    PROB_COLUMNS,
    as_test_metrics,
    confident_mistakes,
    predictions_frame,
)
from agnews.training import plots as training_plots

PROBS = np.array([[0.7, 0.1, 0.1, 0.1], [0.1, 0.6, 0.2, 0.1], [0.2, 0.2, 0.5, 0.1],
                  [0.1, 0.1, 0.6, 0.2]])
LABELS = np.array([0, 1, 2, 3])


def test_metrics_from_probabilities():
    m = classification_metrics(LABELS, PROBS)
    assert m["accuracy"] == 0.75
    expected_loss = -np.mean(np.log([0.7, 0.6, 0.5, 0.2]))
    assert m["loss"] == pytest.approx(expected_loss)
    # weighted F1: three classes perfect or half, Sci/Tech never predicted
    assert m["f1"] == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
    test = as_test_metrics(LABELS, PROBS)
    assert test["test_accuracy"] == 0.75 and test["test_log_loss"] == test["test_loss"]
    assert test["test_ece"] == pytest.approx(0.25)
    assert 0.5 < test["test_roc_auc"] <= 1


def test_ece_by_hand():
    # bins (0.6,0.7]: one right at 0.7; (0.5,0.6]: right and wrong at 0.6; (0.4,0.5]: right at 0.5
    assert expected_calibration_error(LABELS, PROBS) == pytest.approx((0.3 + 2 * 0.1 + 0.5) / 4)
    bins = calibration_bins(LABELS, PROBS)
    assert bins["count"].sum() == 4 and bins.loc[5, "accuracy"] == 0.5


def test_a_perfectly_calibrated_model_has_zero_ece():
    # 10 rows at confidence 0.8, 8 of them right
    probs = np.tile([0.8, 0.2 / 3, 0.2 / 3, 0.2 / 3], (10, 1))
    labels = np.array([0] * 8 + [1, 2])
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0, abs=1e-9)


def test_roc_auc_is_undefined_without_every_class():
    assert roc_auc_macro(np.array([0, 1, 0, 1]), PROBS) is None
    assert "test_roc_auc" not in as_test_metrics(np.array([0, 1, 0, 1]), PROBS)


def test_per_class_metrics_name_every_class():
    rows = per_class_metrics(LABELS, PROBS.argmax(axis=1))
    assert [r["class"] for r in rows] == ["World", "Sports", "Business", "Sci/Tech"]
    assert rows[3] == {"class": "Sci/Tech", "precision": 0.0, "recall": 0.0, "f1": 0.0,
                       "support": 1}
    assert rows[2]["precision"] == 0.5 and rows[2]["recall"] == 1.0


def test_predictions_frame_carries_text_truth_prediction_and_probabilities():
    df = pd.DataFrame({"text": list("abcd"), "label": LABELS})
    out = predictions_frame(df, PROBS)
    assert out["predicted"].tolist() == [0, 1, 2, 2]
    assert out["predicted_name"].tolist() == ["World", "Sports", "Business", "Business"]
    assert out["label_name"].iloc[3] == "Sci/Tech"
    np.testing.assert_allclose(out[PROB_COLUMNS].to_numpy(), PROBS)
    assert out["confidence"].tolist() == pytest.approx([0.7, 0.6, 0.5, 0.6])


def test_confident_mistakes_are_the_wrong_ones_surest_first():
    probs = np.array([[0.9, 0.1, 0, 0], [0.2, 0.8, 0, 0], [0.6, 0.4, 0, 0], [0.3, 0.7, 0, 0]])
    preds = predictions_frame(pd.DataFrame({"text": list("abcd"), "label": [1, 1, 1, 0]}), probs)
    out = confident_mistakes(preds, n=2)
    assert out["text"].tolist() == ["a", "d"]
    assert list(out.columns) == ["text", "true", "predicted", "confidence"]
    assert out.iloc[0][["true", "predicted"]].tolist() == ["Sports", "World"]


HISTORY = pd.DataFrame({
    "epoch": [1, 2], "train_running_loss": [1.2, 0.6], "train_loss": [0.9, 0.5],
    "val_loss": [0.95, 0.6],
    **{f"{s}_{m}": [0.7, 0.85] for s in ("train", "val")
       for m in ("accuracy", "f1", "precision", "recall")}})
STEPS = pd.DataFrame({"step": [5, 10, 15, 20], "epoch": [0.5, 1, 1.5, 2],
                      "train_loss_step": [1.3, 1.0, 0.8, 0.6],
                      "learning_rate": [4e-5, 3e-5, 2e-5, 1e-5]})
BALANCE = pd.DataFrame({"split": ["train"] * 4 + ["test"] * 4,
                        "class": ["World", "Sports", "Business", "Sci/Tech"] * 2,
                        "rows": [10, 11, 9, 10, 5, 5, 5, 5]})


@pytest.mark.parametrize("figure", [
    lambda: training_plots.loss_curves(HISTORY, STEPS),
    lambda: training_plots.loss_curves(HISTORY),
    lambda: training_plots.metric_evolution(HISTORY, best_epoch=2),
    lambda: training_plots.learning_rate_schedule(STEPS),
    lambda: data_plots.class_balance(BALANCE),
    lambda: data_plots.length_distribution({"train": np.array([3, 50, 130]),
                                       "test": np.array([20, 40])}, "tokens", 128),
    lambda: eval_plots.confusion_matrices(LABELS, PROBS.argmax(axis=1)),
    lambda: eval_plots.final_metrics({"test_accuracy": 0.9, "test_f1": 0.89,
                                      "test_precision": 0.9, "test_recall": 0.9, "test_loss": 0.3}),
    lambda: eval_plots.per_class_bars(per_class_metrics(LABELS, PROBS.argmax(axis=1))),
    lambda: eval_plots.roc_pr_curves(LABELS, PROBS),
    lambda: eval_plots.reliability_diagram(LABELS, PROBS),
    lambda: eval_plots.confidence_histogram(LABELS, PROBS),
])
def test_plot_functions_return_a_drawn_figure(figure):
    fig = figure()
    assert isinstance(fig, Figure)
    assert fig.axes and all(ax.has_data() or ax.images or ax.collections for ax in fig.axes)
    fig.canvas.draw()  # renders without error
    plt.close(fig)


def test_confusion_plot_counts_match_the_data():
    fig = eval_plots.confusion_matrices(LABELS, PROBS.argmax(axis=1))
    counts = [t.get_text() for t in fig.axes[0].texts]
    assert counts.count("1") == 4 and counts.count("0") == 12


def test_final_metrics_labels_each_bar_with_its_value():
    fig = eval_plots.final_metrics({"test_accuracy": 0.9123, "test_f1": 0.8,
                                    "test_precision": 0.7, "test_recall": 0.6})
    assert {t.get_text() for t in fig.axes[0].texts} == {"0.9123", "0.8000", "0.7000", "0.6000"}


def test_curves_and_titles_carry_the_numbers():
    roc = eval_plots.roc_pr_curves(LABELS, PROBS)
    assert [line.get_label() for line in roc.axes[0].lines][:4] == [
        "World (AUC 1.000)", "Sports (AUC 1.000)", "Business (AUC 0.667)", "Sci/Tech (AUC 1.000)"]
    reliability = eval_plots.reliability_diagram(LABELS, PROBS)
    assert "ECE 0.2500" in reliability.axes[0].get_title()
    lengths = data_plots.length_distribution({"train": np.array([3, 50, 130])}, "tokens", 128)
    assert any("33.3% truncated" in t.get_text() for t in lengths.axes[0].get_legend().texts)
    confidence = eval_plots.confidence_histogram(LABELS, PROBS)
    assert [t.get_text() for t in confidence.axes[0].get_legend().texts] == ["correct (3)",
                                                                             "wrong (1)"]


def test_f1_from_counts_is_sklearns_f1():
    from sklearn.metrics import f1_score

    from agnews.evaluation.intervals import f1_from_counts
    from agnews.evaluation.metrics import confusion_counts

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)  # class 3 absent, and never predicted
    pred = np.where(rng.random(300) < 0.7, labels, rng.integers(0, 3, 300))
    counts = confusion_counts(labels, pred)
    for average in ("weighted", "macro"):
        assert f1_from_counts(counts, average) == pytest.approx(f1_score(
            labels, pred, average=average, labels=[0, 1, 2, 3], zero_division=0))


def test_wilson_intervals_cover_the_true_accuracy_as_stated():
    """2,000 test sets of 300 rows from a model that is right 90% of the time: the 95%
    interval holds 0.9 in about 95% of them (a normal approximation holds it less often)."""
    from agnews.evaluation.intervals import wilson

    right = np.random.default_rng(1).binomial(300, 0.9, 2000)
    covered = np.mean([low <= 0.9 <= high for low, high in (wilson(k, 300) for k in right)])
    assert 0.93 <= covered <= 0.97


def probabilities(rng, labels: np.ndarray, right: float) -> np.ndarray:
    """Class probabilities whose argmax is the label `right` of the time."""
    rows = len(labels)
    pred = np.where(rng.random(rows) < right, labels, rng.integers(0, 4, rows))
    probs = rng.dirichlet(np.ones(4), rows) * 0.4
    probs[np.arange(rows), pred] += 0.6
    return probs


def test_test_intervals_hold_the_point_and_narrow_with_more_rows():
    from agnews.evaluation.intervals import test_intervals
    from agnews.evaluation.predictions import as_test_metrics

    rng = np.random.default_rng(2)

    def sample(rows):
        labels = rng.integers(0, 4, rows)
        return labels, probabilities(rng, labels, 0.85)

    labels, probs = sample(400)
    small = test_intervals(labels, probs)
    assert small == test_intervals(labels, probs)  # seeded: a rerun logs the same interval
    points = {**as_test_metrics(labels, probs), **small}
    every = [k for k in as_test_metrics(labels, probs)] + ["test_f1_macro",
                                                           "test_recall_sci_tech"]
    for key in every:  # every logged test metric has its interval, around its value
        assert small[f"{key}_ci_low"] <= points[key] <= small[f"{key}_ci_high"], key
        assert small[f"{key}_ci_low"] < small[f"{key}_ci_high"], key
    assert (small["test_recall_ci_low"], small["test_recall_ci_high"]) == (
        small["test_accuracy_ci_low"], small["test_accuracy_ci_high"])
    large = test_intervals(*sample(4000))
    for key in ("test_accuracy", "test_f1", "test_f1_macro", "test_precision", "test_loss",
                "test_roc_auc"):
        width = {n: d[f"{key}_ci_high"] - d[f"{key}_ci_low"] for n, d in (("s", small),
                                                                           ("l", large))}
        assert width["l"] < width["s"] / 2, key  # about 1/sqrt(10) as wide


def test_the_vectorized_bootstrap_statistics_are_sklearns_metrics():
    """What each resample computes from counts, ranks and bins equals the metric computed
    once on the same rows."""
    from sklearn.metrics import precision_score, roc_auc_score

    from agnews.evaluation import intervals
    from agnews.evaluation.metrics import expected_calibration_error

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, 300)
    probs = probabilities(rng, labels, 0.8)
    pred = probs.argmax(axis=1)
    resample = rng.integers(0, 300, (5, 300))
    t, p, g = labels[resample], probs[resample], pred[resample]
    # scores cut to two decimals: many ties, which AUC counts half
    tied = np.round(probs, 2)
    aucs = intervals.resampled_auc(labels, probs)(resample)
    tied_aucs = intervals.resampled_auc(labels, tied)(resample)
    for i in range(5):
        assert intervals.precision_from_counts(intervals._counts(t, g))[i] == pytest.approx(
            precision_score(t[i], g[i], average="weighted", zero_division=0))
        assert aucs[i] == pytest.approx(
            roc_auc_score(t[i], p[i], multi_class="ovr", average="macro"))
        # macro one-vs-rest by hand: sklearn's multiclass form wants rows summing to 1
        assert tied_aucs[i] == pytest.approx(np.mean(
            [roc_auc_score(t[i] == k, tied[resample[i], k]) for k in range(4)]))
        assert intervals._ece(p.max(axis=-1), (t == g).astype(float))[i] == pytest.approx(
            expected_calibration_error(t[i], p[i]))
    # a resample that drew no row of some class has no AUC for it: NaN, as the interval skips
    no_sports = np.flatnonzero(labels != 1)[:300 // 2]
    assert np.isnan(intervals.resampled_auc(labels, probs)(no_sports)).all()


def test_the_loss_plot_says_when_the_step_loss_includes_label_smoothing():
    plain = training_plots.loss_curves(HISTORY, STEPS)
    smoothed = training_plots.loss_curves(HISTORY, STEPS, label_smoothing=0.1)
    labels = [[t.get_text() for t in fig.axes[0].get_legend().get_texts()]
              for fig in (plain, smoothed)]
    assert not any("smoothing" in label for label in labels[0])
    assert "train, per step (mean since last point); label smoothing 0.1" in labels[1]
