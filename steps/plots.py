"""Data and training plots. Each function returns a Figure (evaluation plots: eval_plots.py).

The caller logs it (`mlflow.log_figure`) and closes it, so these stay pure and testable.
"""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers or in CI; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from steps.config import LABELS  # noqa: E402

METRICS = ("accuracy", "f1", "precision", "recall")
TRAIN, VAL = "#1f77b4", "#ff7f0e"


def loss_curves(history: pd.DataFrame, steps: pd.DataFrame | None = None) -> Figure:
    """Train vs validation loss per epoch, over the per-step training loss if given.

    Per-step points are drawn at fractional epochs (step / steps per epoch) so both share
    one x axis.
    """
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if steps is not None and not steps.empty:
        ax.plot(steps["epoch"], steps["train_loss_step"], "-", color=TRAIN, alpha=0.3, lw=1,
                label="train, per step (mean since last point)")
    ax.plot(history["epoch"], history["train_loss"], "o-", color=TRAIN, label="train (end of epoch)")
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
    for ax, metric in zip(axes.flat, METRICS):
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


def class_balance(balance: pd.DataFrame) -> Figure:
    """Rows per class in each split (from ingest's class_balance table)."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    splits = list(dict.fromkeys(balance["split"]))
    width = 0.8 / len(splits)
    for i, split in enumerate(splits):
        rows = balance[balance["split"] == split].set_index("class")["rows"]
        heights = [int(rows.get(name, 0)) for name in LABELS]
        bars = ax.bar(np.arange(len(LABELS)) + (i - (len(splits) - 1) / 2) * width, heights,
                      width, label=split)
        ax.bar_label(bars, fontsize=8, padding=1)
    ax.set_xticks(range(len(LABELS)), LABELS)
    ax.legend(title="split")
    ax.set(xlabel="", ylabel="rows", title="Class balance per split")
    fig.tight_layout()
    return fig


def length_distribution(lengths: dict[str, np.ndarray], unit: str,
                        limit: int | None = None) -> Figure:
    """Histogram of text lengths per split; `limit` (max_length) drawn as a line."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    top = max(int(v.max()) for v in lengths.values())
    bins = np.linspace(0, top + 1, min(60, top + 2))
    for split, values in lengths.items():
        ax.hist(values, bins=bins, alpha=0.5, density=True, label=f"{split} (n={len(values)})")
    if limit is not None:
        share = float(np.mean(np.concatenate(list(lengths.values())) > limit))
        ax.axvline(limit, color="black", ls="--", lw=1,
                   label=f"max_length {limit} ({share:.1%} truncated)")
    ax.set(xlabel=unit, ylabel="share of texts", title=f"Text length ({unit})")
    ax.legend()
    fig.tight_layout()
    return fig
