"""How far a test metric measured on a few hundred rows can be trusted: 95% intervals.

Accuracy and each class's recall are proportions of independent rows: Wilson score intervals
(statsmodels), which keep their coverage near 0 and 1 where the normal approximation does
not. Weighted recall is the accuracy (each class's recall weighted by its rows is the share of
rows right), so it takes the accuracy's interval. The rest are no proportions: weighted
precision, weighted and macro F1, the log loss, macro ROC AUC and the calibration error get a
percentile bootstrap over the test rows (scipy), seeded so a rerun logs the same interval.
"""
from __future__ import annotations

import re

import numpy as np

from agnews.config import LABELS

# Deferred imports: statsmodels, scipy and sklearn.metrics, in the functions that use them.

LEVEL = 0.95
RESAMPLES = 1000
# Rows x resamples per vectorized call of a statistic: all 1,000 resamples of 7,600 test rows
# at once held ~1 GB of temporaries (each statistic makes several arrays of rows x resamples);
# in parts the memory no longer grows with the test split, for a few more calls.
BOOTSTRAP_CELLS = 500_000


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


def precision_from_counts(counts: np.ndarray) -> np.ndarray:
    """Weighted precision from confusion counts (`[..., true, predicted]`); a class never
    predicted scores 0, as sklearn's `zero_division=0`."""
    right = np.diagonal(counts, axis1=-2, axis2=-1).astype(float)
    support, predicted = counts.sum(axis=-1), counts.sum(axis=-2)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(right / predicted)
    return (precision * support).sum(axis=-1) / support.sum(axis=-1)


def _counts(truth: np.ndarray, guess: np.ndarray) -> np.ndarray:
    """Confusion counts of each resample (rows of `truth` / `guess`) at once: one bincount
    where sklearn would be called once per resample (seconds, where this takes milliseconds)."""
    k = len(LABELS)
    cells = truth * k + guess + (k * k) * np.arange(len(truth))[:, None]
    return np.bincount(cells.ravel(), minlength=k * k * len(truth)).reshape(len(truth), k, k)


def _ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> np.ndarray:
    """The calibration error of each resample, with `expected_calibration_error`'s bins."""
    which = np.clip(np.searchsorted(np.linspace(0, 1, bins + 1), confidence, side="left") - 1,
                    0, bins - 1) + bins * np.arange(len(confidence))[:, None]
    size = bins * len(confidence)
    gap = (np.bincount(which.ravel(), correct.ravel(), size)
           - np.bincount(which.ravel(), confidence.ravel(), size))
    return np.abs(gap.reshape(len(confidence), bins)).sum(axis=-1) / confidence.shape[-1]


def resampled_auc(labels: np.ndarray, probs: np.ndarray):
    """The statistic `bootstrap` resamples for macro one-vs-rest ROC AUC: it takes row indices
    (a resample per row of the array) and returns each resample's AUC; NaN where a resample
    lacks a class.

    Written out because no library scores a resample without sorting it again (sklearn's
    roc_auc_score and scipy's rankdata sort each resample and class). The scores are sorted
    once here; a resample is then only a count of how often it drew each distinct score among
    its positive and negative rows, and its AUC is the Mann-Whitney form on those counts: every
    positive row's share of negative rows scored lower, ties counting half, as midranks count
    them."""
    columns = []
    for k in range(len(LABELS)):
        distinct, group = np.unique(probs[:, k], return_inverse=True)
        columns.append((group.ravel(), len(distinct), labels == k))

    def statistic(index: np.ndarray) -> np.ndarray:
        index = np.atleast_2d(index)
        out = []
        for group, groups, positive in columns:
            cells = (group[index] + groups * np.arange(len(index))[:, None]).ravel()
            size = groups * len(index)
            pos = np.bincount(cells, positive[index].ravel(), size).reshape(len(index), groups)
            neg = np.bincount(cells, minlength=size).reshape(len(index), groups) - pos
            below = np.cumsum(neg, axis=-1) - neg  # negatives scored lower than each group
            n_pos, n_neg = pos.sum(axis=-1), neg.sum(axis=-1)
            with np.errstate(divide="ignore", invalid="ignore"):
                out.append((pos * (below + neg / 2)).sum(axis=-1) / (n_pos * n_neg))
        return np.mean(out, axis=0)

    return statistic


def bootstrap(statistic, *rows: np.ndarray, seed: int = 0, level: float = LEVEL,
              resamples: int = RESAMPLES) -> tuple[float, float]:
    """A percentile bootstrap interval of `statistic` over the test rows, resampled together:
    `statistic` takes each per-row array with the resamples along a first axis."""
    from scipy.stats import bootstrap as scipy_bootstrap

    def resampled(index: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.squeeze(statistic(*(r[np.atleast_2d(index)] for r in rows)))

    result = scipy_bootstrap((np.arange(len(rows[0])),), resampled, vectorized=True,
                             n_resamples=resamples, confidence_level=level,
                             method="percentile", rng=np.random.default_rng(seed),
                             batch=max(1, BOOTSTRAP_CELLS // len(rows[0])))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def bootstrap_f1(labels: np.ndarray, pred: np.ndarray, average: str, seed: int = 0,
                 level: float = LEVEL, resamples: int = RESAMPLES) -> tuple[float, float]:
    """The bootstrap interval of weighted or macro F1."""
    return bootstrap(lambda t, g: f1_from_counts(_counts(t, g), average), labels, pred,
                     seed=seed, level=level, resamples=resamples)


def test_intervals(labels: np.ndarray, probs: np.ndarray, seed: int = 0) -> dict[str, float]:
    """95% intervals of the test metrics, as MLflow metrics `<metric>_ci_low/_high`: every
    metric `as_test_metrics` logs, plus `test_f1_macro` and `test_recall_<class>` (logged here
    with their intervals)."""
    from sklearn.metrics import f1_score

    pred = probs.argmax(axis=1)
    right = int(np.sum(labels == pred))
    truth_prob = np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0)
    out: dict[str, float] = {}
    bounds = {"test_accuracy": wilson(right, len(labels)),
              "test_recall": wilson(right, len(labels)),  # weighted recall is the accuracy
              "test_f1": bootstrap_f1(labels, pred, "weighted", seed),
              "test_f1_macro": bootstrap_f1(labels, pred, "macro", seed),
              "test_precision": bootstrap(lambda t, g: precision_from_counts(_counts(t, g)),
                                          labels, pred, seed=seed),
              "test_loss": bootstrap(lambda lp: lp.mean(axis=-1), -np.log(truth_prob),
                                     seed=seed),
              "test_ece": bootstrap(_ece, probs.max(axis=1), (labels == pred).astype(float),
                                    seed=seed)}
    bounds["test_log_loss"] = bounds["test_loss"]  # the same cross-entropy, by sklearn's name
    if len(np.unique(labels)) == len(LABELS):  # as roc_auc_macro: undefined without a class
        low, high = bootstrap(resampled_auc(labels, probs), np.arange(len(labels)), seed=seed)
        if np.isfinite(low) and np.isfinite(high):
            bounds["test_roc_auc"] = (low, high)
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
