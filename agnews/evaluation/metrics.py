"""Classification metrics from class probabilities: the one definition every step uses.

Weighted averages, as the seed reported, so `val_f1` during training and `test_f1` at
evaluation mean the same thing.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from agnews.config import LABELS

# Deferred import: sklearn.metrics, the heaviest import here, in the functions that score:
# the report and the training curves import this module for its names and counts alone.

METRICS = ("accuracy", "f1", "precision", "recall")  # the weighted scores every step logs


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """loss (mean cross-entropy), accuracy and weighted F1 / precision / recall."""
    from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

    pred = probs.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, pred, average="weighted", zero_division=0)
    # Clip as log_loss would, but keep every class in play even if a tiny split lacks one.
    loss = log_loss(labels, np.clip(probs, 1e-12, 1.0), labels=list(range(len(LABELS))))
    return {"loss": float(loss), "accuracy": float(accuracy_score(labels, pred)),
            "f1": float(f1), "precision": float(precision), "recall": float(recall)}


def per_class_metrics(labels: np.ndarray, pred: np.ndarray) -> list[dict]:
    """Precision, recall, F1 and support of each class, in label order."""
    from sklearn.metrics import precision_recall_fscore_support

    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=list(range(len(LABELS))), zero_division=0)
    return [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)}
            for name, p, r, f, s in zip(LABELS, precision, recall, f1, support, strict=True)]


def confusion_counts(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """4 x 4 counts, rows = true class, columns = predicted class."""
    counts = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(counts, (labels, pred), 1)
    return counts


def calibration_bins(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> pd.DataFrame:
    """Equal-width bins of top-class confidence: count, mean confidence, accuracy, center."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    edges = np.linspace(0, 1, n_bins + 1)
    # Right-closed bins, so a confidence of exactly 1.0 falls in the last one.
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    rows = []
    for b in range(n_bins):
        inside = which == b
        rows.append({"center": (edges[b] + edges[b + 1]) / 2, "count": int(inside.sum()),
                     "confidence": float(confidence[inside].mean()) if inside.any() else 0.0,
                     "accuracy": float(correct[inside].mean()) if inside.any() else 0.0})
    return pd.DataFrame(rows)


def expected_calibration_error(labels: np.ndarray, probs: np.ndarray, n_bins: int = 10) -> float:
    """Mean |accuracy - confidence| over confidence bins, weighted by the rows in each."""
    bins = calibration_bins(labels, probs, n_bins)
    gaps = (bins["accuracy"] - bins["confidence"]).abs()
    return float((bins["count"] * gaps).sum() / bins["count"].sum())


def roc_auc_macro(labels: np.ndarray, probs: np.ndarray) -> float | None:
    """Macro one-vs-rest ROC AUC; None when a class is missing from `labels` (undefined)."""
    if len(np.unique(labels)) < len(LABELS):
        return None
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
