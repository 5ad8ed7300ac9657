"""evaluate's pure parts and every plot function, on tiny hand-made data."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from steps.evaluate import PROB_COLUMNS, as_test_metrics, predictions_frame
from steps.metrics import classification_metrics, per_class_metrics
from steps.plots import confusion_matrices, final_metrics, loss_curves, metric_evolution

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
    assert as_test_metrics(LABELS, PROBS)["test_accuracy"] == 0.75


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


HISTORY = pd.DataFrame({
    "epoch": [1, 2], "train_running_loss": [1.2, 0.6], "train_loss": [0.9, 0.5],
    "val_loss": [0.95, 0.6],
    **{f"{s}_{m}": [0.7, 0.85] for s in ("train", "val")
       for m in ("accuracy", "f1", "precision", "recall")}})


@pytest.mark.parametrize("figure", [
    lambda: loss_curves(HISTORY),
    lambda: metric_evolution(HISTORY),
    lambda: confusion_matrices(LABELS, PROBS.argmax(axis=1)),
    lambda: final_metrics({"test_accuracy": 0.9, "test_f1": 0.89, "test_precision": 0.9,
                           "test_recall": 0.9, "test_loss": 0.3}),
])
def test_plot_functions_return_a_drawn_figure(figure):
    fig = figure()
    assert isinstance(fig, Figure)
    assert fig.axes and all(ax.has_data() or ax.images or ax.collections for ax in fig.axes)
    fig.canvas.draw()  # renders without error


def test_confusion_plot_counts_match_the_data():
    fig = confusion_matrices(LABELS, PROBS.argmax(axis=1))
    counts = [t.get_text() for t in fig.axes[0].texts]
    assert counts.count("1") == 4 and counts.count("0") == 12


def test_final_metrics_labels_each_bar_with_its_value():
    fig = final_metrics({"test_accuracy": 0.9123, "test_f1": 0.8, "test_precision": 0.7,
                         "test_recall": 0.6})
    assert {t.get_text() for t in fig.axes[0].texts} == {"0.9123", "0.8000", "0.7000", "0.6000"}
