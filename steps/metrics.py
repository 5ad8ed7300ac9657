"""Classification metrics from class probabilities: the one definition every step uses.

Weighted averages, as the seed reported, so `val_f1` during training and `test_f1` at
evaluation mean the same thing.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, log_loss, precision_recall_fscore_support

from steps.config import LABELS


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """loss (mean cross-entropy), accuracy and weighted F1 / precision / recall."""
    pred = probs.argmax(axis=1)
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, pred, average="weighted", zero_division=0)
    # Clip as log_loss would, but keep every class in play even if a tiny split lacks one.
    loss = log_loss(labels, np.clip(probs, 1e-12, 1.0), labels=list(range(len(LABELS))))
    return {"loss": float(loss), "accuracy": float(accuracy_score(labels, pred)),
            "f1": float(f1), "precision": float(precision), "recall": float(recall)}


def per_class_metrics(labels: np.ndarray, pred: np.ndarray) -> list[dict]:
    """Precision, recall, F1 and support of each class, in label order."""
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, pred, labels=list(range(len(LABELS))), zero_division=0)
    return [{"class": name, "precision": float(p), "recall": float(r), "f1": float(f),
             "support": int(s)}
            for name, p, r, f, s in zip(LABELS, precision, recall, f1, support)]


def confusion_counts(labels: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """4 x 4 counts, rows = true class, columns = predicted class."""
    counts = np.zeros((len(LABELS), len(LABELS)), dtype=int)
    np.add.at(counts, (labels, pred), 1)
    return counts
