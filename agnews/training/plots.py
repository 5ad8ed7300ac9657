"""Training curves: loss, metrics per epoch, learning rate. Each function returns a Figure;
the caller logs it (`mlflow.log_figure`) and closes it, so these stay pure and testable.
"""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.figure import Figure

from agnews.evaluation.metrics import METRICS

# No display on servers or in CI. pyplot resolves its backend at the first figure, so
# choosing it after the imports is in time.
matplotlib.use("Agg")

TRAIN, VAL = "#1f77b4", "#ff7f0e"


def loss_curves(history: pd.DataFrame, steps: pd.DataFrame | None = None,
                label_smoothing: float = 0.0) -> Figure:
    """Train vs validation loss per epoch, over the per-step training loss if given.

    Per-step points are drawn at fractional epochs (step / steps per epoch) so both share
    one x axis. The per-step loss is the one training minimised, so with `label_smoothing` it
    sits above the plain cross-entropy of the epoch points, and its label says so.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if steps is not None and not steps.empty:
        ax.plot(steps["epoch"], steps["train_loss_step"], "-", color=TRAIN, alpha=0.3, lw=1,
                label="train, per step (mean since last point)" + (
                    f"; label smoothing {label_smoothing:g}" if label_smoothing else ""))
    ax.plot(history["epoch"], history["train_loss"], "o-", color=TRAIN,
            label="train (end of epoch)")
    ax.plot(history["epoch"], history["val_loss"], "o-", color=VAL, label="validation")
    ax.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss", xticks=history["epoch"])
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def metric_evolution(history: pd.DataFrame, best_epoch: int | None = None) -> Figure:
    """Accuracy, F1, precision and recall per epoch, train vs validation; the kept epoch
    marked with a dashed line."""
    fig, axes = plt.subplots(2, 2, figsize=(8, 6), sharex=True)
    for ax, metric in zip(axes.flat, METRICS, strict=True):
        ax.plot(history["epoch"], history[f"train_{metric}"], "o-", color=TRAIN, label="train")
        ax.plot(history["epoch"], history[f"val_{metric}"], "o-", color=VAL, label="validation")
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=1, label="kept epoch")
        ax.set(title=metric, xticks=history["epoch"])
        ax.grid(alpha=0.3)
    for ax in axes[1]:
        ax.set_xlabel("epoch")
    axes[0, 0].legend()
    fig.suptitle("Metrics per epoch (weighted averages)")
    fig.tight_layout()
    return fig


def learning_rate_schedule(steps: pd.DataFrame) -> Figure:
    """The learning rate each logged optimiser step used."""
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(steps["step"], steps["learning_rate"], color=TRAIN)
    ax.set(xlabel="optimiser step", ylabel="learning rate", title="Learning-rate schedule",
           ylim=(0, None))
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
