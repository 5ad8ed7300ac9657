"""The plots a person would rather look at than read. Each function returns a Figure.

The caller logs it (`mlflow.log_figure`) and closes it, so these stay pure and testable.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers or in CI; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from steps.config import LABELS  # noqa: E402
from steps.metrics import confusion_counts  # noqa: E402

METRICS = ("accuracy", "f1", "precision", "recall")
TRAIN, VAL = "#1f77b4", "#ff7f0e"


def loss_curves(history: pd.DataFrame) -> Figure:
    """Train vs validation loss per epoch (and the mean loss of each epoch's steps)."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    ax.plot(history["epoch"], history["train_loss"], "o-", color=TRAIN, label="train")
    ax.plot(history["epoch"], history["val_loss"], "o-", color=VAL, label="validation")
    if "train_running_loss" in history:
        ax.plot(history["epoch"], history["train_running_loss"], "o:", color=TRAIN, alpha=0.5,
                label="train (mean over the epoch's steps)")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss per epoch",
           xticks=history["epoch"])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def metric_evolution(history: pd.DataFrame) -> Figure:
    """Accuracy, F1, precision and recall per epoch, train vs validation."""
    fig, axes = plt.subplots(2, 2, figsize=(8, 6), sharex=True)
    for ax, metric in zip(axes.flat, METRICS):
        ax.plot(history["epoch"], history[f"train_{metric}"], "o-", color=TRAIN, label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], "o-", color=VAL, label="validation")
        ax.set(title=metric, xticks=history["epoch"])
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend()
    fig.suptitle("Metrics per epoch (weighted averages)")
    fig.tight_layout()
    return fig


def confusion_matrices(labels: np.ndarray, pred: np.ndarray) -> Figure:
    """Confusion matrix as counts and row-normalised (share of each true class)."""
    counts = confusion_counts(labels, pred)
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.4))
    for ax, values, fmt, title in ((axes[0], counts, "d", "counts"),
                                   (axes[1], shares, ".2f", "share of true class")):
        sns.heatmap(values, annot=True, fmt=fmt, cmap="Blues", cbar=False, ax=ax,
                    xticklabels=LABELS, yticklabels=LABELS, square=True)
        ax.set(xlabel="predicted", ylabel="true", title=title)
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
