"""Evaluation plots on the test split. Each function returns a Figure; evaluate logs them.

Inputs are the true labels, the predicted class probabilities and the metrics computed in
`agnews.evaluation.metrics`, so every picture agrees with the logged numbers.
"""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.metrics import auc, precision_recall_curve, roc_curve

from agnews.config import LABELS
from agnews.evaluation.metrics import (
    METRICS,
    calibration_bins,
    confusion_counts,
    expected_calibration_error,
)

# Deferred import: seaborn (a second), only for the two plots drawn with it.

# No display on servers or in CI. pyplot resolves its backend at the first figure, so
# choosing it after the imports is in time.
matplotlib.use("Agg")


def confusion_matrices(labels: np.ndarray, pred: np.ndarray) -> Figure:
    """Confusion matrix as counts and row-normalised (share of each true class)."""
    counts = confusion_counts(labels, pred)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    import seaborn as sns

    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, values, fmt, title in ((axes[0], counts, "d", "counts"),
                                   (axes[1], shares, ".2f", "share of true class")):
        sns.heatmap(values, annot=True, fmt=fmt, cmap="Blues", cbar=False, square=True,
                    vmin=0, xticklabels=LABELS, yticklabels=LABELS, ax=ax)
        ax.set(xlabel="predicted", ylabel="true", title=title)
        ax.tick_params(axis="y", rotation=0)
    fig.suptitle("Confusion matrix on the test split")
    fig.tight_layout()
    return fig


def final_metrics(metrics: dict[str, float]) -> Figure:
    """Bar chart of the final test metrics, value printed on each bar."""
    names = [m for m in METRICS if f"test_{m}" in metrics]
    values = [metrics[f"test_{m}"] for m in names]
    fig, ax = plt.subplots(figsize=(6.4, 4))
    bars = ax.bar(names, values, color=["#4c72b0", "#55a868", "#c44e52", "#8172b2"][:len(names)])
    ax.bar_label(bars, fmt="%.4f", padding=2)
    title = "Final test metrics"
    if "test_loss" in metrics:
        title += f" (loss {metrics['test_loss']:.4f})"
    ax.set(ylim=(0, 1.08), ylabel="score", title=title)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


def per_class_bars(per_class: list[dict]) -> Figure:
    """Precision, recall and F1 of each class side by side."""
    fig, ax = plt.subplots(figsize=(7.5, 4))
    x = np.arange(len(per_class))
    for i, metric in enumerate(("precision", "recall", "f1")):
        bars = ax.bar(x + (i - 1) * 0.27, [row[metric] for row in per_class], 0.27, label=metric)
        ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=1)
    ax.set(xticks=x, xticklabels=[row["class"] for row in per_class], ylim=(0, 1.1),
           ylabel="score", title="Per-class precision, recall and F1 (test)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def roc_pr_curves(labels: np.ndarray, probs: np.ndarray) -> Figure:
    """One-vs-rest ROC and precision-recall curves per class, AUC / AP in the legend."""
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(11, 4.4))
    for k, name in enumerate(LABELS):
        truth = labels == k
        if truth.all() or not truth.any():
            continue  # a class absent from (or alone in) the test rows has no curve
        fpr, tpr, _ = roc_curve(truth, probs[:, k])
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {auc(fpr, tpr):.3f})")
        precision, recall, _ = precision_recall_curve(truth, probs[:, k])
        pr_ax.plot(recall, precision, label=f"{name} (AUC {auc(recall, precision):.3f})")
    roc_ax.plot([0, 1], [0, 1], ls="--", color="grey", lw=1)
    roc_ax.set(xlabel="false positive rate", ylabel="true positive rate",
               title="ROC, one vs rest")
    pr_ax.set(xlabel="recall", ylabel="precision", title="Precision-recall, one vs rest",
              ylim=(0, 1.02))
    for ax in (roc_ax, pr_ax):
        ax.legend(loc="lower left" if ax is pr_ax else "lower right", fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def reliability_diagram(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> Figure:
    """Accuracy vs confidence per confidence bin; the gap to the diagonal is miscalibration."""
    bins = calibration_bins(labels, probs, n_bins)
    fig, ax = plt.subplots(figsize=(5.4, 5))
    filled = bins[bins["count"] > 0]
    ax.bar(filled["center"], filled["accuracy"], width=1 / n_bins, edgecolor="black",
           alpha=0.7, label="accuracy in bin")
    ax.plot([0, 1], [0, 1], ls="--", color="grey", label="perfect calibration")
    ax.plot(filled["confidence"], filled["accuracy"], "o", color="black", ms=3)
    ece = expected_calibration_error(labels, probs, n_bins)
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="confidence (top class probability)",
           ylabel="accuracy", title=f"Reliability diagram (ECE {ece:.4f})")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def confidence_histogram(labels: np.ndarray, probs: np.ndarray) -> Figure:
    """How confident the model is when it is right and when it is wrong."""
    import seaborn as sns

    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    names = {True: f"correct ({correct.sum()})", False: f"wrong ({(~correct).sum()})"}
    frame = pd.DataFrame({"confidence": confidence, "outcome": [names[c] for c in correct]})
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    sns.histplot(data=frame, x="confidence", hue="outcome", hue_order=list(names.values()),
                 bins=np.linspace(0.25, 1, 31), multiple="layer", alpha=0.55, ax=ax,
                 palette={names[True]: "#4c72b0", names[False]: "#c44e52"})
    ax.get_legend().set_title(None)
    ax.set(xlabel="confidence (top class probability)", ylabel="test texts",
           title="Confidence of correct vs wrong predictions")
    fig.tight_layout()
    return fig
