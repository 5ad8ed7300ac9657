"""Data plots: class balance per split and the distribution of text lengths. Each function
returns a Figure; the caller logs it (`mlflow.log_figure`) and closes it.

Drawn with seaborn (imported here only, inside the functions: the steps that draw nothing do
not pay for it).
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
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.barplot(data=balance, x="class", y="rows", hue="split", order=list(LABELS), ax=ax,
                palette="tab10")
    for bars in ax.containers:
        ax.bar_label(bars, fontsize=8, padding=1)
    ax.set(xlabel="", ylabel="rows", title="Class balance per split")
    fig.tight_layout()
    return fig


def length_distribution(lengths: dict[str, np.ndarray], unit: str,
                        limit: int | None = None) -> Figure:
    """Histogram of text lengths per split (each split normalised to its own size, so splits
    of different sizes compare); `limit` (max_length) drawn as a line."""
    import seaborn as sns

    names = {split: f"{split} (n={len(values)})" for split, values in lengths.items()}
    frame = pd.DataFrame({unit: np.concatenate(list(lengths.values())),
                          "split": np.repeat(list(names.values()),
                                             [len(v) for v in lengths.values()])})
    top = int(frame[unit].max())
    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.histplot(data=frame, x=unit, hue="split", bins=np.linspace(0, top + 1, min(60, top + 2)),
                 stat="density", common_norm=False, element="step", alpha=0.35, ax=ax)
    handles, labels = list(ax.get_legend().legend_handles), list(names.values())
    ax.get_legend().remove()
    if limit is not None:
        share = float(np.mean(frame[unit] > limit))
        handles.append(ax.axvline(limit, color="black", ls="--", lw=1))
        labels.append(f"max_length {limit} ({share:.1%} truncated)")
    ax.legend(handles, labels)
    ax.set(xlabel=unit, ylabel="share of texts", title=f"Text length ({unit})")
    fig.tight_layout()
    return fig
