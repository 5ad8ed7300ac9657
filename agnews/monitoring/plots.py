"""Drift plots, each a Figure: the batch's predicted class mix and the model's confidence
against the reference's; `drift_figures` adds the text lengths
(`agnews.data.plots.length_distribution`) and, with labels, the confusion matrix."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from agnews.config import LABELS
from agnews.data.plots import length_distribution
from agnews.evaluation.plots import confusion_matrices

# Deferred import: seaborn (a second), only for the two plots drawn with it.

# No display on servers or in CI. pyplot resolves its backend at the first figure, so
# choosing it after the imports is in time.
matplotlib.use("Agg")


def class_mix(reference: np.ndarray, batch: np.ndarray) -> Figure:
    """Share of each predicted class, reference (the test split) beside the batch."""
    import seaborn as sns

    frame = pd.DataFrame({
        "class": list(LABELS) * 2,
        "share": np.r_[reference / reference.sum(), batch / batch.sum()],
        "texts": [f"reference (n={int(reference.sum())})"] * len(LABELS)
        + [f"batch (n={int(batch.sum())})"] * len(LABELS)})
    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.barplot(data=frame, x="class", y="share", hue="texts", ax=ax)
    ax.set(ylabel="share of predictions", title="Predicted class mix")
    fig.tight_layout()
    return fig


def confidence(reference: np.ndarray, batch: np.ndarray) -> Figure:
    """The model's top-class probability, reference beside batch (each normalised)."""
    import seaborn as sns

    frame = pd.DataFrame({"confidence": np.r_[reference, batch],
                          "texts": [f"reference (n={len(reference)})"] * len(reference)
                          + [f"batch (n={len(batch)})"] * len(batch)})
    fig, ax = plt.subplots(figsize=(7, 3.8))
    sns.histplot(data=frame, x="confidence", hue="texts", bins=np.linspace(0.25, 1, 31),
                 stat="density", common_norm=False, element="step", alpha=0.35, ax=ax)
    ax.set(xlabel="confidence (top-class probability)", ylabel="share of texts",
           title="Model confidence")
    fig.tight_layout()
    return fig


def drift_figures(reference: pd.DataFrame, batch: pd.DataFrame, reference_lengths: np.ndarray,
                  batch_lengths: np.ndarray) -> dict[str, Figure]:
    """File name -> Figure for one batch against the reference's test predictions."""
    counts = [np.bincount(frame["predicted"].to_numpy(), minlength=len(LABELS))
              for frame in (reference, batch)]
    figures = {"length_tokens.png": length_distribution(
                   {"reference": reference_lengths, "batch": batch_lengths}, "tokens"),
               "class_mix.png": class_mix(*counts),
               "confidence.png": confidence(reference["confidence"].to_numpy(),
                                            batch["confidence"].to_numpy())}
    if "label" in batch.columns:
        figures["confusion_matrix.png"] = confusion_matrices(batch["label"].to_numpy(),
                                                             batch["predicted"].to_numpy())
    return figures
