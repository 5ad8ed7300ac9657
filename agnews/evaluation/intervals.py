"""How far a test metric measured on a few hundred rows can be trusted: 95% intervals.

Accuracy and each class's recall are proportions of independent rows: Wilson score intervals
(statsmodels), which keep their coverage near 0 and 1 where the normal approximation does
not. F1, weighted or macro, is no proportion: a percentile bootstrap over the test rows
(scipy), seeded so a rerun logs the same interval.
"""
from __future__ import annotations

import re

import numpy as np

from agnews.config import LABELS

# Deferred imports: statsmodels, scipy and sklearn.metrics, in the functions that use them.

LEVEL = 0.95
RESAMPLES = 1000


def metric_key(name: str) -> str:
    """A class name as part of a metric name: `Sci/Tech` -> `sci_tech`."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def wilson(right: int, rows: int, level: float = LEVEL) -> tuple[float, float]:
    """The Wilson score interval of a proportion `right / rows`."""
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(right, rows, alpha=1 - level, method="wilson")
    return float(low), float(high)


def f1_from_counts(counts: np.ndarray, average: str) -> np.ndarray:
    """F1 from confusion counts (`[..., true, predicted]`), weighted by support or macro;
    a class never predicted nor present scores 0, as sklearn's `zero_division=0`."""
    right = np.diagonal(counts, axis1=-2, axis2=-1).astype(float)
    support, predicted = counts.sum(axis=-1), counts.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        f1 = np.nan_to_num(2 * right / (support + predicted))
    if average == "macro":
        return f1.mean(axis=-1)
    return (f1 * support).sum(axis=-1) / support.sum(axis=-1)


def bootstrap_f1(labels: np.ndarray, pred: np.ndarray, average: str, seed: int = 0,
                 level: float = LEVEL, resamples: int = RESAMPLES) -> tuple[float, float]:
    """A percentile bootstrap interval of the F1 score over the rows (resampled in pairs).
    The statistic is computed from confusion counts, all resamples at once: sklearn's
    `f1_score`, called once per resample, takes seconds where this takes milliseconds."""
    from scipy.stats import bootstrap

    k = len(LABELS)

    def f1(truth: np.ndarray, guess: np.ndarray, axis: int = -1) -> np.ndarray:
        truth, guess = np.atleast_2d(truth), np.atleast_2d(guess)
        cells = truth * k + guess + (k * k) * np.arange(len(truth))[:, None]
        counts = np.bincount(cells.ravel(), minlength=k * k * len(truth))
        return f1_from_counts(counts.reshape(len(truth), k, k), average).squeeze()

    result = bootstrap((labels, pred), f1, paired=True, vectorized=True, n_resamples=resamples,
                       confidence_level=level, method="percentile",
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def test_intervals(labels: np.ndarray, pred: np.ndarray, seed: int = 0) -> dict[str, float]:
    """95% intervals of the test metrics, as MLflow metrics: `test_accuracy_ci_low/_high`,
    `test_f1_ci_*` (weighted, as `test_f1`), `test_f1_macro` with its `_ci_*`, and
    `test_recall_<class>` with its `_ci_*`."""
    from sklearn.metrics import f1_score

    out: dict[str, float] = {}
    bounds = {"test_accuracy": wilson(int(np.sum(labels == pred)), len(labels)),
              "test_f1": bootstrap_f1(labels, pred, "weighted", seed),
              "test_f1_macro": bootstrap_f1(labels, pred, "macro", seed)}
    out["test_f1_macro"] = float(f1_score(labels, pred, average="macro",
                                          labels=list(range(len(LABELS))), zero_division=0))
    for index, name in enumerate(LABELS):
        members = labels == index
        if members.any():
            key = f"test_recall_{metric_key(name)}"
            out[key] = float(np.mean(pred[members] == index))
            bounds[key] = wilson(int(np.sum(pred[members] == index)), int(members.sum()))
    for key, (low, high) in bounds.items():
        out[f"{key}_ci_low"], out[f"{key}_ci_high"] = low, high
    return out
