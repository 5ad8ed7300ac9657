"""Data plots: class balance per split and the distribution of text lengths. Each function
returns a Figure; the caller logs it (`mlflow.log_figure`) and closes it.

Drawn with pandas' and matplotlib's own plotting, not seaborn: ingest and tokenize draw only
these two, and importing seaborn (which imports `scipy.stats`) would be most of a second of
each step's start (docs/performance.md, Step start-up). Evaluate's and monitor's plots use
seaborn.
"""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from agnews.config import LABELS

# No display on servers or in CI. pyplot resolves its backend at the first figure, so
# choosing it after the imports is in time.
matplotlib.use("Agg")


def class_balance(balance: pd.DataFrame) -> Figure:
    """Rows per class in each split (from ingest's class_balance table)."""
    splits = list(dict.fromkeys(balance["split"]))  # in the table's order: train, val, test
    table = balance.pivot(index="class", columns="split", values="rows")
    fig, ax = plt.subplots(figsize=(7, 3.8))
    table.reindex(index=list(LABELS), columns=splits).plot.bar(ax=ax, rot=0, width=0.8)
    for bars in ax.containers:
        ax.bar_label(bars, fontsize=8, padding=1)
    ax.legend(title="split")
    ax.set(xlabel="", ylabel="rows", title="Class balance per split")
    fig.tight_layout()
    return fig


def length_distribution(lengths: dict[str, np.ndarray], unit: str,
                        limit: int | None = None) -> Figure:
    """Histogram of text lengths per split, each bar the share of its own split's texts (so
    splits of different sizes compare); `limit` (max_length) drawn as a line."""
    values = np.concatenate([np.asarray(v) for v in lengths.values()])
    top = int(values.max())
    bins = np.linspace(0, top + 1, min(60, top + 2))
    fig, ax = plt.subplots(figsize=(7, 3.8))
    handles, labels = [], []
    for i, (split, v) in enumerate(lengths.items()):
        color = f"C{i}"
        weights = np.full(len(v), 1 / max(len(v), 1))
        ax.hist(v, bins=bins, weights=weights, histtype="stepfilled", color=color, alpha=0.35)
        _, _, edge = ax.hist(v, bins=bins, weights=weights, histtype="step", color=color)
        handles.append(edge[0])
        labels.append(f"{split} (n={len(v)})")
    if limit is not None:
        share = float(np.mean(values > limit))
        handles.append(ax.axvline(limit, color="black", ls="--", lw=1))
        labels.append(f"max_length {limit} ({share:.1%} truncated)")
    ax.legend(handles, labels)
    ax.set(xlabel=unit, ylabel="share of texts", title=f"Text length ({unit})")
    fig.tight_layout()
    return fig
